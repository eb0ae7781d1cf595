"""The member's views of the catalog, shared by the members' routes and the previews:
definitions from memory, the member's profile, standings and counts from one query."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.responses import Response
from pydantic import Field

from proffer_stream.api.catalog import CatalogIO, json_answer, offer_not_found
from proffer_stream.api.errors import ApiError
from proffer_stream.api.models import ErrorDetail
from proffer_stream.catalog.models import (
    LANGUAGE_PATTERN,
    CatalogDefinition,
    CatalogOfferType,
    within,
)
from proffer_stream.catalog.name_order import in_name_order
from proffer_stream.catalog.views import (
    ORDER_BY_PATTERN,
    ListQuery,
    MemberContext,
    check_language,
    hidden_because,
    in_audience,
    member_offer,
    meta,
    order_key,
    ordered,
    pagination_info,
    parse_languages,
    parse_order_by,
    sees,
    select,
    visible_offers,
)
from proffer_stream.db.catalog_reads import member_context

IdList = list[Annotated[int, Field(ge=1, lt=2**53)]]
MemberId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=256,
        pattern=r"^[^\x00]*$",
        description="Your own id of the member (the external customer id).",
    ),
]
CatalogOfferId = Annotated[int, Path(ge=1, lt=2**53, description="The catalog offer's id.")]


def _invalid(loc: str, message: str) -> ApiError:
    return ApiError(
        422, "validation_error", "Invalid request.", [ErrorDetail(loc=loc, message=message)]
    )


async def _languages(
    locale: Annotated[
        str | None,
        Query(
            max_length=40,
            description="The language to show text in; else Accept-Language.",
            json_schema_extra={"pattern": LANGUAGE_PATTERN},
        ),
    ] = None,
    accept_language: Annotated[str | None, Header(max_length=500)] = None,
) -> list[str]:
    if locale is not None:
        try:
            return [check_language(locale)]
        except ValueError as exc:
            raise _invalid("query.locale", str(exc)) from None
    return parse_languages(accept_language)


Languages = Annotated[list[str], Depends(_languages)]


def _ints(request: Request, name: str) -> frozenset[int]:
    values = [*request.query_params.getlist(f"{name}[]"), *request.query_params.getlist(name)]
    try:
        ids = frozenset(int(v) for v in values)
    except ValueError:
        ids = frozenset({0})
    if any(not 1 <= i < 2**53 for i in ids):
        raise _invalid(f"query.{name}", "give ids (integers from 1), e.g. ids[]=1&ids[]=2")
    return ids


async def _list_query(
    request: Request,
    page_no: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 100,
    order_by: Annotated[
        str,
        Query(
            max_length=300,
            description='SQL-like: "usable ASC, created_at DESC".',
            json_schema_extra={"pattern": ORDER_BY_PATTERN},
        ),
    ] = "name",
    type: CatalogOfferType | None = None,
    usable: Annotated[bool | None, Query(description="Only offers usable now (or not).")] = None,
    liked: Annotated[
        bool | None, Query(description="Only offers the member likes (or not).")
    ] = None,
    collection_ids: Annotated[
        IdList | None,
        Query(alias="collection_ids[]", description="Or collection_ids=1."),
    ] = None,
    ids: Annotated[
        IdList | None,
        Query(alias="ids[]", description="Or ids=1."),
    ] = None,
) -> ListQuery:
    try:
        order = parse_order_by(order_by)
    except ValueError as exc:
        raise _invalid("query.order_by", str(exc)) from None
    return ListQuery(
        page_no=page_no,
        per_page=per_page,
        order_by=order,
        collection_ids=_ints(request, "collection_ids"),
        ids=_ints(request, "ids"),
        type=type,
        usable=usable,
        liked=liked,
    )


ListParams = Annotated[ListQuery, Depends(_list_query)]


def _candidates(io: CatalogIO, tenant_id: str, now: datetime) -> list[CatalogDefinition]:
    """Offers anyone may see now (audience and grants aside): whose counts to read."""
    return [
        o
        for o in io.catalog.offers(tenant_id).values()
        if o.status == "published"
        and o.archived_at is None
        and within(now, o.visible_since, o.visible_until)
    ]


async def list_answer(
    io: CatalogIO,
    tenant_id: str,
    member: str,
    query: ListQuery,
    languages: list[str],
    include_pagination_info: bool,
) -> Response:
    """The offers the member sees, filtered, sorted and paged."""
    now = datetime.now(UTC)
    default = io.settings.default_language
    candidates = _candidates(io, tenant_id, now)
    by_name = None  # the default order is the same for every member: made once
    if query.order_by == [("name", False)]:  # (of the catalog the candidates are of)
        by_name = io.name_orders.positions(tenant_id, languages, default)
    context = await member_context(io.db, tenant_id, member, [o.id for o in candidates])
    chosen = select(candidates, context, query, now)
    if by_name is not None:
        chosen = in_name_order(chosen, by_name)
    else:
        chosen = ordered(chosen, query.order_by, order_key(context, languages, default, now))
    start = (query.page_no - 1) * query.per_page
    page = chosen[start : start + query.per_page]
    body: dict[str, Any] = {
        "success": True,
        "offers": [_view(o, context, languages, default, now) for o in page],
    }
    if include_pagination_info:
        body["pagination_info"] = pagination_info(len(chosen), query.page_no, query.per_page)
    return json_answer(body)


async def meta_answer(io: CatalogIO, tenant_id: str, member: str) -> Response:
    """How many offers the member sees, per type and collection."""
    now = datetime.now(UTC)
    candidates = _candidates(io, tenant_id, now)
    context = await member_context(io.db, tenant_id, member, [])
    return json_answer({"success": True, **meta(visible_offers(candidates, context, now))})


async def one_answer(
    io: CatalogIO, tenant_id: str, member: str, offer_id: int, languages: list[str]
) -> Response:
    """The offer as the member sees it; 404 if they do not see it."""
    offer = io.catalog.offers(tenant_id).get(offer_id)
    if offer is None:
        raise offer_not_found(offer_id)
    context = await member_context(io.db, tenant_id, member, [offer_id])
    now = datetime.now(UTC)
    if not sees(offer, context.standing(offer_id), context.profile, now):
        raise offer_not_found(offer_id)
    view = _view(offer, context, languages, io.settings.default_language, now)
    return json_answer({"success": True, "offer": view})


async def preview_answer(
    io: CatalogIO, tenant_id: str, member: str, offer_id: int, languages: list[str]
) -> Response:
    """The offer as the member would see it, whether they see it, and why not."""
    offer = io.catalog.offers(tenant_id).get(offer_id)
    if offer is None:
        raise ApiError(404, "offer_not_found", f"No catalog offer {offer_id}.")
    context = await member_context(io.db, tenant_id, member, [offer_id])
    now = datetime.now(UTC)
    standing = context.standing(offer_id)
    hidden = hidden_because(offer, standing, in_audience(offer, context.profile, now), now)
    view = _view(offer, context, languages, io.settings.default_language, now)
    return json_answer(
        {"success": True, "offer": view, "visible": not hidden, "hidden_because": hidden}
    )


def _view(
    offer: CatalogDefinition,
    context: MemberContext,
    languages: list[str],
    default: str,
    now: datetime,
) -> dict[str, Any]:
    standing, counts = context.standing(offer.id), context.counts_of(offer.id)
    return member_offer(offer, standing, counts, languages, default, now, context.zone)
