"""The signals agent's inbox: records handed over in bulk, batches acked once applied."""

import asyncio
from types import SimpleNamespace

import pytest
from faust.types import TP
from mode.utils.queues import FlowControlEvent

from proffer_stream.worker.inbox import Inbox, consume_in_batches

pytestmark = pytest.mark.unit


class FakeConsumer:
    def __init__(self):
        self.full, self.drop, self.acked = [], [], []
        self.unacked = set()
        self.ends = {}  # partition -> its end offset as the last fetch saw it

    def highwater(self, tp):
        return self.ends.get(tp)

    def on_buffer_full(self, tp):
        self.full.append(tp)

    def on_buffer_drop(self, tp):
        self.drop.append(tp)

    def ack(self, message):
        self.acked.append(message.offset)
        self.unacked.discard(message)


def fake_app():
    flow_control = FlowControlEvent(initially_suspended=False)
    return SimpleNamespace(
        flow_control=flow_control, consumer=FakeConsumer(), consumer_generation_id=1
    )


class Record:
    """A fetched record as Faust's consumer makes it (hashable, weakly referenced)."""

    def __init__(self, offset, partition=0, generation_id=1):
        self.topic, self.partition, self.offset = "events", partition, offset
        self.tp = TP("events", partition)
        self.generation_id = generation_id
        self.tracked = False


async def test_a_batch_is_what_arrived_in_order_up_to_its_size():
    inbox = Inbox(fake_app(), "events", maxsize=100)
    for offset in range(5):
        inbox.put(Record(offset))
    assert [r.offset for r in await inbox.take(3, within=0)] == [0, 1, 2]
    assert [r.offset for r in await inbox.take(3, within=0)] == [3, 4]


async def test_a_short_batch_waits_for_more_records_up_to_the_window():
    inbox = Inbox(fake_app(), "events", maxsize=100)
    inbox.put(Record(0))
    taking = asyncio.ensure_future(inbox.take(10, within=0.05))
    await asyncio.sleep(0.01)
    inbox.put(Record(1))
    assert [r.offset for r in await taking] == [0, 1]


async def test_a_full_inbox_pauses_the_partition_until_taken_down_to_half():
    app = fake_app()
    inbox = Inbox(app, "events", maxsize=4)
    for offset in range(6):
        inbox.put(Record(offset))
    assert app.consumer.full == [TP("events", 0)]  # once, however many more arrive
    await inbox.take(1, within=0)
    assert app.consumer.drop == []  # 5 left, above half
    await inbox.take(3, within=0)
    assert app.consumer.drop == [TP("events", 0)]


async def test_a_rebalance_empties_the_inbox_and_resumes_fetching():
    app = fake_app()
    inbox = Inbox(app, "events", maxsize=2)
    for offset in range(3):
        inbox.put(Record(offset))
    app.flow_control.suspend()
    app.flow_control.clear()  # what Faust does when partitions are revoked
    assert len(inbox) == 0
    assert app.consumer.drop == [TP("events", 0)]


async def no_flush(caught_up):
    pass


async def run_one_batch(app, inbox, process, failures, after_batch=no_flush, size=10):
    consuming = asyncio.ensure_future(
        consume_in_batches(
            app, inbox, process, size, 0, on_failure=failures.append, after_batch=after_batch
        )
    )
    await asyncio.sleep(0.02)
    consuming.cancel()


async def test_records_are_acked_only_after_their_batch_is_applied_and_stale_ones_skipped():
    app, applied = fake_app(), []
    inbox = Inbox(app, "events", maxsize=100)

    async def process(batch):
        assert all(r.tracked and r in app.consumer.unacked for r in batch)
        assert app.consumer.acked == []
        applied.extend(r.offset for r in batch)

    inbox.put(Record(0, generation_id=0))  # fetched before a rebalance
    inbox.put(Record(1))
    inbox.put(Record(2))
    await run_one_batch(app, inbox, process, [])
    assert applied == [1, 2]
    assert app.consumer.acked == [1, 2]


async def test_a_batch_that_fails_is_not_acked():
    app, failures = fake_app(), []
    inbox = Inbox(app, "events", maxsize=100)

    async def process(batch):
        raise RuntimeError("table write failed")

    inbox.put(Record(0))
    await run_one_batch(app, inbox, process, failures)
    assert [str(f) for f in failures] == ["table write failed"]
    assert app.consumer.acked == []


async def test_the_agent_is_caught_up_only_when_nothing_waits_fetched_or_unfetched():
    app, verdicts = fake_app(), []
    inbox = Inbox(app, "events", maxsize=100)

    async def process(batch):
        pass

    async def note(caught_up):
        verdicts.append(caught_up)

    app.consumer.ends = {TP("events", 0): 3, TP("events", 1): 10}
    for offset in range(3):
        inbox.put(Record(offset))
    inbox.put(Record(5, partition=1))  # partition 1 has more, not fetched yet
    await run_one_batch(app, inbox, process, [], after_batch=note, size=2)
    # [0, 1]: more fetched waits; [2, p1@5]: partition 1 ends at 10
    assert verdicts == [False, False]
    verdicts.clear()
    inbox.put(Record(9, partition=1))
    await run_one_batch(app, inbox, process, [], after_batch=note)
    assert verdicts == [True]
