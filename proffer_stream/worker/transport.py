"""Faust's Kafka transport with a configurable fetch wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message
from mode import ServiceT

from proffer_stream.kafka.lag import fetched_log_ends
from proffer_stream.worker.inbox import Inbox


def worker_transport(
    app: faust.App,
    bootstrap_servers: str,
    fetch_max_wait_ms: int,
    inboxes: Iterable[Inbox],
    before_commit: Callable[[], Awaitable[None]],
) -> aiokafka_driver.Transport:
    """Faust's Kafka transport with our fetch wait, end offsets it can trust, the
    records of each inbox's topic handed to it in bulk, and ``before_commit`` awaited
    before every offset commit (before Faust flushes the producer), for writes held
    until then.

    Fetch wait: Faust's fixed 1,500 ms delays every event by up to 1.5 s at low rates
    on a broker that holds an empty fetch for the whole wait (the local one does;
    measured: 450 ms event -> profile, 50 ms with 20 ms waits).

    End offsets: table recovery reads a changelog up to the end offset the broker
    reports. The local broker reports the last batch's base offset plus one, so
    recovery stopped short while the source offsets were committed past what it
    restored, and counts came out short after a kill -9 (1 trial in 5). The end is
    checked against the high watermark of a real fetch (:func:`fetched_log_ends`).

    Inboxes: see :mod:`proffer_stream.worker.inbox`.

    Set before any topic is declared: the transport is created on first use.
    """
    inbox_of_topic = {inbox.topic: inbox for inbox in inboxes}

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

        async def _drain_messages(self, fetcher: ServiceT) -> None:
            """Faust's drain (``Consumer._drain_messages``), except that a record of a
            topic with an inbox is put there instead of delivered through the conductor,
            which raced a task per record against a suspended flow.

            Same bookkeeping: read offsets, gaps, commits every ``broker_commit_every``.
            Same flow control: a record fetched while the flow is suspended is dropped
            (fetched again from the committed offset); one fetched while the app's flow
            control is suspended waits for it, or for the consumer's flow to stop.
            """
            callback = self.callback
            read_offset = self._read_offset
            acks_enabled_for = self.app.topics.acks_enabled_for
            since_yield = 0
            try:
                while not (self.should_stop or fetcher.should_stop):
                    self.diag.set_flag(CONSUMER_FETCHING)
                    fetched = self.getmany(timeout=1.0)
                    await self.sleep(0)
                    if self.should_stop:
                        continue
                    async for tp, message in fetched:
                        since_yield += 1
                        if since_yield > 100:
                            await asyncio.sleep(0)
                            since_yield = 0
                        offset, last = message.offset, read_offset.get(tp)
                        if last is not None and offset < last:
                            continue  # read already
                        if last and offset - last > 1 and acks_enabled_for(message.topic):
                            await self._add_gap(tp, last + 1, offset)
                        if self._commit_every is not None and self._n_acked >= self._commit_every:
                            self._n_acked = 0
                            await self.commit()
                        inbox = inbox_of_topic.get(tp.topic)
                        if inbox is None:
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                        else:
                            await self._put(inbox, message)
                        read_offset[tp] = offset
                    self.diag.unset_flag(CONSUMER_FETCHING)
            except self.consumer_stopped_errors:
                if self.transport.app.should_stop:
                    return
                raise
            except asyncio.CancelledError:
                if self.transport.app.should_stop:
                    return
                raise
            except Exception as exc:
                self.log.exception("Drain messages raised: %r", exc)
                raise
            finally:
                self.diag.unset_flag(CONSUMER_FETCHING)

        async def _put(self, inbox: Inbox, message: Message) -> None:
            flow_control = self.app.flow_control
            if not flow_control.is_active():
                await self.wait_first(flow_control.acquire(), self.suspend_flow.wait())
            if not self.suspend_flow.is_set():
                inbox.put(message)

        async def _commit_offsets(
            self, offsets: Mapping[TP, int], start_new_transaction: bool = True
        ) -> bool:
            await before_commit()
            return await super()._commit_offsets(offsets, start_new_transaction)

        def _new_consumer_thread(self) -> Thread:
            return Thread(self, loop=self.loop, beacon=self.beacon)

    class Transport(aiokafka_driver.Transport):
        Consumer = FastFetchConsumer

    return Transport(app.conf.broker_consumer, app)
