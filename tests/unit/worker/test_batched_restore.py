"""Restores asked for in one turn of the event loop: one query, failures kept to their keys."""

import asyncio

import pytest

from proffer_stream.worker.restore import BatchedRestore

pytestmark = pytest.mark.unit


class Stored:
    """PostgreSQL as a dict; keys in ``broken`` make any query that has them fail."""

    def __init__(self, rows, broken=()):
        self.rows = rows
        self.broken = set(broken)
        self.queries = []

    async def query(self, keys):
        self.queries.append(sorted(keys))
        await asyncio.sleep(0)
        if self.broken & set(keys):
            raise ValueError(f"bad row among {sorted(keys)}")
        return {k: self.rows[k] for k in keys if k in self.rows}


async def test_keys_asked_in_one_turn_are_queried_at_once():
    stored = Stored({"a": 1, "b": 2})
    restore = BatchedRestore(stored.query, "things")
    found = await asyncio.gather(*(restore.get(k) for k in ("a", "b", "c", "a")))
    assert found == [1, 2, None, 1]
    assert stored.queries == [["a", "b", "c"]]
    assert await restore.get("b") == 2 and stored.queries[-1] == ["b"]


async def test_an_error_that_is_no_outage_fails_only_the_keys_it_concerns():
    stored = Stored({"a": 1, "b": 2}, broken={"b"})
    restore = BatchedRestore(stored.query, "things")
    found = await asyncio.gather(*(restore.get(k) for k in ("a", "b", "c")), return_exceptions=True)
    assert found[0] == 1 and found[2] is None
    assert isinstance(found[1], ValueError)
    assert stored.queries == [["a", "b", "c"], ["a"], ["b"], ["c"]]


async def test_a_waiter_cancelled_leaves_the_others_their_answer():
    stored = Stored({"a": 1})
    restore = BatchedRestore(stored.query, "things")
    first = asyncio.create_task(restore.get("a"))
    second = asyncio.create_task(restore.get("a"))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 1
