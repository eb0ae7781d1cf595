"""The catalog's commands the API waits for, and the member views it answers from memory.

A definition change or a member's action goes, as a command, to the one owner of the
catalog offer (keyed by tenant and offer on ``proffer.catalog-commands``); the gateway
listens for the outcome's reply key first, and wakes once the sink has projected it
(:mod:`proffer_stream.db.replies`). A definition's answer also waits until this
gateway's copy of the catalog holds the new version, so that its member views show it.
A wait that runs out answers 202 with where to ask again.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic_core import to_json

from proffer_stream.api.catalog_models import (
    CatalogCommandPending,
    CatalogRefusal,
    MemberActionResponse,
    RefusalError,
)
from proffer_stream.api.commands import Sent, _send_and_wait
from proffer_stream.api.errors import ApiError
from proffer_stream.api.models import ErrorDetail, VersionConflict, VersionConflictError
from proffer_stream.api.services import EventPublisher, Services
from proffer_stream.catalog.models import (
    CatalogDefinition,
    CatalogEvent,
    DefinitionCommand,
    DefinitionTarget,
    MemberAction,
    MemberCommand,
    catalog_key,
)
from proffer_stream.catalog.name_order import NameOrders
from proffer_stream.catalog.periods import UnknownTimeZone, zone
from proffer_stream.catalog.store import CatalogStore
from proffer_stream.catalog.views import in_audience, member_zone
from proffer_stream.core.identity import idempotent_command_id, new_request_id
from proffer_stream.core.settings import Settings
from proffer_stream.db.catalog_reads import command_outcome, member_profile
from proffer_stream.db.replies import ReplyListener, catalog_definition_key, command_key
from proffer_stream.kafka.catalog_follower import CatalogFollower
from proffer_stream.kafka.topics import topics_for
from proffer_stream.signals.models import CustomerProfile

NOT_FOUND_REASONS = frozenset({"unknown_offer", "not_published", "archived"})
"""Refusals a member sees as 404: for them, the offer is not there."""


@dataclass(frozen=True)
class CatalogIO:
    """What the catalog's routes use: PostgreSQL, Kafka, replies, the catalog in memory."""

    db: asyncpg.Pool
    replies: ReplyListener
    publisher: EventPublisher
    settings: Settings
    catalog: CatalogStore
    follower: CatalogFollower
    signing_key_of: Callable[[], bytes]
    name_orders: NameOrders

    def deadline(self) -> float:
        return time.monotonic() + self.settings.offer_wait_seconds

    async def send(
        self, tenant_id: str, command_id: str, key: bytes, value: bytes, deadline: float
    ) -> CatalogEvent | None:
        """Publish a command to the offer's owner and read its outcome once projected."""
        topic = topics_for(self.settings).catalog_commands.name
        return await _send_and_wait(
            self.db,
            self.replies,
            Sent(tenant_id, "catalog_command", command_id, command_key(command_id)),
            lambda: self.publisher.publish(key, value, topic),
            lambda: command_outcome(self.db, tenant_id, command_id),
            deadline,
            take=functools.partial(outcome_of, tenant_id),
        )


def outcome_of(tenant_id: str, notified: str) -> CatalogEvent | None:
    """The owner's decision as its notification carried it, if it is this tenant's."""
    event = CatalogEvent.model_validate_json(notified)
    return event if event.tenant_id == tenant_id else None


async def catalog_io(request: Request) -> CatalogIO:
    """The catalog's connections of the request's gateway."""
    services: Services = request.app.state.services
    return CatalogIO(
        services.pool,
        services.replies,
        services.publisher,
        services.settings,
        services.catalog,
        services.catalog_follower,
        lambda: services.signing_key,
        services.name_orders,
    )


Catalog = Annotated[CatalogIO, Depends(catalog_io)]


def pending(command_id: str) -> JSONResponse:
    """202: the command is accepted; where to ask what became of it."""
    body = CatalogCommandPending(
        command_id=command_id, poll_url=f"/api/catalog/commands/{command_id}"
    )
    return JSONResponse(body.model_dump(), status_code=202)


def version_conflict(event: CatalogEvent) -> JSONResponse:
    """409: another change was made meanwhile, or the item is not there to change."""
    conflict = VersionConflict(
        error=VersionConflictError(
            code="version_conflict",
            message=event.message or "another change was made meanwhile",
            current_version=event.version or 0,
        )
    )
    return JSONResponse(conflict.model_dump(mode="json"), status_code=409)


async def define(
    io: CatalogIO,
    command: DefinitionCommand,
    read: Callable[[int], Awaitable[Any | None]],
) -> Any | JSONResponse:
    """Send a definition change; answer what ``read(version)`` reads once the new version
    is projected and in this gateway's memory, a 409 or a 202."""
    deadline = io.deadline()
    event = await io.send(
        command.tenant_id,
        command.command_id,
        command.key,
        command.model_dump_json().encode(),
        deadline,
    )
    if event is None:
        return pending(command.command_id)
    return await answer_definition(io, command.tenant_id, command.target, event, read, deadline)


async def answer_definition(
    io: CatalogIO,
    tenant_id: str,
    target: DefinitionTarget,
    event: CatalogEvent,
    read: Callable[[int], Awaitable[Any | None]],
    deadline: float,
) -> Any | JSONResponse:
    """The item at the version ``event`` made (once readable), or the 409 of a refusal."""
    if event.kind == "refused" or event.version is None:
        return version_conflict(event)
    version = event.version
    found = await io.replies.wait_for(
        catalog_definition_key(tenant_id, target, event.offer_id),
        lambda: read(version),
        deadline,
    )
    if found is None:
        return pending(event.event_id)
    await io.follower.wait_for(tenant_id, target, event.offer_id, version, deadline)
    return found


def timezone_of(
    given: str | None, where: str, profile: CustomerProfile | None, default: str
) -> str:
    """The member's time zone: the request's (422 naming ``where`` if unknown), else the
    profile's ``metadata.timezone`` (when it is one), else ``default``."""
    if given is not None:
        try:
            zone(given)
        except UnknownTimeZone as exc:
            raise ApiError(
                422,
                "validation_error",
                "Invalid request.",
                [ErrorDetail(loc=where, message=str(exc))],
            ) from None
        return given
    return member_zone(profile, default)


def needs_profile(offer: CatalogDefinition, timezone_given: bool) -> bool:
    """Whether deciding a member's action on ``offer`` needs their profile: for its
    audience, or for the time zone its periodic limit counts in (when the request gives
    none). Most actions need neither: one PostgreSQL read fewer."""
    return offer.audience is not None or (offer.periodic_usage is not None and not timezone_given)


def live_offer(io: CatalogIO, tenant_id: str, offer_id: int) -> CatalogDefinition:
    """The published, not archived catalog offer, or 404."""
    offer = io.catalog.offers(tenant_id).get(offer_id)
    if offer is None or offer.archived_at is not None or offer.status != "published":
        raise offer_not_found(offer_id)
    return offer


def offer_not_found(offer_id: int) -> ApiError:
    return ApiError(404, "offer_not_found", f"No catalog offer {offer_id} for this member.")


@dataclass(frozen=True)
class Action:
    """A member's action, as asked: on which offer, for whom, with what details."""

    tenant_id: str
    external_customer_id: str
    offer_id: int
    action: MemberAction
    timezone: tuple[str | None, str] = (None, "body.timezone")
    authorization_token: str | None = None
    encoded_token_id: str | None = None
    source: str = "api"
    idempotency_key: str | None = None
    """The client's ``Idempotency-Key``: the command's id follows from it."""

    def command_id(self) -> str:
        """A new id, or the one the client's idempotency key gives this very action."""
        if self.idempotency_key is None:
            return new_request_id()
        scope = f"{self.external_customer_id}\x00{self.offer_id}\x00{self.action}"
        return idempotent_command_id(self.tenant_id, scope, self.idempotency_key)


async def act(io: CatalogIO, asked: Action) -> Response:
    """Send a member's action to the offer's owner; answer what it did, its refusal
    (409, 404 when the offer is not there for the member) or a 202."""
    offer = live_offer(io, asked.tenant_id, asked.offer_id)
    given, where = asked.timezone
    profile = (
        await member_profile(io.db, asked.tenant_id, asked.external_customer_id)
        if needs_profile(offer, given is not None)
        else None
    )
    now = datetime.now(UTC)
    command = MemberCommand(
        command_id=asked.command_id(),
        tenant_id=asked.tenant_id,
        offer_id=asked.offer_id,
        external_customer_id=asked.external_customer_id,
        action=asked.action,
        issued_at=now,
        timezone=timezone_of(given, where, profile, io.settings.default_timezone),
        authorization_token=asked.authorization_token,
        in_audience=in_audience(offer, profile, now),
        encoded_token_id=asked.encoded_token_id,
        source=asked.source,
    )
    event = await io.send(
        asked.tenant_id,
        command.command_id,
        catalog_key(asked.tenant_id, asked.offer_id),
        command.model_dump_json().encode(),
        io.deadline(),
    )
    if event is None:
        return pending(command.command_id)
    return answer_action(event)


def answer_action(event: CatalogEvent) -> Response:
    """200 with what the action did, or its refusal."""
    if event.kind == "refused":
        if event.reason in NOT_FOUND_REASONS:
            raise offer_not_found(event.offer_id)
        refusal = CatalogRefusal(
            error=RefusalError(
                code=event.reason or "refused",
                message=event.message or "refused",
                details=[ErrorDetail(loc=f"offer {event.offer_id}", message=event.message or "")],
                resets_at=event.resets_at,
            )
        )
        return JSONResponse(refusal.model_dump(mode="json"), status_code=409)
    answer = MemberActionResponse(
        action=event.action,  # type: ignore[arg-type]
        offer_id=event.offer_id,
        external_customer_id=event.external_customer_id or "",
        command_id=event.event_id,
        use=event.use,
        counts=event.counts,
        member=event.member,
    )
    return Response(to_json(answer), media_type="application/json")


def json_answer(body: dict[str, Any], status_code: int = 200) -> Response:
    """A body built as plain data, serialised as it is (the member views' hot path)."""
    return Response(to_json(body), status_code=status_code, media_type="application/json")
