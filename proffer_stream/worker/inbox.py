"""A lean path from Faust's consumer to one agent: fetched records handed over in bulk.

Faust hands each record to its agents one at a time: the fetcher's drain runs the
record's delivery as a task raced against a suspended flow (two tasks a record), wraps
it in an ``Event``, queues it for a ``Stream``, which takes it out with sensor calls
and acks it. At one event per record that was over a third of the worker's time. An
:class:`Inbox` takes the records of its topic from the drain as they are fetched (an
append), and :func:`consume_in_batches` gives them to the agent in batches and acks
them once applied. Everything else stays Faust's: the consumer group, offsets and
commits, flow control around rebalances, table recovery.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

import faust
from faust.types import TP, ConsumerT, Message


class Inbox:
    """Records of one topic, fetched and not yet taken by its agent.

    Like Faust's stream queues, it is emptied when a rebalance suspends the flow and
    when the flow resumes (``app.flow_control``): those records are fetched again from
    the committed offsets. Past ``maxsize`` records a partition is no longer fetched
    (``on_buffer_full``) until the agent has taken the inbox down to half.
    """

    def __init__(self, app: faust.App, topic: str, maxsize: int) -> None:
        self.app = app
        self.topic = topic
        self.maxsize = maxsize
        self._records: deque[Message] = deque()
        self._arrived = asyncio.Event()
        self._paused: set[TP] = set()
        app.flow_control.manage_queue(self)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._records)

    def put(self, message: Message) -> None:
        """Take a fetched record (from the consumer's drain; never blocks)."""
        self._records.append(message)
        self._arrived.set()
        if len(self._records) >= self.maxsize:
            tp = TP(message.topic, message.partition)  # Faust's, not aiokafka's
            if tp not in self._paused:
                self._paused.add(tp)
                self.app.consumer.on_buffer_full(tp)

    async def take(self, size: int, within: float) -> list[Message]:
        """Up to ``size`` records: waits for one, then, with fewer than ``size`` in,
        ``within`` seconds for more."""
        while not self._records:
            self._arrived.clear()
            await self._arrived.wait()
        if len(self._records) < size:
            await asyncio.sleep(within)
        records = self._records
        batch = [records.popleft() for _ in range(min(size, len(records)))]
        if self._paused and len(records) <= self.maxsize // 2:
            self._resume_fetching()
        return batch

    def clear(self) -> None:
        """Drop every record held (flow control calls this around a rebalance)."""
        self._records.clear()
        self._resume_fetching()

    def _resume_fetching(self) -> None:
        for tp in self._paused:
            self.app.consumer.on_buffer_drop(tp)
        self._paused.clear()


async def consume_in_batches(
    app: faust.App,
    inbox: Inbox,
    process: Callable[[Sequence[Message]], Awaitable[None]],
    size: int,
    within: float,
    on_failure: Callable[[BaseException], None],
    after_batch: Callable[[bool], Awaitable[None]],
) -> None:
    """Feed ``process`` the inbox's records in batches, and ack each batch it applied
    once ``after_batch`` (told whether the agent caught up: nothing fetched waits, and
    the batch ended where its partitions ended at the last fetch) is done.

    As Faust's streams do, records of an earlier consumer generation, or taken while the
    flow is suspended, are skipped (fetched again after the rebalance), and the records
    handed over are tracked as unacked, so that a rebalance waits for them before it
    commits. What escapes ``process`` goes to ``on_failure``, the batch unacked.
    """
    consumer = app.consumer
    while True:
        batch = await inbox.take(size, within)
        generation = app.consumer_generation_id
        if not app.flow_control.is_active():
            continue
        live = [message for message in batch if message.generation_id == generation]
        unacked = consumer.unacked
        for message in live:
            message.tracked = True
            unacked.add(message)
        try:
            await process(live)
            await after_batch(not inbox and _at_the_end(consumer, live))
        except Exception as exc:  # not CancelledError: shutdown commits what is acked
            on_failure(exc)
        else:
            for message in live:
                consumer.ack(message)


def _at_the_end(consumer: ConsumerT, batch: Sequence[Message]) -> bool:
    """Whether the batch ends at the end of each partition it read, as the last fetch
    saw it. An empty inbox alone says little: it empties between fetches while the
    agent is far behind."""
    last = {message.tp: message.offset for message in batch}
    return all(offset + 1 >= (consumer.highwater(tp) or 0) for tp, offset in last.items())
