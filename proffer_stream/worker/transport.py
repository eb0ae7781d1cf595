"""Faust's Kafka transport with a configurable fetch wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message

from proffer_stream.kafka.lag import fetched_log_ends


def worker_transport(
    app: faust.App, bootstrap_servers: str, fetch_max_wait_ms: int
) -> aiokafka_driver.Transport:
    """Faust's Kafka transport with our fetch wait, and end offsets it can trust.

    Fetch wait: Faust's fixed 1,500 ms delays every event by up to 1.5 s at low rates
    on a broker that holds an empty fetch for the whole wait (the local one does;
    measured: 450 ms event -> profile, 50 ms with 20 ms waits).

    End offsets: table recovery reads a changelog up to the end offset the broker
    reports. The local broker reports the last batch's base offset plus one, so
    recovery stopped short while the source offsets were committed past what it
    restored, and counts came out short after a kill -9 (1 trial in 5). The end is
    checked against the high watermark of a real fetch (:func:`fetched_log_ends`).

    Set before any topic is declared: the transport is created on first use.
    """

    class Thread(aiokafka_driver.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read when the consumer starts
            return consumer

        async def _highwaters(self, partitions: list[Any]) -> Mapping[Any, int]:
            reported = await super()._highwaters(partitions)
            if self.consumer.in_transaction:
                return reported
            ends = await fetched_log_ends(
                bootstrap_servers,
                {TopicPartition(tp.topic, tp.partition): end for tp, end in reported.items()},
            )
            return {tp: ends[TopicPartition(tp.topic, tp.partition)] for tp in reported}

    class FastFetchConsumer(aiokafka_driver.Consumer):
        """Faust's consumer, with a seek after recovery that loses no record.

        When recovery completes (``Recovery.on_recovery_completed``), Faust resumes
        the stream partitions, seeks them to their committed offsets, and then resumes
        flow control, which clears every stream's queue (``clear_on_resume``): what was
        delivered before the seek is dropped, to be fetched again from the committed
        offset. But the fetcher keeps running (it read the changelogs), and aiokafka
        has prefetched the stream partitions all along (Faust's pause only filters what
        it hands out), so prefetched records are delivered while the seek is in
        flight, and some of the cleared ones were never fetched again; the restarted
        worker then stopped consuming a partition (the offers chaos test, ~3 in 11):

        - a partition with no committed offset is not sought (aiokafka's
          ``seek_to_committed`` skips it): its records were cleared and never re-read
          (seen: every partition delivered from 0 to its end during the seek, only the
          16 per partition already taken by the agent processed, the rest gone);
        - the record in delivery when the seek reset the read offsets recorded its own
          offset as read after the reset, so the re-fetched records below it were
          dropped as already read: the commit stopped at the first of them (seen:
          committed 80, acked 93..247, 80..92 never delivered again).

        Here the seek stops the flow first, waits for the record in delivery, and
        also seeks the partitions with no committed offset to where a consumer with no
        commit starts (the beginning, with ``earliest``, which the worker uses). Faust
        resumes the flow after the seek, as before.
        """

        _not_delivering: asyncio.Event | None = None

        def _delivery_idle(self) -> asyncio.Event:
            if self._not_delivering is None:
                self._not_delivering = asyncio.Event()
                self._not_delivering.set()
            return self._not_delivering

        async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
            idle = self._delivery_idle()
            try:
                async for tp, message in super().getmany(timeout):
                    # Idle again only when the drain asks for more (or stops), which
                    # it does after recording this record's offset as read.
                    idle.clear()
                    yield tp, message
            finally:
                idle.set()

        async def perform_seek(self) -> None:
            self.stop_flow()  # the records fetched before the seek are not delivered
            try:
                await asyncio.wait_for(
                    self._delivery_idle().wait(), self.app.conf.broker_request_timeout
                )
            except TimeoutError:
                self.log.warning("seeking while a record is still being delivered")
            await super().perform_seek()
            if self.app.conf.consumer_auto_offset_reset == "earliest":
                uncommitted = [
                    tp
                    for tp in self.assignment()
                    if not self._is_changelog_tp(tp) and not self._read_offset.get(tp)
                ]
                if uncommitted:
                    await self.seek_wait(await self.earliest_offsets(*uncommitted))

        def _new_consumer_thread(self) -> Thread:
            return Thread(self, loop=self.loop, beacon=self.beacon)

    class Transport(aiokafka_driver.Transport):
        Consumer = FastFetchConsumer

    return Transport(app.conf.broker_consumer, app)
