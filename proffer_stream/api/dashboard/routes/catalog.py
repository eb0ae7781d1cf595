"""The catalog: offers and collections with their counts and stock; create and edit in a
JSON editor, publish, unpublish and archive, through the catalog API's own handlers."""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from proffer_stream.api.catalog import catalog_io
from proffer_stream.api.dashboard import forms
from proffer_stream.api.dashboard.outcome import shown_after
from proffer_stream.api.dashboard.web import Form, SignedIn, Viewer, render
from proffer_stream.api.routes import catalog as api
from proffer_stream.catalog.models import CatalogOfferFields, CollectionFields

router = APIRouter(include_in_schema=False)

ItemId = Annotated[int, Path(ge=1, lt=2**53)]
NEW_OFFER = CatalogOfferFields(name={"en": "10% off your next order"}, stock=100)
STATUS_OF_ACTION = {"publish": "published", "unpublish": "unpublished"}


@router.get("/dashboard/catalog")
async def catalog_page(request: Request, viewer: SignedIn, edit: str = "") -> HTMLResponse:
    return await _page(request, viewer, edit_id=_item_id(edit))


@router.post("/dashboard/catalog/offers")
async def save_offer(request: Request, viewer: SignedIn, fields: Form) -> HTMLResponse:
    """Create an offer, or change the one named by ``id``, from the editor's JSON."""
    text = forms.first(fields, "document")
    offer_id = _item_id(forms.first(fields, "id"))
    body, errors = forms.parse_json_document(text, CatalogOfferFields)
    if body is None:
        return await _page(request, viewer, edit_id=offer_id, text=text, errors=errors)
    io = await catalog_io(request)
    if offer_id:
        patch = json.loads(text)
        call = api.update_catalog_offer(offer_id, patch, viewer.tenant_id, viewer.key_name, io)
    else:
        call = api.create_catalog_offer(body, viewer.tenant_id, viewer.key_name, io)
    return await shown_after(
        call, partial(_page, request, viewer), "Saved the offer.", text=text, edit_id=offer_id
    )


@router.post("/dashboard/catalog/offers/{offer_id}")
async def change_offer(
    request: Request, viewer: SignedIn, fields: Form, offer_id: ItemId
) -> HTMLResponse:
    """Publish, unpublish or archive one offer."""
    action = forms.first(fields, "act")
    io = await catalog_io(request)
    if action == "archive":
        call = api.archive_catalog_offer(offer_id, viewer.tenant_id, viewer.key_name, io)
    elif action in STATUS_OF_ACTION:
        patch = {"status": STATUS_OF_ACTION[action]}
        call = api.update_catalog_offer(offer_id, patch, viewer.tenant_id, viewer.key_name, io)
    else:
        return await _page(request, viewer, notice="Choose publish, unpublish or archive.")
    return await shown_after(
        call, partial(_page, request, viewer), f"Offer {offer_id}: {action} done."
    )


@router.post("/dashboard/catalog/collections")
async def save_collection(request: Request, viewer: SignedIn, fields: Form) -> HTMLResponse:
    text = forms.first(fields, "collection")
    body, errors = forms.parse_json_document(text, CollectionFields)
    if body is None:
        return await _page(request, viewer, collection_text=text, errors=errors)
    io = await catalog_io(request)
    call = api.create_catalog_collection(body, viewer.tenant_id, viewer.key_name, io)
    return await shown_after(
        call, partial(_page, request, viewer), "Created the collection.", collection_text=text
    )


@router.post("/dashboard/catalog/collections/{collection_id}")
async def archive_collection(
    request: Request, viewer: SignedIn, _fields: Form, collection_id: ItemId
) -> HTMLResponse:
    io = await catalog_io(request)
    call = api.archive_catalog_collection(collection_id, viewer.tenant_id, viewer.key_name, io)
    return await shown_after(
        call, partial(_page, request, viewer), f"Archived collection {collection_id}."
    )


async def _page(
    request: Request,
    viewer: Viewer,
    *,
    edit_id: int | None = None,
    text: str | None = None,
    collection_text: str | None = None,
    errors: list[forms.FieldError] | None = None,
    notice: str | None = None,
    status: int | None = None,
) -> HTMLResponse:
    io = await catalog_io(request)
    offers = await api.list_catalog_offers(
        viewer.tenant_id,
        io,
        page_no=1,
        per_page=100,
        sort_by="name",
        sort_direction="asc",
        types=None,
        types_=None,
        status=None,
        collection_ids=None,
        collection_ids_=None,
        ids=None,
        ids_=None,
        with_archived=True,
    )
    collections = await api.list_catalog_collections(
        viewer.tenant_id, io, page_no=1, per_page=100, with_archived=True
    )
    editing = next((o for o in offers.offers if o.id == edit_id), None)
    if text is None:
        text = _fields_json(editing or NEW_OFFER, CatalogOfferFields)
    return render(
        request,
        viewer,
        "catalog.html",
        status or (422 if errors else 200),
        page="catalog",
        offers=offers.offers,
        collections=collections.collections,
        editing=editing,
        edit_id=edit_id if editing or errors else None,
        text=text,
        collection_text=collection_text or _fields_json(CollectionFields(), CollectionFields),
        errors=forms.errors_by_field(errors or []),
        notice=notice,
        language=io.settings.default_language,
    )


def _fields_json(item: BaseModel, fields: type[BaseModel]) -> str:
    """The fields a business writes of ``item``, as the editor shows them."""
    written = item.model_dump(mode="json", include=set(fields.model_fields), exclude_none=True)
    return json.dumps(written, indent=2, ensure_ascii=False)


def _item_id(text: str) -> int | None:
    ids = forms.offer_ids([text])
    return ids[0] if ids else None
