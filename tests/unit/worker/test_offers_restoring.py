"""Which partitions of the offers table restore customers from PostgreSQL: those marked,
and those whose changelog begins empty while PostgreSQL has offers (marked then)."""

import pytest
from test_profile_store import FakeTable

from proffer_stream.worker.offers_agent import RESTORING, OffersStore

pytestmark = pytest.mark.unit


def store(has_offers: bool) -> tuple[FakeTable, OffersStore]:
    table = FakeTable()
    offers = OffersStore(table.transaction(), partitions=4, database_url="postgresql://x")

    async def postgres_has_offers():
        return has_offers

    offers._postgres_has_offers = postgres_has_offers
    return table, offers


def ends(**by_partition):
    async def changelog_ends(partitions):
        return {p: by_partition.get(f"p{p}", 0) for p in partitions}

    return changelog_ends


async def test_empty_changelogs_restore_when_postgres_has_offers_and_the_mark_stays():
    table, offers = store(has_offers=True)
    assert await offers.find_restoring({0, 1, 2}, ends(p1=5)) == {0, 2}
    assert offers.restoring_known.is_set()
    await table.checkpoint()
    assert table.data == {RESTORING: b"1"}  # the fake keeps one store for all partitions
    offers.forget_restoring()
    assert not offers.restoring_known.is_set()
    # after a restart its changelog is no longer empty; the mark says it still restores
    assert await offers.find_restoring({0}, ends(p0=9)) == {0}


async def test_nothing_restores_when_postgres_has_no_offers():
    _, offers = store(has_offers=False)
    assert await offers.find_restoring({0, 1}, ends()) == set()
    assert not offers.restoring(("acme", "u1"))
    assert offers.restoring_known.is_set()
