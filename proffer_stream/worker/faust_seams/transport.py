"""Seam: Faust's Kafka transport (``faust.transport.drivers.aiokafka``), one class a concern.

Each class overrides what it must of faust-streaming 0.15.3 (:mod:`.version`) and no more;
the worker composes them (:class:`WorkerConsumer`, :class:`WorkerConsumerThread`) in
:class:`WorkerTransport`, which carries their configuration (:class:`TransportSeams`).
Set ``app.transport`` before any topic is declared: Faust creates it on first use.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP, Message
from mode import ServiceT

from proffer_stream.kafka.lag import fetched_log_ends
from proffer_stream.worker.inbox import Inbox


@dataclass(frozen=True)
class TransportSeams:
    """What the seams need to know, carried by :class:`WorkerTransport`."""

    bootstrap_servers: str
    """For :class:`CheckedHighwatersThread`'s fetch of the true log ends."""
    fetch_max_wait_ms: int
    """:class:`FetchWaitThread`'s fetch wait."""
    inbox_of_topic: Mapping[str, Inbox]
    """:class:`InboxRoutingConsumer`'s inboxes, by topic."""
    before_commit: Callable[[], Awaitable[None]]
    """What :class:`CommitHookConsumer` awaits before every offset commit."""


def seams_of(transport: Any) -> TransportSeams:
    """The seams' configuration, from the transport of a consumer or its thread."""
    if not isinstance(transport, WorkerTransport):
        raise TypeError(f"the Faust seams need a WorkerTransport, not {type(transport)!r}")
    return transport.seams


class FetchWaitThread(aiokafka_driver.AIOKafkaConsumerThread):
    """The consumer's fetch wait from :attr:`TransportSeams.fetch_max_wait_ms`.

    Works around: ``AIOKafkaConsumerThread._create_worker_consumer`` fixes aiokafka's
    ``fetch_max_wait_ms`` at 1,500 ms, which delays every event by up to 1.5 s at low rates
    on a broker that holds an empty fetch for the whole wait (the local one does).
    Bought: event -> profile 450 ms -> 50 ms with 20 ms waits.
    """

    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads it when the consumer starts
        consumer._fetch_max_wait_ms = seams_of(self.transport).fetch_max_wait_ms
        return consumer


class CheckedHighwatersThread(aiokafka_driver.AIOKafkaConsumerThread):
    """End offsets checked against the high watermark of a real fetch.

    Works around: the local broker (tansu 0.6) answers ListOffsets LATEST with the last
    batch's base offset plus one, and ``AIOKafkaConsumerThread._highwaters`` trusts it.
    Table recovery reads a changelog up to that end, so it stopped short while the source
    offsets were committed past what it restored. Bought: counts exact after a kill -9
    (short in 1 trial in 5 before). The check is :func:`~proffer_stream.kafka.lag.
    fetched_log_ends`; a transactional consumer keeps Faust's last stable offsets.
    """

    async def _highwaters(self, partitions: list[TP]) -> Mapping[TP, int]:
        reported = await super()._highwaters(partitions)
        if self.consumer.in_transaction:
            return reported
        ends = await fetched_log_ends(
            seams_of(self.transport).bootstrap_servers,
            {TopicPartition(tp.topic, tp.partition): end for tp, end in reported.items()},
        )
        return {tp: ends[TopicPartition(tp.topic, tp.partition)] for tp in reported}


class WorkerConsumerThread(FetchWaitThread, CheckedHighwatersThread):
    """Faust's consumer thread with the worker's fetch wait and checked high watermarks."""


class SafeSeekConsumer(aiokafka_driver.Consumer):
    """Faust's consumer, with a seek after recovery that loses no record.

    Works around: when recovery completes (``Recovery.on_recovery_completed``), Faust
    resumes the stream partitions, seeks them to their committed offsets, and then resumes
    flow control, which clears every stream's queue (``clear_on_resume``): what was
    delivered before the seek is dropped, to be fetched again from the committed offset.
    But the fetcher keeps running (it read the changelogs), and aiokafka has prefetched the
    stream partitions all along (Faust's pause only filters what it hands out), so
    prefetched records are delivered while the seek is in flight, and some of the cleared
    ones were never fetched again; the restarted worker then stopped consuming a partition:

    - a partition with no committed offset is not sought (aiokafka's
      ``seek_to_committed`` skips it): its records were cleared and never re-read (seen:
      every partition delivered from 0 to its end during the seek, only the 16 per
      partition already taken by the agent processed, the rest gone);
    - the record in delivery when the seek reset the read offsets recorded its own offset
      as read after the reset, so the re-fetched records below it were dropped as already
      read: the commit stopped at the first of them (seen: committed 80, acked 93..247,
      80..92 never delivered again).

    Here the seek stops the flow first, waits for the record in delivery, and also seeks
    the partitions with no committed offset to where a consumer with no commit starts (the
    beginning, with ``earliest``, which the worker uses). Faust resumes the flow after the
    seek, as before. Bought: the offers chaos test stalled in 5 runs of 16 before, 0 in 10
    after.
    """

    _not_delivering: asyncio.Event | None = None

    def delivery_idle(self) -> asyncio.Event:
        """Set while no fetched record is being delivered."""
        if self._not_delivering is None:
            self._not_delivering = asyncio.Event()
            self._not_delivering.set()
        return self._not_delivering

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        idle = self.delivery_idle()
        try:
            async for tp, message in super().getmany(timeout):
                # Idle again only when the drain asks for more (or stops), which it
                # does after recording this record's offset as read.
                idle.clear()
                yield tp, message
        finally:
            idle.set()

    async def perform_seek(self) -> None:
        self.stop_flow()  # the records fetched before the seek are not delivered
        try:
            await asyncio.wait_for(
                self.delivery_idle().wait(), self.app.conf.broker_request_timeout
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


class InboxRoutingConsumer(aiokafka_driver.Consumer):
    """Records of a topic with an :class:`~proffer_stream.worker.inbox.Inbox` put there.

    Works around: Faust's drain (``Consumer._drain_messages``) delivers each record through
    the conductor as a task raced against a suspended flow (two tasks a record), then an
    ``Event``, a stream queue, sensor calls and an ack: at one event per record over a
    third of the worker's time. Bought: see :mod:`proffer_stream.worker.inbox`. The drain
    below is a copy of Faust's with that one change.
    """

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Faust's drain, except that a record of a topic with an inbox is put there.

        Same bookkeeping: read offsets, gaps, commits every ``broker_commit_every``.
        Same flow control: a record fetched while the flow is suspended is dropped
        (fetched again from the committed offset); one fetched while the app's flow
        control is suspended waits for it, or for the consumer's flow to stop.
        """
        callback = self.callback
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for
        inbox_of_topic = seams_of(self.transport).inbox_of_topic
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


class CommitHookConsumer(aiokafka_driver.Consumer):
    """:attr:`TransportSeams.before_commit` awaited before every offset commit.

    Works around: Faust has no hook between "these offsets are to be committed" and its
    producer flush and commit (``Consumer._commit_offsets``); the worker holds writes
    (profiles, event ids) until then, so a busy customer's state is written once per commit
    instead of once per batch. Bought: a RocksDB put and a changelog record per batch were
    an eighth of the worker's time at one event per record.
    """

    async def _commit_offsets(
        self, offsets: Mapping[TP, int], start_new_transaction: bool = True
    ) -> bool:
        await seams_of(self.transport).before_commit()
        committed: bool = await super()._commit_offsets(offsets, start_new_transaction)
        return committed


class WorkerConsumer(CommitHookConsumer, SafeSeekConsumer, InboxRoutingConsumer):
    """Faust's aiokafka consumer with every seam, on :class:`WorkerConsumerThread`."""

    def _new_consumer_thread(self) -> WorkerConsumerThread:
        return WorkerConsumerThread(self, loop=self.loop, beacon=self.beacon)


class WorkerTransport(aiokafka_driver.Transport):
    """Faust's aiokafka transport making :class:`WorkerConsumer`, with its seams' config."""

    Consumer = WorkerConsumer

    def __init__(self, url: list[Any], app: faust.App, seams: TransportSeams) -> None:
        super().__init__(url, app)
        self.seams = seams


def worker_transport(
    app: faust.App,
    bootstrap_servers: str,
    fetch_max_wait_ms: int,
    inboxes: Iterable[Inbox],
    before_commit: Callable[[], Awaitable[None]],
) -> WorkerTransport:
    """The worker's transport for ``app`` (to set as ``app.transport``)."""
    seams = TransportSeams(
        bootstrap_servers,
        fetch_max_wait_ms,
        {inbox.topic: inbox for inbox in inboxes},
        before_commit,
    )
    return WorkerTransport(app.conf.broker_consumer, app, seams)
