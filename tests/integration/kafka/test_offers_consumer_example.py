"""The README's downstream consumer (examples/offers_consumer.py) against the real broker:
each change once, in version order, repeats and older copies skipped."""

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from proffer_stream.core.identity import partition_key
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.models import DecisionTrace, Offer, OfferEvent, OfferTerms

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "offers_consumer.py"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def offer(status, version):
    return Offer(
        id=42,
        customer_id=7,
        external_customer_id="u7",
        tenant_id="acme",
        headline="h",
        body_copy="b",
        offer_type="discount",
        offer_terms=OfferTerms(discount_percent=10, code="SAVE10"),
        channel="email",
        status=status,
        ai_reasoning="r",
        expires_at=NOW + timedelta(days=7),
        generated_at=NOW,
        request_id="req-1",
        writer="built-in",
        version=version,
    )


def event(event_id, event_type, status, previous, version, **fields):
    return OfferEvent(
        event_id=event_id,
        event_type=event_type,
        tenant_id="acme",
        customer_id=7,
        external_customer_id="u7",
        offer_id=fields.pop("offer_id", 42),
        previous_status=previous,
        status=status,
        version=version,
        occurred_at=NOW,
        cause=fields.pop("cause", "api key 'ops'"),
        offer=offer(status, version) if status else None,
        **fields,
    )


async def test_the_example_consumer_prints_each_change_once(settings):
    history = [
        event("req-1:decided", "offer.generated", "generated", None, 1, cause="rule r"),
        event("c1", "offer.approved", "approved", "generated", 2),
        event("c1", "offer.approved", "approved", "generated", 2),  # delivered twice
        event("req-1:decided", "offer.generated", "generated", None, 1, cause="rule r"),
        event("c2", "offer.redemption_rejected", "approved", "approved", 2, reason="not sent"),
        event(
            "req-2:decided",
            "offer.suppressed",
            None,
            None,
            0,
            offer_id=None,
            trace=DecisionTrace(request_id="req-2", source="rule", suppressed=["cooldown: x"]),
        ),
    ]
    topic = topics_for(settings).offers.name
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for e in history:
            await producer.send_and_wait(
                topic, e.model_dump_json().encode(), key=partition_key("acme", "u7")
            )
    finally:
        await producer.stop()

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--bootstrap-servers",
        settings.bootstrap_servers,
        "--topic",
        topic,
        "--group",
        f"{settings.topic_prefix}example",
        "--from-beginning",
        "--max-events",
        "4",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    assert out.decode().splitlines() == [
        "offer.generated offer 42 customer 7: - -> generated v1 by rule r",
        "offer.approved offer 42 customer 7: generated -> approved v2 by api key 'ops'",
        "offer.redemption_rejected offer 42 customer 7: not sent",
        "offer.suppressed customer 7: cooldown: x",
    ]
