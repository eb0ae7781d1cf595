"""``/api/catalog/preview/members/{external_customer_id}/offers``: the member's views,
for operators, recording nothing; showing one offer also says whether, and why not,
the member sees it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from proffer_stream.api.catalog import Catalog
from proffer_stream.api.catalog_models import (
    MemberOffersMeta,
    MemberOffersResponse,
    PreviewOfferResponse,
)
from proffer_stream.api.deps import Tenant
from proffer_stream.api.member_views import (
    CatalogOfferId,
    Languages,
    ListParams,
    MemberId,
    list_answer,
    meta_answer,
    preview_answer,
)
from proffer_stream.api.models import ErrorResponse

router = APIRouter(
    prefix="/api/catalog/preview/members/{external_customer_id}/offers", tags=["catalog"]
)


@router.get("", response_model=MemberOffersResponse, summary="Preview the offers a member sees")
async def preview_member_offers(
    external_customer_id: MemberId,
    tenant_id: Tenant,
    io: Catalog,
    query: ListParams,
    languages: Languages,
    include_pagination_info: bool = False,
) -> Response:
    return await list_answer(
        io, tenant_id, external_customer_id, query, languages, include_pagination_info
    )


@router.get("/meta", response_model=MemberOffersMeta, summary="Preview a member's offer counts")
async def preview_member_offers_meta(
    external_customer_id: MemberId, tenant_id: Tenant, io: Catalog
) -> Response:
    return await meta_answer(io, tenant_id, external_customer_id)


@router.get(
    "/{offer_id}",
    response_model=PreviewOfferResponse,
    summary="Preview an offer as the member would see it, and why they would not",
    responses={404: {"model": ErrorResponse, "description": "No such catalog offer"}},
)
async def preview_member_offer(
    external_customer_id: MemberId,
    offer_id: CatalogOfferId,
    tenant_id: Tenant,
    io: Catalog,
    languages: Languages,
) -> Response:
    return await preview_answer(io, tenant_id, external_customer_id, offer_id, languages)
