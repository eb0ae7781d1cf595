"""Chaos for the catalog owner: kill -9 of the worker while 500 members race for a stock
of 100, and a restart. After dedup by event id: exactly 100 uses, no event id published
as two kinds, and no event that counts more uses than the stock."""

import asyncio

import pytest
from aiokafka import TopicPartition
from catalog_race import assert_exact, decided, records, the_stock_race
from support import produce_paced, wait_for

from proffer_stream.kafka.lag import log_ends_now
from proffer_stream.kafka.topics import topics_for

pytestmark = pytest.mark.chaos


async def published(settings):
    """How many catalog events are on the topic (replays included), read at once."""
    name = topics_for(settings).catalog_events.name
    wanted = [TopicPartition(name, p) for p in range(settings.partitions)]
    return sum((await log_ends_now(settings.bootstrap_servers, wanted)).values())


async def test_kill_9_mid_race_neither_loses_nor_repeats_a_use(settings, processes):
    processes.start("worker", settings)
    stock, solo = the_stock_race()
    creates, uses = [stock[0], solo[0]], stock[1:] + solo[1:]
    topic = topics_for(settings).catalog_commands.name
    await produce_paced(settings, topic, records(creates), per_second=10)
    await wait_for(lambda: decided(settings), lambda found: len(found[0]) == 2, what="creates")
    producing = asyncio.create_task(produce_paced(settings, topic, records(uses), per_second=100))
    await wait_for(lambda: published(settings), lambda n: n >= 150, what="progress")
    processes.kill("worker")
    assert await published(settings) < len(stock) + len(solo)  # the kill lands mid-race
    await asyncio.sleep(1)
    processes.start("worker", settings)
    await producing
    by_id, kinds = await wait_for(
        lambda: decided(settings),
        lambda found: len(found[0]) == len(stock) + len(solo),
        timeout=120,
        what="every command decided",
    )
    assert_exact(by_id, kinds)
    assert processes.stop("worker") == 0
