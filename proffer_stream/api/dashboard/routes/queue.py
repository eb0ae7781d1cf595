"""The review queue: offers waiting for a decision, with their copy, terms, reasoning and
trace; approve, send or expire one or many (through the API's own ``change_status``, so a
refusal reads as the API's 409 says it); and a live feed of offer events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from proffer_stream.api.commands import OfferOf, change_status, requested_by
from proffer_stream.api.dashboard import forms
from proffer_stream.api.dashboard.pulse import FeedItem
from proffer_stream.api.dashboard.web import (
    Form,
    SignedIn,
    Viewer,
    pulse_of,
    render,
    services_of,
)
from proffer_stream.api.errors import ApiError
from proffer_stream.api.routes.config import get_rules
from proffer_stream.api.services import Services
from proffer_stream.db import dashboard, offers
from proffer_stream.offers.models import CHANNELS, OFFER_STATUSES, OfferStatus

router = APIRouter(include_in_schema=False)

QUEUE_LENGTH = 50
MOVES_AT_ONCE = 8
"""Status changes of one bulk action in flight together."""
FEED_KEY_CHECK_SECONDS = 1.0
"""How often a live feed checks that its session's key still works."""
FEED_STREAM_SECONDS = 10.0
FEED_RETRY_MS = 500


@dataclass(frozen=True)
class Outcome:
    """What became of one offer's move: done, or why not."""

    offer_id: int
    done: bool
    message: str


@router.get("/dashboard/queue")
async def queue(request: Request, viewer: SignedIn) -> HTMLResponse:
    return await _page(request, viewer, [])


@router.post("/dashboard/queue")
async def act(request: Request, viewer: SignedIn, fields: Form) -> HTMLResponse:
    """Move the offers of the button pressed, then show the queue with what became of each."""
    chosen = forms.chosen_action(fields)
    if chosen is None or not chosen[1]:
        note = Outcome(0, False, "Tick one or more offers, then choose what to do with them.")
        return await _page(request, viewer, [note], status_code=422)
    status, ids = chosen
    services = services_of(request)
    limit = asyncio.Semaphore(MOVES_AT_ONCE)

    async def move(offer_id: int) -> Outcome:
        async with limit:
            return await _move(services, viewer, offer_id, status)

    outcomes = list(await asyncio.gather(*(move(i) for i in ids)))
    return await _page(request, viewer, outcomes)


async def _move(services: Services, viewer: Viewer, offer_id: int, status: OfferStatus) -> Outcome:
    pool = services.pool
    customer = await offers.offer_customer(pool, viewer.tenant_id, offer_id)
    if customer is None:
        return Outcome(offer_id, False, f"Offer {offer_id}: no such offer.")
    try:
        answer = await change_status(
            services.publisher,
            services.replies,
            pool,
            services.settings,
            OfferOf(viewer.tenant_id, offer_id, customer),
            (status, "from the dashboard"),
            requested_by(viewer.key_name),
        )
    except ApiError as exc:
        return Outcome(offer_id, False, f"Offer {offer_id}: {exc.body.error.message}")
    if answer.status_code == 200:
        return Outcome(offer_id, True, f"Offer {offer_id} is now {status}.")
    if answer.status_code == 202:
        return Outcome(offer_id, True, f"Offer {offer_id}: accepted, still being applied.")
    message = json.loads(bytes(answer.body))["error"]["message"]
    return Outcome(offer_id, False, f"Offer {offer_id} was not moved: {message}")


async def _page(
    request: Request, viewer: Viewer, outcomes: list[Outcome], status_code: int = 200
) -> HTMLResponse:
    chosen = forms.queue_filter(request.query_params)
    services = services_of(request)
    pool = services.pool
    found = await dashboard.review_queue(pool, viewer.tenant_id, chosen, QUEUE_LENGTH)
    return render(
        request,
        viewer,
        "queue.html",
        status_code,
        page="queue",
        filter=chosen,
        queued=found,
        rules=[rule.id for rule in (await get_rules(viewer.tenant_id, pool, services)).rules],
        statuses=OFFER_STATUSES,
        channels=CHANNELS,
        actions=forms.ACTIONS,
        outcomes=outcomes,
        query=request.url.query,
    )


@router.get("/dashboard/queue/feed")
async def feed(request: Request, viewer: SignedIn) -> StreamingResponse:
    """Server-sent events: the tenant's offer events as the sink stores them (one
    ``LISTEN`` connection per gateway for every browser). A stream ends when the session's
    key is revoked, and after :data:`FEED_STREAM_SECONDS` (the browser reconnects with the
    last event's id and misses nothing the gateway still holds), so that no stream holds
    up a gateway's graceful shutdown for long."""
    pulse = pulse_of(request)
    keys = services_of(request).keys
    after = forms.offer_ids([request.headers.get("last-event-id", "")])
    ends = time.monotonic() + FEED_STREAM_SECONDS

    async def events() -> AsyncIterator[str]:
        yield f"retry: {FEED_RETRY_MS}\n\n"
        with pulse.subscribe(viewer.tenant_id, after[0] if after else 0) as items:
            while time.monotonic() < ends and not await request.is_disconnected():
                try:
                    number, item = await asyncio.wait_for(items.get(), FEED_KEY_CHECK_SECONDS)
                except TimeoutError:
                    if await keys.owner_of_hash(viewer.session.key_hash) is None:
                        yield "event: signed-out\ndata: {}\n\n"
                        return
                    yield ": keep-alive\n\n"
                    continue
                yield f"id: {number}\ndata: {json.dumps(_feed_json(item))}\n\n"

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


def _feed_json(item: FeedItem) -> dict[str, object]:
    return {
        "event_type": item.event_type,
        "offer_id": item.offer_id,
        "status": item.status,
        "customer": item.external_customer_id,
        "cause": item.cause,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
