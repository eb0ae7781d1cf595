"""Decisions answered while a page loads: the catalog from this gateway's memory, the
customer from one PostgreSQL read, the decision logged on ``proffer.decisions`` (acked)
before the answer goes out; and the reactions to a decision, logged the same way.

A reaction names a decision that may not be projected yet (the client reacts right
after the answer): the gateway waits for it, woken by the sink's commit, only while the
decision is younger than :data:`RECENT_SECONDS` (its id tells when it was made).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import Depends, Request

from proffer_stream.api.errors import ApiError
from proffer_stream.api.services import EventPublisher, Services
from proffer_stream.core.identity import customer_id, partition_key
from proffer_stream.core.settings import Settings
from proffer_stream.core.types import ascii_number
from proffer_stream.db.decisions import (
    Fulfillment,
    decision_inputs,
    get_decision,
    get_fulfillment,
)
from proffer_stream.db.replies import ReplyListener, decision_made_key, fulfillment_key
from proffer_stream.decisions.context import DecisionContext
from proffer_stream.decisions.engine import ByPriority, Candidate, Decided, decide
from proffer_stream.decisions.live import LiveCatalog
from proffer_stream.decisions.models import (
    DecisionMade,
    DecisionReaction,
    ReactionKind,
    Surface,
)
from proffer_stream.decisions.present import (
    addressed,
    choice_of,
    languages_of,
    personalized_offer,
)
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.models import Offer

T = TypeVar("T")
RECENT_SECONDS = 120.0
"""How old a decision (or fulfilment) may be and still be waited for when not projected."""


def new_id(prefix: str, now: datetime) -> str:
    """``dec_<ms since epoch>_<random>``: unique, and says when it was made."""
    return f"{prefix}_{int(now.timestamp() * 1000)}_{uuid.uuid4().hex[:16]}"


def made_at(some_id: str) -> float | None:
    """When an id of :func:`new_id` was made (seconds since epoch); None if not one."""
    parts = some_id.split("_")
    made_ms = ascii_number(parts[1], 15) if len(parts) == 3 else None
    return None if made_ms is None else made_ms / 1000


def answer_expires(decided: Decided, now: datetime, seconds: int) -> datetime:
    """Until when the answer holds: the decision's time, or the chosen offer's end."""
    ends = [now + timedelta(seconds=seconds)]
    chosen = decided.chosen
    if chosen is not None:
        item = chosen.item
        if isinstance(item, Offer):
            ends.append(item.expires_at)
        else:
            ends += [t for t in (item.usable_until, item.visible_until) if t is not None]
    return min(ends)


@dataclass(frozen=True)
class Ask:
    """One decision to make: whose, where, and in what context; at a placement, of its
    candidates only (``catalog``, and the open offers if it takes them), the headline
    addressed by ``first_name``."""

    tenant_id: str
    external_id: str
    surface: Surface
    context: DecisionContext
    catalog: ByPriority | None = None
    open_offers: bool = True
    first_name: str | None = None


@dataclass(frozen=True)
class Made:
    """A decision logged: its event, and the chosen candidate (for the answer)."""

    event: DecisionMade
    chosen: Candidate | None
    languages: list[str]


@dataclass(frozen=True)
class Decider:
    """What the decision routes use: PostgreSQL, Kafka, replies, the catalog in memory."""

    db: asyncpg.Pool
    publisher: EventPublisher
    replies: ReplyListener
    settings: Settings
    catalog: LiveCatalog

    async def decide(self, ask: Ask) -> Made:
        """Decide, and log the decision on ``proffer.decisions`` before returning."""
        now = datetime.now(UTC)
        live = self.catalog.of(ask.tenant_id)
        inputs = await decision_inputs(
            self.db,
            ask.tenant_id,
            ask.external_id,
            customer_id(ask.tenant_id, ask.external_id),
            live.stocked_ids,
            ask.context.flow_id,
        )
        known = inputs.member.profile is not None
        if known:
            decided = decide(
                inputs.open_offers if ask.open_offers else [],
                live.by_priority if ask.catalog is None else ask.catalog,
                inputs.member,
                ask.context,
                now,
                inputs.flow_chosen,
            )
        else:
            decided = Decided(None, [], {}, "unknown customer")
        languages = languages_of(ask.context.locale)
        default = self.settings.default_language
        choice = None
        if decided.chosen is not None:
            choice = choice_of(decided.chosen, languages, default)
            if ask.first_name:
                choice.title = addressed(choice.title, ask.first_name)
        event = DecisionMade(
            decision_id=new_id("dec", now),
            tenant_id=ask.tenant_id,
            external_customer_id=ask.external_id,
            surface=ask.surface,
            decided_at=now,
            expires_at=answer_expires(decided, now, self.settings.decision_seconds),
            customer_known=known,
            context=ask.context,
            choice=choice,
            none_because=decided.none_because,
            candidates=decided.candidates,
            excluded=decided.excluded,
        )
        await self._log(ask.tenant_id, ask.external_id, event.model_dump_json().encode())
        return Made(event, decided.chosen, languages)

    def personalized_answer(self, made: Made) -> dict[str, Any]:
        """The billing platform's answer: at most one offer, and until when it holds."""
        offers = []
        if made.chosen is not None:
            offers.append(
                personalized_offer(
                    made.event.decision_id,
                    made.chosen,
                    made.languages,
                    self.settings.default_language,
                )
            )
        return {
            "personalized_offers": offers,
            "expires_at": int(made.event.expires_at.timestamp()),
        }

    async def decision(self, tenant_id: str, decision_id: str) -> DecisionMade:
        """The tenant's decision, waited for while recent and not projected yet; 404 if
        there is none."""
        found = await self._recent(
            decision_id,
            decision_made_key(decision_id),
            lambda: get_decision(self.db, tenant_id, decision_id),
        )
        if found is None:
            raise ApiError(404, "decision_not_found", f"No decision {decision_id!r}.")
        return found

    async def fulfillment(self, tenant_id: str, fulfillment_id: str) -> Fulfillment:
        """The tenant's fulfilment, waited for like a decision; 404 if there is none."""
        found = await self._recent(
            fulfillment_id,
            fulfillment_key(fulfillment_id),
            lambda: get_fulfillment(self.db, tenant_id, fulfillment_id),
        )
        if found is None:
            raise ApiError(
                404, "fulfillment_not_found", f"No offer fulfillment {fulfillment_id!r}."
            )
        return found

    async def end_fulfillment(
        self,
        decision: DecisionMade,
        found: Fulfillment,
        ended: ReactionKind,
        source: str,
        **fields: Any,
    ) -> Fulfillment | None:
        """Log how the fulfilment ended, and read it back once projected (None if that
        takes longer than the wait): the first end logged is the one it keeps, so a
        second end sent before the first was projected reads the first's status."""
        key = fulfillment_key(found.fulfillment_id)
        with self.replies.expect(key) as reply:
            await self.react(
                decision,
                ended,
                source,
                option_id=found.option_id,
                fulfillment_id=found.fulfillment_id,
                **fields,
            )

            async def ended_one() -> Fulfillment | None:
                read = await get_fulfillment(self.db, decision.tenant_id, found.fulfillment_id)
                return read if read is not None and read.status != "in_progress" else None

            deadline = time.monotonic() + self.settings.offer_wait_seconds
            return await reply.read(ended_one, deadline, look_first=False)

    async def react(
        self,
        decision: DecisionMade,
        reaction: ReactionKind,
        source: str,
        **fields: Any,
    ) -> DecisionReaction:
        """Log a reaction to ``decision`` on ``proffer.decisions`` (its customer's key)."""
        now = datetime.now(UTC)
        event = DecisionReaction(
            reaction_id=new_id("rea", now),
            decision_id=decision.decision_id,
            tenant_id=decision.tenant_id,
            external_customer_id=decision.external_customer_id,
            reaction=reaction,
            at=now,
            source=source,
            **fields,
        )
        await self._log(
            decision.tenant_id, decision.external_customer_id, event.model_dump_json().encode()
        )
        return event

    async def _log(self, tenant_id: str, external_id: str, value: bytes) -> None:
        topic = topics_for(self.settings).decisions.name
        await self.publisher.publish(partition_key(tenant_id, external_id), value, topic)

    async def _recent(
        self, some_id: str, key: str, find: Callable[[], Awaitable[T | None]]
    ) -> T | None:
        made = made_at(some_id)
        if made is None:
            return None
        if time.time() - made > RECENT_SECONDS:
            return await find()
        deadline = time.monotonic() + self.settings.offer_wait_seconds
        return await self.replies.wait_for(key, find, deadline)


async def decider_of(request: Request) -> Decider:
    """The request's gateway's decision engine."""
    services: Services = request.app.state.services
    return Decider(
        services.pool,
        services.publisher,
        services.replies,
        services.settings,
        services.live_catalog,
    )


Decisions = Annotated[Decider, Depends(decider_of)]
