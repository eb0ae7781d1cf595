"""What a customer's events say about their offers: seen, clicked, redeemed. Pure.

``offer_seen`` and ``offer_clicked`` events name the offer in ``data.offer_id``; a
``purchase`` redeems an offer named by ``data.offer_code`` (or ``code``, or
``offer_id``). Each becomes an :class:`OfferCommand` for the offers agent that owns the
customer's offers; its id follows from the event's, so a replay of the event asks once.
A value that cannot name an offer makes no command: the event is still counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from proffer_stream.core.types import ascii_number
from proffer_stream.ingest.models import NormalizedEvent
from proffer_stream.offers.models import CommandAction, OfferCommand

ENGAGEMENTS: dict[str, CommandAction] = {"offer_seen": "seen", "offer_clicked": "clicked"}
CODE_FIELDS = ("offer_code", "code")
MAX_CODE_CHARS = 200
MAX_AMOUNT = Decimal(10**12)


def offer_commands(
    tenant_id: str, external_id: str, events: Iterable[NormalizedEvent]
) -> list[OfferCommand]:
    """The commands these (newly counted) events make, in their order."""
    commands = []
    for event in events:
        command = _command(tenant_id, external_id, event)
        if command is not None:
            commands.append(command)
    return commands


def _command(tenant_id: str, external_id: str, event: NormalizedEvent) -> OfferCommand | None:
    try:
        return _command_or_raise(tenant_id, external_id, event)
    except ValidationError:  # data no command can carry: the event is counted, no more
        return None


def _command_or_raise(
    tenant_id: str, external_id: str, event: NormalizedEvent
) -> OfferCommand | None:
    action = ENGAGEMENTS.get(event.type) or ("redeem" if event.type == "purchase" else None)
    if action is None:
        return None
    offer = _offer_id(event.data.get("offer_id"))
    code = _code(event.data) if action == "redeem" else None
    if offer is None and code is None:
        return None
    return OfferCommand(
        command_id=f"{event.id}:{action}",
        tenant_id=tenant_id,
        external_customer_id=external_id,
        action=action,
        offer_id=offer,
        code=code,
        amount=_amount(event.data.get("amount")) if action == "redeem" else None,
        cause=f"event {event.id}"[:300],
        # Engagement at the time it happened; a redemption when we learned of it, so a
        # purchase stamped before the offer was sent still reads as after it.
        issued_at=event.received_at if action == "redeem" else event.occurred_at,
    )


def _offer_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = ascii_number(value.strip(), 16)
    if isinstance(value, int) and 1 <= value < 2**53:
        return value
    return None


def _code(data: dict[str, object]) -> str | None:
    for name in CODE_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and value.strip() and len(value) <= MAX_CODE_CHARS:
            return value.strip()
    return None


def _amount(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and 0 <= amount <= MAX_AMOUNT else None
