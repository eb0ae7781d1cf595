"""A placement's answer: the offer as segments (a text headline, a text body, a view
with the accept and decline actions), then the event recorded, and the links to react
to it or ask for the next offer.

Every segment has a ``type`` and ``children``; the reference's clients render the tree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from proffer_stream.catalog.models import localized
from proffer_stream.decisions.models import Choice

API_VERSION = "2026-12-01"
DECLINE_LABELS = {"en": "No, thanks"}


def segment(
    kind: str, children: list[dict[str, Any]] | None = None, **fields: Any
) -> dict[str, Any]:
    """One segment of the answer's tree."""
    return {"type": kind, **fields, "children": children or []}


def offer_links(offers_url: str, decision_id: str, placement: str) -> list[dict[str, str]]:
    """Where to record that the offer was shown, accepted or declined, and the next one."""
    own = f"{offers_url}/{decision_id}"
    return [
        {"rel": "accept", "method": "POST", "href": f"{own}/accept"},
        {"rel": "decline", "method": "POST", "href": f"{own}/decline"},
        {
            "rel": "next",
            "method": "POST",
            "href": f"{offers_url}?placement={placement}&after={decision_id}",
        },
        {"rel": "shown", "method": "POST", "href": f"{own}/shown"},
    ]


def offer_data(
    decision_id: str,
    choice: Choice,
    links: list[dict[str, str]],
    languages: list[str],
    default: str,
) -> dict[str, Any]:
    """The offer as segments: headline, body, and a view with its accept actions (one
    per option) and a decline."""
    href = {link["rel"]: link["href"] for link in links}
    accepts = [
        segment(
            "action",
            id=option.id,
            action="accept",
            text=localized(option.label, languages, default) or option.id,
            href=href["accept"],
            processing_type=option.processing_type,
            processing_layout=option.processing_layout,
            redirect_url=option.redirect_url,
        )
        for option in choice.options
    ]
    decline = segment(
        "action",
        id="decline",
        action="decline",
        text=localized(DECLINE_LABELS, languages, default),
        href=href["decline"],
    )
    return segment(
        "offer",
        [
            segment("text", role="headline", text=choice.title or ""),
            segment("text", role="body", text=choice.description or ""),
            segment("view", [*accepts, decline], role="actions"),
        ],
        id=decision_id,
        offer_id=choice.ref,
    )


def event_data(
    name: str, event_id: str, decision_id: str, at: datetime, **fields: Any
) -> dict[str, Any]:
    """The event recorded, as the answer's last segment."""
    return segment(
        "event", id=event_id, name=name, decision_id=decision_id, at=at.isoformat(), **fields
    )
