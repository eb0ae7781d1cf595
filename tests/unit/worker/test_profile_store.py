"""The profile store's parsed profiles: lent to one batch, trusted only while current."""

import asyncio
from types import SimpleNamespace

import pytest

from proffer_stream.core.identity import partition_key
from proffer_stream.signals.fold import new_signals
from proffer_stream.worker.profiles import ProfileStore
from proffer_stream.worker.reroute import key_partition
from proffer_stream.worker.restore import BatchedRestore
from proffer_stream.worker.state import Checkpoint, TableTransaction

pytestmark = pytest.mark.unit

KEY = ("acme", "u1")


class FakeStore(dict):
    """A memory store that also keeps the changelog offsets recorded in it."""

    def __init__(self):
        super().__init__()
        self.persisted = {}

    def set_persisted_offset(self, tp, offset):
        self.persisted[tp.partition] = offset


class FakeTable:
    """A table with its store, its changelog producer and its app's checkpoint."""

    def __init__(self):
        self.data = FakeStore()
        self.sent = []
        ends = {}

        async def send(topic, key, value, partition, timestamp, headers):
            self.sent.append((key, value))
            ends[partition] = ends.get(partition, -1) + 1
            delivered = asyncio.get_running_loop().create_future()
            delivered.set_result(SimpleNamespace(offset=ends[partition]))
            return delivered

        async def flush():
            return None

        self.app = SimpleNamespace(producer=SimpleNamespace(send=send, flush=flush))
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: "signals-changelog")
        self.checkpoint = Checkpoint(self.app)

    def transaction(self, encode=bytes):
        return self.checkpoint.register(TableTransaction(self, encode))


def store(table, kept=10):
    return ProfileStore(
        table.transaction(), partitions=4, database_url="", dedup_days=7, kept_parsed=kept
    )


async def saved(profiles, states, table):
    profiles.save(states)
    await table.checkpoint()


async def test_a_saved_profile_is_lent_out_again_without_parsing():
    table = FakeTable()
    profiles = store(table)
    state = new_signals(*KEY)
    await saved(profiles, [state], table)
    loaded = await profiles.load([KEY])
    assert loaded.states[KEY] is state
    assert table.sent == [(partition_key(*KEY), state.model_dump_json().encode())]


async def test_a_lent_profile_not_saved_back_is_parsed_afresh():
    """A batch that changed a profile and did not save it leaves the table's version."""
    table = FakeTable()
    profiles = store(table)
    await saved(profiles, [new_signals(*KEY)], table)
    lent = (await profiles.load([KEY])).states[KEY]
    lent.event_count = 99  # changed, never saved
    again = (await profiles.load([KEY])).states[KEY]
    assert again is not lent
    assert again.event_count == 0


async def test_after_a_rebalance_the_table_is_the_truth():
    """Recovery puts other bytes in the table while partitions move: those count."""
    table = FakeTable()
    profiles = store(table)
    await saved(profiles, [new_signals(*KEY)], table)
    recovered = new_signals(*KEY).model_copy(update={"event_count": 7})
    table.data[partition_key(*KEY)] = recovered.model_dump_json().encode()
    profiles.forget()
    assert (await profiles.load([KEY])).states[KEY].event_count == 7


async def test_at_most_kept_parsed_profiles_are_kept_the_oldest_saved_go_first():
    table = FakeTable()
    profiles = store(table, kept=2)
    states = [new_signals("acme", f"u{n}") for n in range(3)]
    await saved(profiles, states, table)
    loaded = await profiles.load([("acme", f"u{n}") for n in range(3)])
    assert [loaded.states[("acme", f"u{n}")] is states[n] for n in range(3)] == [
        False,
        True,
        True,
    ]


async def test_saved_profiles_are_held_and_read_until_one_checkpoint_writes_the_last():
    table = FakeTable()
    profiles = store(table)
    state = new_signals(*KEY)
    profiles.save([state])
    state = (await profiles.load([KEY])).states[KEY]
    state.event_count = 2
    profiles.save([state])
    assert table.sent == [] and table.data == {}
    assert profiles.get(KEY).event_count == 2
    await table.checkpoint()
    key = partition_key(*KEY)
    assert table.sent == [(key, state.model_dump_json().encode())]
    assert table.data == {key: state.model_dump_json().encode()}
    assert table.data.persisted == {key_partition(key, 4): 0}  # its changelog offset
    assert (await profiles.load([KEY])).states[KEY] is state


async def test_a_request_waits_for_the_profile_to_apply_its_customers_event():
    """What the offers agent waits on when a request overtook its customer's events."""
    profiles = store(FakeTable())
    waiting = asyncio.create_task(profiles.applied(KEY, 7, timeout=5))
    await asyncio.sleep(0.01)
    behind = new_signals(*KEY)
    behind.source_offset = 6
    profiles.save([behind])
    await asyncio.sleep(0.01)
    assert not waiting.done()
    caught_up = new_signals(*KEY)
    caught_up.source_offset = 7
    profiles.save([caught_up])
    assert await asyncio.wait_for(waiting, 1) is True
    assert await profiles.applied(("acme", "never"), 0, timeout=0.05) is False


async def test_a_reader_gets_the_tables_profile_else_postgresqls_which_is_not_saved():
    """The offers agent's read: a customer with no event since the broker lost the
    changelog is known from PostgreSQL; the signals agent restores it itself."""
    table = FakeTable()
    profiles = ProfileStore(table.transaction(), 4, database_url="postgres://x", dedup_days=7)
    in_postgres = new_signals("acme", "u2")
    in_postgres.event_count = 5
    asked = []

    async def load_signals(keys):
        asked.append(keys)
        return {("acme", "u2"): in_postgres}

    profiles._in_postgres = BatchedRestore(load_signals, "profiles")
    in_table = new_signals(*KEY)
    await saved(profiles, [in_table], table)
    sent = list(table.sent)
    assert (await profiles.read(KEY)).external_id == KEY[1]
    assert asked == [], "a profile in the table is not asked of PostgreSQL"
    assert (await profiles.read(("acme", "u2"))).event_count == 5
    assert await profiles.read(("acme", "u3")) is None
    assert profiles.get(("acme", "u2")) is None and table.sent == sent, "nothing saved"
