"""Scale-out and failover: two workers share the partitions; kill -9 one, the other takes over.

Both workers run in one consumer group with the same settings but their instance (their
own table stores under the data dir). Events for 1,000 customers, each with an explicit
id and some sent twice, and offer requests are produced at a steady pace; one worker is
killed mid-stream. The survivor must be assigned every partition within 10 s of the kill
(the session timeout, plus the broker's rebalance), and the profiles, event rows and
offers must equal the truth: every event counted once, one offer per request.
"""

import asyncio
import json
import re
import time
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner
from support import produce_paced, wait_for
from test_offers_chaos import counts as offer_counts
from test_offers_chaos import offer_ids_on_topic, offer_request

from proffer_stream.core.identity import offer_id, partition_key
from proffer_stream.db import keys
from proffer_stream.kafka.topics import topics_for

pytestmark = pytest.mark.chaos

TENANT = "acme"
CUSTOMERS = 1_000
EVENTS_PER_CUSTOMER = 24
RESENT_EVERY = 20  # every 20th record is an earlier one sent again (same event ids)
EVENTS_PER_SECOND = 800
REQUESTS = 600
REQUESTS_PER_SECOND = 25
# The takeover: the broker expires the dead member 5-6 s after the kill (its last
# heartbeat was up to one interval before), the survivor hears of it at its next
# heartbeat, rejoins, and the embedded broker holds a join for 3 s. The default session
# timeout (6 s, the least stock Kafka allows) with a 0.5 s heartbeat: 8.7-9.7 s.
SESSION_TIMEOUT = 6.0
HEARTBEAT_INTERVAL = 0.5
TAKEOVER_SECONDS = 10.0
PARTITIONS = 4
ALL = set(range(PARTITIONS))


@pytest.fixture(autouse=True)
async def tenant_exists(db):
    """The tenant has a key: the worker dead-letters the records of a tenant without one."""
    await keys.create_key(db, TENANT, "chaos")


def purchase(customer: int, n: int) -> tuple[bytes, bytes]:
    external = f"c{customer}"
    value = {
        "tenant_id": TENANT,
        "customer": {"id": external},
        "events": [{"id": f"{external}-{n}", "type": "purchase", "data": {"amount": 1}}],
    }
    return partition_key(TENANT, external), json.dumps(value).encode()


def event_records() -> list[tuple[bytes, bytes]]:
    """Each customer's events round-robin, with re-sent copies mixed in."""
    records = []
    for n in range(EVENTS_PER_CUSTOMER):
        for customer in range(CUSTOMERS):
            records.append(purchase(customer, n))
            if len(records) % RESENT_EVERY == 0:
                records.append(records[len(records) // 2])
    return records


def partition_of(external_id: str) -> int:
    key = partition_key(TENANT, external_id)
    return int(DefaultPartitioner()(key, list(ALL), list(ALL)))


async def totals(db) -> dict[str, int]:
    row = await db.fetchrow(
        "SELECT (SELECT coalesce(sum(event_count), 0) FROM customers) AS counted,"
        " (SELECT coalesce(sum((signals->>'purchase_total')::numeric), 0) FROM customers)"
        " AS spent,"
        " (SELECT count(*) FROM events) AS stored,"
        " (SELECT count(*) FROM customers) AS customers"
    )
    return {name: int(value) for name, value in dict(row).items()}


async def counted_on(db, partitions: set[int]) -> int:
    rows = await db.fetch(
        "SELECT external_id, event_count FROM customers WHERE tenant_id = $1", TENANT
    )
    return sum(r["event_count"] for r in rows if partition_of(r["external_id"]) in partitions)


ASSIGNED = "Setting newly assigned partitions"
ROW = re.compile(r"^\|\s*(\S+)\s*\|\s*\{([^}]*)\}\s*\|")


def parse_partitions(text: str) -> set[int]:
    """``0, 2`` or ``0-3`` or ``0-1, 3`` (how the consumer's log writes a set)."""
    found: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, _, high = part.partition("-")
        found |= set(range(int(low), int(high or low) + 1))
    return found


def assignment(log: Path, topic: str) -> set[int] | None:
    """The partitions of ``topic`` in the worker's latest assignment (None: none yet)."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    starts = [i for i, line in enumerate(lines) if ASSIGNED in line]
    if not starts:
        return None
    for line in lines[starts[-1] + 1 :]:
        if line.startswith("+") and "for group" in line:
            break
        match = ROW.match(line)
        if match and match.group(1) == topic:
            return parse_partitions(match.group(2))
    return set()


async def test_two_workers_share_the_partitions_and_one_takes_over_when_the_other_dies(
    settings, db, processes
):
    own = settings.model_copy(
        update={
            "broker_session_timeout": SESSION_TIMEOUT,
            "broker_heartbeat_interval": HEARTBEAT_INTERVAL,
        }
    )
    topics = topics_for(own)
    watched = (topics.events.name, topics.offer_requests.name)
    processes.start("sink", own)
    logs = {}
    for name in ("worker-a", "worker-b"):
        processes.start("worker", own.model_copy(update={"worker_instance": name[-1]}), name)
        logs[name] = processes.supervisor.children[name].log_path
    processes.start("gateway", own)

    async def assignments():
        processes.assert_alive()
        return {name: [assignment(log, t) for t in watched] for name, log in logs.items()}

    def shared(found) -> bool:
        """Both workers hold partitions of each topic, together all of them, none twice."""
        for index in range(len(watched)):
            a, b = found["worker-a"][index], found["worker-b"][index]
            if not a or not b or a & b or a | b != ALL:
                return False
        return True

    before = await wait_for(assignments, shared, timeout=120, what="both workers assigned")
    dead, survivor = "worker-a", "worker-b"
    dead_partitions = before[dead][0]

    records = event_records()
    requests = [offer_request(n) for n in range(REQUESTS)]
    producing = asyncio.gather(
        produce_paced(own, topics.events.name, records, per_second=EVENTS_PER_SECOND),
        produce_paced(
            own,
            topics.offer_requests.name,
            [
                (partition_key(TENANT, r.external_customer_id), r.model_dump_json().encode())
                for r in requests
            ],
            per_second=REQUESTS_PER_SECOND,
        ),
    )
    await wait_for(lambda: totals(db), lambda t: t["counted"] >= 5_000, what="progress")
    assert (await offer_counts(db))["offers"] > 0, "offers are being made when the kill lands"

    processes.kill(dead)
    killed_at = time.monotonic()
    await wait_for(
        assignments,
        lambda found: all(p == ALL for p in found[survivor]),
        timeout=60,
        interval=0.05,
        what="the survivor assigned every partition",
    )
    takeover = time.monotonic() - killed_at
    at_takeover = await counted_on(db, dead_partitions)
    await wait_for(
        lambda: counted_on(db, dead_partitions),
        lambda counted: counted > at_takeover,
        timeout=60,
        what="counting resumed on the dead worker's partitions",
    )
    resumed = time.monotonic() - killed_at
    print(f"takeover: assigned after {takeover:.1f}s, counting resumed after {resumed:.1f}s")
    assert not producing.done(), "the kill landed mid-stream and the takeover too"
    assert takeover <= TAKEOVER_SECONDS, f"took {takeover:.1f}s to take over"
    # Then it restores the tables from their changelogs; the sink follows within a second.
    assert resumed <= 2 * TAKEOVER_SECONDS, f"counting resumed only after {resumed:.1f}s"
    await producing

    events = CUSTOMERS * EVENTS_PER_CUSTOMER
    expected = {
        "counted": events,
        "spent": events,
        "stored": events,
        "customers": CUSTOMERS,
    }
    await wait_for(lambda: totals(db), lambda t: t == expected, timeout=180, what="exact totals")
    per_customer = await db.fetch("SELECT external_id, event_count FROM customers")
    assert {r["external_id"]: r["event_count"] for r in per_customer} == {
        f"c{n}": EVENTS_PER_CUSTOMER for n in range(CUSTOMERS)
    }

    one_each = {"offers": REQUESTS, "requests": REQUESTS, "decisions": REQUESTS}
    one_each["generated"] = REQUESTS
    await wait_for(lambda: offer_counts(db), lambda c: c == one_each, timeout=120, what="offers")
    await asyncio.sleep(3)  # nothing more trickles in
    assert await totals(db) == expected
    assert await offer_counts(db) == one_each
    ids = {offer_id(TENANT, r.request_id) for r in requests}
    assert {r["id"] for r in await db.fetch("SELECT id FROM offers")} == ids
    assert set(await offer_ids_on_topic(own)) == ids  # replays re-publish, never new offers
    assert processes.stop(survivor) == 0
    assert processes.stop("sink") == 0
