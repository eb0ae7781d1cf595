"""``/api/catalog/offers`` and ``/api/catalog/collections``: the catalog, managed.

Every change is validated whole (422 naming the field), made against the version read
(409 ``version_conflict`` when another change came first) and decided by the item's
one owner; the answer is the item at its new version, as a following GET reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationError

from proffer_stream.api.catalog import Catalog, CatalogIO, define, pending
from proffer_stream.api.catalog_models import (
    CatalogCommandPending,
    CatalogCommandView,
    CatalogOfferResponse,
    CatalogOffersResponse,
    CatalogOfferView,
    CollectionResponse,
    CollectionsResponse,
    CollectionView,
    PaginationInfo,
)
from proffer_stream.api.commands import pending_or_unknown
from proffer_stream.api.deps import KeyName, Tenant
from proffer_stream.api.errors import ApiError, error_details
from proffer_stream.api.json_body import JsonBodyRoute
from proffer_stream.api.models import NOT_JSON, ErrorResponse, VersionConflict
from proffer_stream.api.params import CommandId
from proffer_stream.catalog.models import (
    CatalogOfferFields,
    CatalogOfferType,
    CatalogStatus,
    CollectionDefinition,
    CollectionFields,
    DefinitionAction,
    DefinitionCommand,
    DefinitionTarget,
    IntegrationFields,
)
from proffer_stream.catalog.views import pagination_info
from proffer_stream.core.identity import catalog_item_id, new_request_id
from proffer_stream.core.types import StrictModel
from proffer_stream.db import catalog_reads
from proffer_stream.db.catalog_reads import OfferFilter, OfferRow, SortField

router = APIRouter(prefix="/api/catalog", tags=["catalog"], route_class=JsonBodyRoute)

IdList = list[Annotated[int, Field(ge=1, lt=2**53)]]
ItemId = Annotated[int, Path(ge=1, lt=2**53, description="The catalog offer's or collection's id.")]
PageNo = Annotated[int, Query(ge=1, le=1_000_000, description="The page, from 1.")]
PerPage = Annotated[int, Query(ge=1, le=100, description="Items per page, at most 100.")]
CHANGE_ANSWERS: dict[int | str, dict[str, Any]] = {
    **NOT_JSON,
    202: {"model": CatalogCommandPending, "description": "Still being applied: poll poll_url"},
    409: {"model": VersionConflict, "description": "Changed meanwhile: the version in force"},
    422: {"model": ErrorResponse, "description": "Invalid: which field, and why"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such item of this tenant's"}
}


def definition_command(
    tenant_id: str,
    key_name: str,
    target: DefinitionTarget,
    action: DefinitionAction,
    item: tuple[int, int],
    body: CatalogOfferFields | CollectionFields | IntegrationFields | None = None,
) -> DefinitionCommand:
    """A definition command; ``item`` is (id, base version), id 0 for a new one."""
    command_id = new_request_id()
    item_id, base_version = item
    return DefinitionCommand(
        command_id=command_id,
        tenant_id=tenant_id,
        target=target,
        id=item_id or catalog_item_id(tenant_id, target, command_id),
        action=action,
        base_version=base_version,
        offer=body if isinstance(body, CatalogOfferFields) else None,
        collection=body if isinstance(body, CollectionFields) else None,
        integration=body if isinstance(body, IntegrationFields) else None,
        issued_at=datetime.now(UTC),
        source=f"api key {key_name!r}",
    )


Fields = TypeVar("Fields", bound=StrictModel)


def merged(kind: type[Fields], current: StrictModel, patch: dict[str, Any]) -> Fields:
    """``current`` with the fields of ``patch``, validated whole (422 naming the field)."""
    fields = current.model_dump(include=set(kind.model_fields)) | patch
    try:
        return kind.model_validate(fields)
    except ValidationError as exc:
        errors: list[dict[str, Any]] = []
        for error in exc.errors():
            errors.append({**error, "loc": ("body", *error["loc"])})
        raise ApiError(
            422, "validation_error", "Invalid request.", error_details(errors, patch)
        ) from None


# --- Offers


def _offer_reader(io: CatalogIO, tenant_id: str, item_id: int) -> Any:
    async def read(version: int) -> CatalogOfferResponse | None:
        row = await catalog_reads.offer_at(io.db, tenant_id, item_id, version)
        return None if row is None else _offer_response(row)

    return read


def _offer_response(row: OfferRow) -> CatalogOfferResponse:
    return CatalogOfferResponse(offer=CatalogOfferView.of(row.offer, row.counts))


async def _current_offer(io: CatalogIO, tenant_id: str, offer_id: int) -> OfferRow:
    row = await catalog_reads.get_offer(io.db, tenant_id, offer_id)
    if row is None:
        raise ApiError(404, "offer_not_found", f"No catalog offer {offer_id}.")
    return row


@router.post(
    "/offers",
    response_model=CatalogOfferResponse,
    status_code=201,
    summary="Create a catalog offer",
    responses=CHANGE_ANSWERS,
)
async def create_catalog_offer(
    body: CatalogOfferFields, tenant_id: Tenant, key_name: KeyName, io: Catalog
) -> Any:
    """Only the reference's fields are needed; ``terms``, ``channels`` and ``audience``
    are the engine's additions. Answers the offer at version 1."""
    command = definition_command(tenant_id, key_name, "offer", "create", (0, 0), body)
    answer = await define(io, command, _offer_reader(io, tenant_id, command.id))
    if isinstance(answer, CatalogOfferResponse):
        return JSONResponse(answer.model_dump(mode="json"), status_code=201)
    return answer


@router.get("/offers", response_model=CatalogOffersResponse, summary="List catalog offers")
async def list_catalog_offers(
    tenant_id: Tenant,
    io: Catalog,
    page_no: PageNo = 1,
    per_page: PerPage = 100,
    sort_by: SortField = "name",
    sort_direction: Literal["asc", "desc"] = "asc",
    types: Annotated[list[CatalogOfferType] | None, Query(alias="types[]")] = None,
    types_: Annotated[
        list[CatalogOfferType] | None, Query(alias="types", include_in_schema=False)
    ] = None,
    status: CatalogStatus | None = None,
    collection_ids: Annotated[IdList | None, Query(alias="collection_ids[]")] = None,
    collection_ids_: Annotated[
        IdList | None, Query(alias="collection_ids", include_in_schema=False)
    ] = None,
    ids: Annotated[IdList | None, Query(alias="ids[]")] = None,
    ids_: Annotated[IdList | None, Query(alias="ids", include_in_schema=False)] = None,
    with_archived: bool = False,
) -> CatalogOffersResponse:
    """Array parameters as ``ids[]=1&ids[]=2`` (or ``ids=1&ids=2``). Names sort in
    PROFFER_DEFAULT_LANGUAGE."""
    filters = OfferFilter(
        types=[*(types or []), *(types_ or [])],
        status=status,
        collection_ids=[*(collection_ids or []), *(collection_ids_ or [])],
        ids=[*(ids or []), *(ids_ or [])],
        with_archived=with_archived,
    )
    rows, total = await catalog_reads.list_offers(
        io.db,
        tenant_id,
        filters,
        sort=(sort_by, sort_direction == "desc"),
        language=io.settings.default_language,
        limit=per_page,
        offset=(page_no - 1) * per_page,
    )
    return CatalogOffersResponse(
        offers=[CatalogOfferView.of(r.offer, r.counts) for r in rows],
        pagination_info=PaginationInfo(**pagination_info(total, page_no, per_page)),
    )


@router.get(
    "/offers/{offer_id}",
    response_model=CatalogOfferResponse,
    summary="A catalog offer",
    responses=NOT_FOUND,
)
async def get_catalog_offer(
    offer_id: ItemId, tenant_id: Tenant, io: Catalog
) -> CatalogOfferResponse:
    return _offer_response(await _current_offer(io, tenant_id, offer_id))


@router.patch(
    "/offers/{offer_id}",
    response_model=CatalogOfferResponse,
    summary="Change a catalog offer",
    responses={**CHANGE_ANSWERS, **NOT_FOUND},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/CatalogOfferFields"}}
            }
        }
    },
)
async def update_catalog_offer(
    offer_id: ItemId,
    body: Annotated[dict[str, Any], Body()],
    tenant_id: Tenant,
    key_name: KeyName,
    io: Catalog,
) -> Any:
    """The fields given replace the current ones (``null`` clears one); the whole offer
    is validated again."""
    row = await _current_offer(io, tenant_id, offer_id)
    fields = merged(CatalogOfferFields, row.offer, body)
    item = (offer_id, row.offer.version)
    command = definition_command(tenant_id, key_name, "offer", "update", item, fields)
    return await define(io, command, _offer_reader(io, tenant_id, offer_id))


@router.delete(
    "/offers/{offer_id}",
    response_model=CatalogOfferResponse,
    summary="Archive a catalog offer",
    responses={**CHANGE_ANSWERS, **NOT_FOUND},
)
async def archive_catalog_offer(
    offer_id: ItemId, tenant_id: Tenant, key_name: KeyName, io: Catalog
) -> Any:
    """Members no longer see or use it; it stays readable with ``archived_at`` set."""
    row = await _current_offer(io, tenant_id, offer_id)
    item = (offer_id, row.offer.version)
    command = definition_command(tenant_id, key_name, "offer", "archive", item)
    return await define(io, command, _offer_reader(io, tenant_id, offer_id))


# --- Collections


def _collection_view(
    collection: CollectionDefinition, rows: list[OfferRow], now: datetime
) -> CollectionView:
    mine = [
        r for r in rows if collection.id in r.offer.collection_ids and r.offer.archived_at is None
    ]

    def first(name: str) -> datetime | None:
        values = [getattr(r.offer, name) for r in mine if getattr(r.offer, name) is not None]
        return min(values) if values else None

    def last(name: str) -> datetime | None:
        values = [getattr(r.offer, name) for r in mine if getattr(r.offer, name) is not None]
        return max(values) if values else None

    return CollectionView.of(
        collection,
        {
            "offers_count": len(mine),
            "offers_visible_count": sum(
                1
                for r in mine
                if r.offer.status == "published"
                and (r.offer.visible_since is None or r.offer.visible_since <= now)
                and (r.offer.visible_until is None or now < r.offer.visible_until)
            ),
            "offers_upcoming_count": sum(
                1 for r in mine if r.offer.visible_since is not None and now < r.offer.visible_since
            ),
            "offers_uses_count": sum(r.counts.uses_count for r in mine),
            "visible_since": first("visible_since"),
            "visible_until": last("visible_until"),
            "usable_since": first("usable_since"),
            "usable_until": last("usable_until"),
        },
    )


def _collection_reader(io: CatalogIO, tenant_id: str, item_id: int) -> Any:
    async def read(version: int) -> CollectionResponse | None:
        found = await catalog_reads.collection_at(io.db, tenant_id, item_id, version)
        if found is None:
            return None
        rows = await catalog_reads.all_offers(io.db, tenant_id)
        return CollectionResponse(collection=_collection_view(found, rows, datetime.now(UTC)))

    return read


async def _current_collection(
    io: CatalogIO, tenant_id: str, collection_id: int
) -> CollectionDefinition:
    found = await catalog_reads.get_collection(io.db, tenant_id, collection_id)
    if found is None:
        raise ApiError(404, "collection_not_found", f"No collection {collection_id}.")
    return found


@router.post(
    "/collections",
    response_model=CollectionResponse,
    status_code=201,
    summary="Create a collection",
    responses=CHANGE_ANSWERS,
)
async def create_catalog_collection(
    body: CollectionFields, tenant_id: Tenant, key_name: KeyName, io: Catalog
) -> Any:
    command = definition_command(tenant_id, key_name, "collection", "create", (0, 0), body)
    answer = await define(io, command, _collection_reader(io, tenant_id, command.id))
    if isinstance(answer, CollectionResponse):
        return JSONResponse(answer.model_dump(mode="json"), status_code=201)
    return answer


@router.get("/collections", response_model=CollectionsResponse, summary="List collections")
async def list_catalog_collections(
    tenant_id: Tenant,
    io: Catalog,
    page_no: PageNo = 1,
    per_page: PerPage = 100,
    with_archived: bool = False,
) -> CollectionsResponse:
    """By position, then id, with their offers' counts."""
    found = await catalog_reads.list_collections(io.db, tenant_id, with_archived=with_archived)
    rows = await catalog_reads.all_offers(io.db, tenant_id) if found else []
    now = datetime.now(UTC)
    start = (page_no - 1) * per_page
    return CollectionsResponse(
        collections=[_collection_view(c, rows, now) for c in found[start : start + per_page]],
        pagination_info=PaginationInfo(**pagination_info(len(found), page_no, per_page)),
    )


@router.get(
    "/collections/{collection_id}",
    response_model=CollectionResponse,
    summary="A collection",
    responses=NOT_FOUND,
)
async def get_catalog_collection(
    collection_id: ItemId, tenant_id: Tenant, io: Catalog
) -> CollectionResponse:
    found = await _current_collection(io, tenant_id, collection_id)
    rows = await catalog_reads.all_offers(io.db, tenant_id)
    return CollectionResponse(collection=_collection_view(found, rows, datetime.now(UTC)))


@router.patch(
    "/collections/{collection_id}",
    response_model=CollectionResponse,
    summary="Change a collection",
    responses={**CHANGE_ANSWERS, **NOT_FOUND},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/CollectionFields"}}
            }
        }
    },
)
async def update_catalog_collection(
    collection_id: ItemId,
    body: Annotated[dict[str, Any], Body()],
    tenant_id: Tenant,
    key_name: KeyName,
    io: Catalog,
) -> Any:
    """The fields given replace the current ones; ``offers_order`` orders its offers."""
    current = await _current_collection(io, tenant_id, collection_id)
    fields = merged(CollectionFields, current, body)
    item = (collection_id, current.version)
    command = definition_command(tenant_id, key_name, "collection", "update", item, fields)
    return await define(io, command, _collection_reader(io, tenant_id, collection_id))


@router.delete(
    "/collections/{collection_id}",
    response_model=CollectionResponse,
    summary="Archive a collection",
    responses={**CHANGE_ANSWERS, **NOT_FOUND},
)
async def archive_catalog_collection(
    collection_id: ItemId, tenant_id: Tenant, key_name: KeyName, io: Catalog
) -> Any:
    current = await _current_collection(io, tenant_id, collection_id)
    item = (collection_id, current.version)
    command = definition_command(tenant_id, key_name, "collection", "archive", item)
    return await define(io, command, _collection_reader(io, tenant_id, collection_id))


@router.get(
    "/commands/{command_id}",
    response_model=CatalogCommandView,
    summary="What became of a catalog command",
    responses={
        202: {"model": CatalogCommandPending, "description": "Not decided yet"},
        404: {"model": ErrorResponse, "description": "No such command of this tenant's"},
    },
)
async def get_catalog_command(command_id: CommandId, tenant_id: Tenant, io: Catalog) -> Any:
    """The owner's decision on a definition change or a member's action."""
    event = await catalog_reads.command_outcome(io.db, tenant_id, command_id)
    if event is None:
        await pending_or_unknown(io.db, tenant_id, "catalog_command", command_id)
        return pending(command_id)
    return CatalogCommandView(
        command_id=event.event_id,
        kind=event.kind,
        action=event.action,
        offer_id=event.offer_id,
        version=event.version,
        reason=event.reason,
        message=event.message,
        resets_at=event.resets_at,
        use=event.use,
        counts=event.counts,
    )
