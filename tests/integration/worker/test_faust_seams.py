"""The worker's Faust seams, each against the real broker: they fail if a workaround stops
working (see proffer_stream/worker/faust_seams)."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import asyncpg
import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust.types import TP, Message
from support import wait_for

from proffer_stream.core.identity import partition_key
from proffer_stream.core.settings import Settings
from proffer_stream.db import keys
from proffer_stream.kafka.lag import group_lag
from proffer_stream.kafka.topics import topics_for
from proffer_stream.local.embedded import free_port
from proffer_stream.worker.app import create_app
from proffer_stream.worker.faust_seams.transport import (
    WorkerConsumer,
    WorkerTransport,
    worker_transport,
)
from proffer_stream.worker.inbox import Inbox

pytestmark = pytest.mark.integration

PARTITIONS = 2


@dataclass
class Seamed:
    """A Faust app on the worker's transport: an inbox on one topic, an agent on another."""

    app: faust.App
    inbox: Inbox
    inbox_topic: str
    agent_topic: str
    agent_saw: list[bytes] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)

    @property
    def consumer(self) -> WorkerConsumer:
        consumer: WorkerConsumer = self.app.consumer
        return consumer

    def tps(self, topic: str) -> list[TP]:
        return [TP(topic, p) for p in range(PARTITIONS)]


async def create_topics(settings: Settings, *names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])
    finally:
        await admin.close()


async def produce(settings: Settings, topic: str, per_partition: int, batches: int = 1) -> None:
    """``per_partition`` records on each partition of ``topic``, in ``batches`` batches."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=50)
    await producer.start()
    try:
        size = per_partition // batches
        for start in range(0, per_partition, size):
            sent = [
                await producer.send(topic, f"{p}:{n}".encode(), partition=p)
                for n in range(start, start + size)
                for p in range(PARTITIONS)
            ]
            await asyncio.gather(*sent)  # one batch a partition each time
    finally:
        await producer.stop()


@pytest.fixture
async def seamed(settings: Settings, tmp_path: Path) -> AsyncIterator[Seamed]:
    name = uuid.uuid4().hex[:8]
    inbox_topic, agent_topic = (
        f"{settings.topic_prefix}in-{name}",
        f"{settings.topic_prefix}ag-{name}",
    )
    await create_topics(settings, inbox_topic, agent_topic)
    app = faust.App(
        f"{settings.topic_prefix}seams-{name}",
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        datadir=str(tmp_path / "faust"),
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        broker_commit_interval=0.2,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        web_host="127.0.0.1",
        web_port=free_port(),
    )
    inbox = Inbox(app, inbox_topic, maxsize=10_000)
    subject = Seamed(app, inbox, inbox_topic, agent_topic)

    async def before_commit() -> None:
        subject.commits.append("before_commit")

    app.transport = worker_transport(
        app, settings.bootstrap_servers, settings.fetch_max_wait_ms, [inbox], before_commit
    )
    app.topics.add(app.topic(inbox_topic, key_type=bytes, value_type=bytes))

    @app.agent(app.topic(agent_topic, key_type=bytes, value_type=bytes))
    async def record(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            subject.agent_saw.append(value)

    await app.start()
    try:
        ours = {*subject.tps(inbox_topic), *subject.tps(agent_topic)}
        await wait_for(_assigned(app), ours.issubset, timeout=30, what="the assignment")
        await asyncio.wait_for(app.tables.recovery.completed.wait(), 30)
        yield subject
    finally:
        await app.stop()


def _assigned(app: faust.App) -> Callable[[], Awaitable[set[TP]]]:
    async def probe() -> set[TP]:
        return set(app.consumer.assignment())

    return probe


async def test_checked_highwaters_are_the_log_end_the_broker_may_under_report(
    seamed: Seamed, settings: Settings
):
    await produce(settings, seamed.agent_topic, per_partition=15, batches=3)
    tps = seamed.tps(seamed.agent_topic)
    raw = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await raw.start()
    try:
        reported = await raw.end_offsets([TopicPartition(tp.topic, tp.partition) for tp in tps])
    finally:
        await raw.stop()
    checked = await seamed.consumer.highwaters(*tps)
    assert checked == {tp: 15 for tp in tps}, f"the broker reported {reported}"
    if _embedded_broker():  # tansu: the last batch's base offset + 1
        assert set(reported.values()) == {11}


async def test_the_fetcher_waits_the_configured_time_not_faust_s_1500_ms(
    seamed: Seamed, settings: Settings
):
    fetcher = seamed.consumer._thread._consumer._fetcher  # aiokafka's, made at its start
    assert fetcher._fetch_max_wait_ms == settings.fetch_max_wait_ms != 1500


def _embedded_broker() -> bool:
    return not os.environ.get("PROFFER_TEST_KAFKA_BOOTSTRAP_SERVERS") and (
        os.environ.get("PROFFER_TEST_CONTAINERS") != "1"
    )


async def taken(inbox: Inbox, count: int, timeout: float = 15.0) -> list[Message]:
    """``count`` records from the inbox (fails after ``timeout`` with fewer)."""
    records: list[Message] = []

    async def more() -> int:
        if inbox:
            records.extend(await inbox.take(count - len(records), within=0))
        return len(records)

    await wait_for(more, lambda n: n >= count, timeout=timeout, interval=0.05, what="records")
    return records


def offsets(records: list[Message]) -> dict[int, list[int]]:
    by_partition: dict[int, list[int]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(record.offset)
    return by_partition


async def test_records_of_an_inbox_topic_go_to_the_inbox_the_others_to_their_agent(
    seamed: Seamed, settings: Settings
):
    await produce(settings, seamed.inbox_topic, per_partition=5)
    await produce(settings, seamed.agent_topic, per_partition=5)
    records = await taken(seamed.inbox, 2 * 5)
    assert {record.topic for record in records} == {seamed.inbox_topic}
    await wait_for(_length(seamed.agent_saw), lambda n: n == 2 * 5, timeout=15, what="the agent")
    assert not seamed.inbox


def _length(items: list[bytes]) -> Callable[[], Awaitable[int]]:
    async def probe() -> int:
        return len(items)

    return probe


async def seek_as_recovery_does(seamed: Seamed) -> None:
    """What ``Recovery.on_recovery_completed`` does once the tables are recovered: seek,
    resume flow control (which clears the inbox), resume the consumer's flow."""
    await seamed.consumer.perform_seek()
    seamed.app.flow_control.resume()
    seamed.consumer.resume_flow()


async def test_after_the_seek_partitions_with_no_commit_are_read_again_from_the_start(
    seamed: Seamed, settings: Settings
):
    await produce(settings, seamed.inbox_topic, per_partition=5)
    await taken(seamed.inbox, 2 * 5)  # delivered, never acked: nothing is committed
    await seek_as_recovery_does(seamed)
    again = await taken(seamed.inbox, 2 * 5)
    assert offsets(again) == {p: list(range(5)) for p in range(PARTITIONS)}


async def test_no_record_is_lost_when_the_seek_comes_while_one_is_being_delivered(
    seamed: Seamed, settings: Settings
):
    await produce(settings, seamed.inbox_topic, per_partition=5)
    await taken(seamed.inbox, 2 * 5)
    seamed.app.flow_control.suspend()  # as a rebalance does: the next record waits
    await produce(settings, seamed.inbox_topic, per_partition=5)
    idle = seamed.consumer.delivery_idle()
    await wait_for(_unset(idle), bool, timeout=15, interval=0.05, what="a record in delivery")
    await seek_as_recovery_does(seamed)
    again = await taken(seamed.inbox, 2 * 10)
    assert offsets(again) == {p: list(range(10)) for p in range(PARTITIONS)}


def _unset(event: asyncio.Event) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return not event.is_set()

    return probe


async def test_the_worker_writes_what_it_held_before_every_offset_commit(
    settings: Settings, db: asyncpg.Pool
):
    """The real worker app: its held writes (event ids, profiles) are awaited before each
    commit, so the event ids reach their changelog before the offsets that counted them."""
    await keys.create_key(db, "acme", "test")  # records of a tenant without a key are refused
    settings.worker_data_dir.mkdir(parents=True)  # as run_worker does
    app = create_app(settings)
    transport: WorkerTransport = app.transport
    order: list[str] = []
    write_held = transport.seams.before_commit

    async def before_commit() -> None:
        await write_held()
        order.append("held writes written")

    transport.seams = replace(transport.seams, before_commit=before_commit)
    consumer = app.consumer
    commit = consumer._commit

    async def recorded_commit(offsets: Mapping[TP, int]) -> bool:
        order.append("commit")
        committed: bool = await commit(offsets)
        return committed

    consumer._commit = recorded_commit
    topics = topics_for(settings)
    await app.start()
    try:
        await produce_events(settings, topics.events.name, customers=3)
        await wait_for(
            lambda: group_lag(settings.bootstrap_servers, app.conf.id, [topics.events.name]),
            lambda lag: lag == 0,
            timeout=30,
            what="the events committed",
        )
        seen = list(order)
    finally:
        await app.stop()
    assert "commit" in seen
    assert all(seen[n - 1] == "held writes written" for n, e in enumerate(seen) if e == "commit")
    ids = await messages_of(settings, topics.event_ids_changelog.name)
    assert len(ids) == 3  # one day's chunk per customer, written only by the held writes


async def produce_events(settings: Settings, topic: str, customers: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for n in range(customers):
            value = {
                "tenant_id": "acme",
                "customer": {"id": f"c{n}"},
                "events": [{"id": f"e{n}", "type": "purchase", "data": {"amount": 1}}],
            }
            key = partition_key("acme", f"c{n}")
            await producer.send_and_wait(topic, key=key, value=json.dumps(value).encode())
    finally:
        await producer.stop()


async def messages_of(settings: Settings, topic: str) -> list[bytes]:
    """Every record's key on ``topic``, until a second passes with none."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    keys: list[bytes] = []
    try:
        while fetched := await consumer.getmany(timeout_ms=1000):
            keys += [record.key for records in fetched.values() for record in records]
        return keys
    finally:
        await consumer.stop()
