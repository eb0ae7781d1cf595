"""``/api/members/{external_customer_id}/offers``: the catalog as a member sees it, and
what they do with it (grant, use, like, unlike, seen, clicked, encode).

The list is answered from this gateway's copy of the catalog and one PostgreSQL read;
an action is decided by the catalog offer's one owner (see :mod:`proffer_stream.api.catalog`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import Response

from proffer_stream.api.catalog import Action, Catalog, act, json_answer, offer_not_found
from proffer_stream.api.catalog_models import (
    CatalogCommandPending,
    CatalogRefusal,
    EncodedOfferResponse,
    EncodedUse,
    MemberActionBody,
    MemberActionResponse,
    MemberOfferResponse,
    MemberOffersMeta,
    MemberOffersResponse,
)
from proffer_stream.api.deps import KeyName, Tenant
from proffer_stream.api.errors import ApiError
from proffer_stream.api.json_body import JsonBodyRoute
from proffer_stream.api.member_views import (
    CatalogOfferId,
    Languages,
    ListParams,
    MemberId,
    list_answer,
    meta_answer,
    one_answer,
)
from proffer_stream.api.models import NOT_JSON, ErrorDetail, ErrorResponse
from proffer_stream.catalog.models import MemberAction
from proffer_stream.catalog.tokens import BadToken, EncodedOffer, decode_offer, encode_offer
from proffer_stream.catalog.views import sees
from proffer_stream.db.catalog_reads import member_context

router = APIRouter(tags=["members' offers"], route_class=JsonBodyRoute)
PREFIX = "/api/members/{external_customer_id}/offers"
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such offer for this member"}
}
ACTION_ANSWERS: dict[int | str, dict[str, Any]] = {
    **NOT_JSON,
    **NOT_FOUND,
    202: {"model": CatalogCommandPending, "description": "Still being decided: poll poll_url"},
    409: {"model": CatalogRefusal, "description": "Refused: error.code says why"},
    422: {"model": ErrorResponse, "description": "Invalid: which field, and why"},
}
TimezoneParam = Annotated[
    str | None, Query(max_length=100, description="The member's IANA time zone.")
]
OptionalBody = Annotated[MemberActionBody | None, Body()]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Sent again with the same key (for the same member, offer and action),"
        " the request is answered as the first was and applied once; kept for an hour.",
    ),
]


@router.get(PREFIX, response_model=MemberOffersResponse, summary="The offers a member sees")
async def list_member_offers(
    external_customer_id: MemberId,
    tenant_id: Tenant,
    io: Catalog,
    query: ListParams,
    languages: Languages,
    include_pagination_info: bool = False,
) -> Response:
    """Published, inside their visible window, in the member's audience, not archived,
    and (exclusive, welcome, game_prize, parking_exclusive) granted to them; text in the
    ``locale`` or ``Accept-Language`` language, else PROFFER_DEFAULT_LANGUAGE."""
    return await list_answer(
        io, tenant_id, external_customer_id, query, languages, include_pagination_info
    )


@router.get(
    f"{PREFIX}/meta", response_model=MemberOffersMeta, summary="Counts of a member's offers"
)
async def get_member_offers_meta(
    external_customer_id: MemberId, tenant_id: Tenant, io: Catalog
) -> Response:
    return await meta_answer(io, tenant_id, external_customer_id)


@router.get(
    f"{PREFIX}/{{offer_id}}",
    response_model=MemberOfferResponse,
    summary="One offer as the member sees it",
    responses=NOT_FOUND,
)
async def get_member_offer(
    external_customer_id: MemberId,
    offer_id: CatalogOfferId,
    tenant_id: Tenant,
    io: Catalog,
    languages: Languages,
) -> Response:
    return await one_answer(io, tenant_id, external_customer_id, offer_id, languages)


def _action_route(action: MemberAction, path: str, method: str, summary: str) -> None:
    async def route(
        external_customer_id: MemberId,
        offer_id: CatalogOfferId,
        tenant_id: Tenant,
        key_name: KeyName,
        io: Catalog,
        body: OptionalBody = None,
        timezone: TimezoneParam = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        given = body or MemberActionBody()
        where = (
            (given.timezone, "body.timezone") if given.timezone else (timezone, "query.timezone")
        )
        return await act(
            io,
            Action(
                tenant_id,
                external_customer_id,
                offer_id,
                action,
                timezone=where,
                authorization_token=given.authorization_token,
                source=f"api key {key_name!r}",
                idempotency_key=idempotency_key,
            ),
        )

    route.__name__ = f"{action}_member_offer"
    router.add_api_route(
        f"{PREFIX}/{{offer_id}}{path}",
        route,
        methods=[method],
        response_model=MemberActionResponse,
        summary=summary,
        responses=ACTION_ANSWERS,
    )


_action_route("grant", "/grant", "POST", "Grant the offer to the member")
_action_route("use", "/use", "POST", "Use the offer (200 with the use's code and terms)")
_action_route("like", "/like", "POST", "Like the offer")
_action_route("unlike", "/like", "DELETE", "Unlike the offer")
_action_route("seen", "/events/seen", "POST", "Record that the member saw the offer")
_action_route("clicked", "/events/clicked", "POST", "Record that the member clicked the offer")


@router.post(
    f"{PREFIX}/{{offer_id}}/encode",
    response_model=EncodedOfferResponse,
    summary="A signed token of the offer, for a point of sale to use once",
    responses=NOT_FOUND,
)
async def encode_member_offer(
    external_customer_id: MemberId, offer_id: CatalogOfferId, tenant_id: Tenant, io: Catalog
) -> Response:
    """Tamper-evident (HMAC-SHA256): ``POST /api/catalog/encoded/use`` verifies it and
    uses the offer for the member, once. Expires after PROFFER_ENCODED_OFFER_SECONDS."""
    offer = io.catalog.offers(tenant_id).get(offer_id)
    context = await member_context(io.db, tenant_id, external_customer_id, [offer_id])
    now = datetime.now(UTC)
    if offer is None or not sees(offer, context.standing(offer_id), context.profile, now):
        raise offer_not_found(offer_id)
    expires = now + timedelta(seconds=io.settings.encoded_offer_seconds)
    encoded = EncodedOffer(
        t=tenant_id,
        o=offer_id,
        m=external_customer_id,
        i=uuid.uuid4().hex,
        e=int(expires.timestamp()),
    )
    token = encode_offer(io.signing_key_of(), encoded)
    answer = EncodedOfferResponse(
        token=token, token_id=encoded.i, offer_id=offer_id, expires_at=encoded.expires_at
    )
    return json_answer(answer.model_dump(mode="json"))


@router.post(
    "/api/catalog/encoded/use",
    response_model=MemberActionResponse,
    summary="Use an encoded offer (a point of sale), once",
    responses={
        **ACTION_ANSWERS,
        400: {"model": ErrorResponse, "description": "bad_token or token_expired"},
    },
)
async def use_encoded_offer(
    body: EncodedUse,
    tenant_id: Tenant,
    key_name: KeyName,
    io: Catalog,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Verifies the token's signature and expiry, then uses the offer it names for the
    member it names; a second use of one token is refused (409 ``token_used``), unless
    it is the first sent again with its ``Idempotency-Key``."""
    try:
        encoded = decode_offer(io.signing_key_of(), body.token, datetime.now(UTC))
    except BadToken as exc:
        raise ApiError(
            400, exc.reason, str(exc), [ErrorDetail(loc="body.token", message=str(exc))]
        ) from None
    if encoded.t != tenant_id:
        message = "the token was made for another tenant"
        raise ApiError(400, "bad_token", message, [ErrorDetail(loc="body.token", message=message)])
    return await act(
        io,
        Action(
            tenant_id,
            encoded.m,
            encoded.o,
            "use",
            timezone=(body.timezone, "body.timezone"),
            encoded_token_id=encoded.i,
            source=f"api key {key_name!r} (encoded offer)",
            idempotency_key=idempotency_key,
        ),
    )
