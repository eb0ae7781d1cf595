"""Commands the API waits for, and their answers.

The gateway decides nothing: it puts an offer request or a status change on
``proffer.offer-requests``, where the offers agent that owns the customer decides, and a
rules or policy change on ``proffer.tenant-config-commands``, where the one owner of
the tenant's config decides. It listens for the outcome's reply key before it
publishes, and wakes when the sink's commit has made the outcome readable
(:mod:`proffer_stream.db.replies`): the answer is what a following GET reads. A wait
that runs out (``PROFFER_OFFER_WAIT_SECONDS``) answers 202 with where to ask again.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import NamedTuple, TypeVar

import asyncpg
from fastapi.responses import JSONResponse, Response

from proffer_stream.api.errors import ApiError
from proffer_stream.api.models import (
    ChangePending,
    ConfigChangePending,
    ErrorDetail,
    OfferPending,
    OfferResponse,
    TransitionConflict,
    TransitionError,
    VersionConflict,
    VersionConflictError,
)
from proffer_stream.api.services import EventPublisher
from proffer_stream.core.identity import new_request_id, partition_key
from proffer_stream.core.settings import Settings
from proffer_stream.db import offers
from proffer_stream.db.issued import IssuedKind, record_issued, was_issued
from proffer_stream.db.offers import Decision
from proffer_stream.db.replies import (
    ReplyListener,
    command_key,
    config_version_key,
    decision_key,
    offer_key,
)
from proffer_stream.db.tenant_config import change_at, get_config_outcome
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.config import ConfigChange, ConfigCommand, ConfigOutcome, config_key
from proffer_stream.offers.models import (
    CommandOutcome,
    OfferCommand,
    OfferRequest,
    OfferStatus,
    RequestSource,
)


def requested_by(key_name: str) -> str:
    """Who asked, as offer events record it."""
    return f"api key {key_name!r}"


def offer_request(
    tenant_id: str,
    external_id: str,
    source: RequestSource,
    by: str,
    publisher: EventPublisher | None = None,
) -> OfferRequest:
    """A new request for an offer for this customer, with a fresh id; with the
    ``publisher`` that accepted the customer's events, the offset of the last one, for the
    offers agent to decide after it."""
    after = (
        publisher.last_event_offset(partition_key(tenant_id, external_id)) if publisher else None
    )
    return OfferRequest(
        request_id=new_request_id(),
        tenant_id=tenant_id,
        external_customer_id=external_id,
        source=source,
        requested_at=datetime.now(UTC),
        requested_by=by,
        after_event_offset=after,
    )


async def send_request(
    publisher: EventPublisher, settings: Settings, request: OfferRequest
) -> None:
    """Put the request on ``proffer.offer-requests``, keyed like the customer's events."""
    await publisher.publish(
        partition_key(request.tenant_id, request.external_customer_id),
        request.model_dump_json().encode(),
        topics_for(settings).offer_requests.name,
    )


T = TypeVar("T")


class Sent(NamedTuple):
    """A command the API sends: whose, what kind of id, its id and its reply key."""

    tenant_id: str
    kind: IssuedKind
    command_id: str
    reply_key: str


async def _send_and_wait(
    db: asyncpg.Pool,
    replies: ReplyListener,
    sent: Sent,
    publish: Callable[[], Awaitable[None]],
    find: Callable[[], Awaitable[T | None]],
    deadline: float,
    take: Callable[[str], T | None] | None = None,
) -> T | None:
    """Record the id as issued, listen for its reply key, ``publish`` the command, and
    read its outcome once the key is notified (not before: it cannot be projected
    before it is sent): the one the notification carried (``take``), else with
    ``find``; None if ``deadline`` passes first."""
    await record_issued(db, sent.tenant_id, sent.kind, [sent.command_id])
    with replies.expect(sent.reply_key) as reply:
        await publish()
        return await reply.read(find, deadline, look_first=False, take=take)


async def generate(
    publisher: EventPublisher,
    replies: ReplyListener,
    db: asyncpg.Pool,
    settings: Settings,
    request: OfferRequest,
) -> OfferResponse | JSONResponse:
    """Send the request and answer with its offer once decided (or why there is none)."""
    tenant_id, request_id = request.tenant_id, request.request_id
    deadline = time.monotonic() + settings.offer_wait_seconds
    decision = await _send_and_wait(
        db,
        replies,
        Sent(tenant_id, "request", request_id, decision_key(request_id)),
        lambda: send_request(publisher, settings, request),
        lambda: offers.get_decision(db, tenant_id, request_id),
        deadline,
    )
    if decision is None:
        return offer_pending(request_id)
    return await answer_decision(db, tenant_id, decision)


async def change_status(
    publisher: EventPublisher,
    replies: ReplyListener,
    db: asyncpg.Pool,
    settings: Settings,
    offer: OfferOf,
    change: tuple[OfferStatus, str | None],
    by: str,
) -> Response:
    """Ask the offer's owner to move it to ``change``'s status (with its reason), and
    answer with the offer at its new version, or the 409 saying why not."""
    status, reason = change
    command = OfferCommand(
        command_id=new_request_id(),
        tenant_id=offer.tenant_id,
        external_customer_id=offer.external_customer_id,
        action="transition",
        offer_id=offer.offer_id,
        status=status,
        cause=by,
        reason=reason,
        issued_at=datetime.now(UTC),
    )
    deadline = time.monotonic() + settings.offer_wait_seconds
    outcome = await _send_and_wait(
        db,
        replies,
        Sent(offer.tenant_id, "offer_command", command.command_id, command_key(command.command_id)),
        lambda: publisher.publish(
            partition_key(offer.tenant_id, offer.external_customer_id),
            command.model_dump_json().encode(),
            topics_for(settings).offer_requests.name,
        ),
        lambda: offers.get_command_outcome(db, offer.tenant_id, command.command_id),
        deadline,
        take=functools.partial(_outcome_of, offer.tenant_id),
    )
    if outcome is None:
        return change_pending(command.command_id)
    return await answer_change(replies, db, offer.tenant_id, outcome, deadline)


def _outcome_of(tenant_id: str, notified: str) -> CommandOutcome | None:
    """A status change's outcome as its notification carried it, if this tenant's."""
    outcome = CommandOutcome.model_validate_json(notified)
    return outcome if outcome.tenant_id == tenant_id else None


async def answer_decision(db: asyncpg.Pool, tenant_id: str, decision: Decision) -> OfferResponse:
    """The decided offer, or a 422 saying why none was made."""
    if decision.offer_id is not None:
        offer = await offers.get_offer(db, tenant_id, decision.offer_id)
        if offer is not None:
            return OfferResponse(offer=offer)
    reasons = decision.trace.suppressed or ["no offer was made"]
    raise ApiError(
        422,
        "no_offer",
        "No offer was made: " + "; ".join(reasons),
        [ErrorDetail(loc=v.check, message=v.detail) for v in decision.trace.verdicts],
    )


async def answer_change(
    replies: ReplyListener,
    db: asyncpg.Pool,
    tenant_id: str,
    outcome: CommandOutcome,
    deadline: float,
) -> Response:
    """The offer as the change left it (once the sink has it), or the 409 saying why not."""
    if outcome.outcome == "rejected":
        conflict = TransitionConflict(
            error=TransitionError(
                code="invalid_transition",
                message=outcome.reason or "the offer cannot make this move",
                details=[ErrorDetail(loc="body.status", message=outcome.reason or "")],
                current_status=outcome.status,
                allowed_statuses=outcome.allowed,
            )
        )
        return JSONResponse(conflict.model_dump(mode="json"), status_code=409)
    offer = await replies.wait_for(
        offer_key(outcome.offer_id),
        lambda: offers.offer_json_at(db, tenant_id, outcome.offer_id, outcome.version),
        deadline,
    )
    if offer is None:
        return change_pending(outcome.command_id)
    return offer_answer(offer)


def offer_answer(offer_json: str) -> Response:
    """An :class:`OfferResponse` around the offer's stored JSON, as it is: a change's
    answer builds no model (a parse and a dump of the whole offer per PATCH)."""
    return Response('{"success":true,"offer":' + offer_json + "}", media_type="application/json")


class OfferOf(NamedTuple):
    """Which offer a command is for, and whose it is."""

    tenant_id: str
    offer_id: int
    external_customer_id: str


async def change_config(
    publisher: EventPublisher,
    replies: ReplyListener,
    db: asyncpg.Pool,
    settings: Settings,
    command: ConfigCommand,
) -> ConfigChange | JSONResponse:
    """Ask the owner of the tenant's config to make the change; answer with the change in
    force once projected, a 409 when another was made meanwhile, or a 202."""
    deadline = time.monotonic() + settings.offer_wait_seconds
    outcome = await _send_and_wait(
        db,
        replies,
        Sent(
            command.tenant_id, "config_command", command.command_id, command_key(command.command_id)
        ),
        lambda: publisher.publish(
            config_key(command.tenant_id, command.kind),
            command.model_dump_json().encode(),
            topics_for(settings).tenant_config_commands.name,
        ),
        lambda: get_config_outcome(db, command.tenant_id, command.command_id),
        deadline,
    )
    if outcome is None:
        return config_pending(command.command_id)
    return await answer_config(replies, db, outcome, deadline)


async def answer_config(
    replies: ReplyListener, db: asyncpg.Pool, outcome: ConfigOutcome, deadline: float
) -> ConfigChange | JSONResponse:
    """The change a command made, once PostgreSQL has it in force (so that a GET reads
    it), or the 409 saying which version is in force."""
    if outcome.change is None:
        conflict = VersionConflict(
            error=VersionConflictError(
                code="version_conflict",
                message=outcome.reason or "another change was made meanwhile",
                current_version=outcome.version,
            )
        )
        return JSONResponse(conflict.model_dump(mode="json"), status_code=409)
    tenant_id, kind = outcome.tenant_id, outcome.kind
    projected = await replies.wait_for(
        config_version_key(tenant_id, kind),
        lambda: change_at(db, tenant_id, kind, outcome.version),
        deadline,
    )
    if projected is None:
        return config_pending(outcome.command_id)
    return outcome.change


_NEVER_ISSUED: dict[IssuedKind, str] = {
    "request": "offer request",
    "offer_command": "status change",
    "config_command": "rules or policy change",
    "catalog_command": "catalog command",
}


async def pending_or_unknown(
    db: asyncpg.Pool, tenant_id: str, kind: IssuedKind, command_id: str
) -> None:
    """Raise 404 ``not_found`` unless this id was issued to this tenant (a poll for it is
    then 202 until its outcome is known)."""
    if not await was_issued(db, tenant_id, kind, command_id):
        what = _NEVER_ISSUED[kind]
        raise ApiError(
            404,
            "not_found",
            f"No {what} {command_id!r} was made with this tenant's keys.",
        )


def config_pending(command_id: str) -> JSONResponse:
    """202: the config change is accepted; where to ask what became of it."""
    pending = ConfigChangePending(
        command_id=command_id, poll_url=f"/api/config/commands/{command_id}"
    )
    return JSONResponse(pending.model_dump(), status_code=202)


def change_pending(command_id: str) -> JSONResponse:
    """202: the change is accepted; where to ask what became of it."""
    pending = ChangePending(command_id=command_id, poll_url=f"/api/offers/commands/{command_id}")
    return JSONResponse(pending.model_dump(), status_code=202)


def offer_pending(request_id: str) -> JSONResponse:
    """202: the request is accepted; where to ask for its offer."""
    pending = OfferPending(request_id=request_id, poll_url=f"/api/offers/requests/{request_id}")
    return JSONResponse(pending.model_dump(), status_code=202)
