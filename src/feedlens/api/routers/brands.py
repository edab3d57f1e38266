"""Brands: the workspace's brand registry (names, aliases, hashtags, reference logos), rescans, counts."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from feedlens.api.deps import Reader, State, Writer
from feedlens.api.filters import TimeWindow
from feedlens.api.problems import Problem

router = APIRouter(tags=["brands"])

BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "aliases": {"type": "array", "items": {"type": "string"}},
                        "hashtags": {"type": "array", "items": {"type": "string"}},
                        "logos": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    },
                    "required": ["name"],
                }
            },
            "application/json": {"schema": {"$ref": "#/components/schemas/BrandBody"}},
        }
    }
}


class BrandBody(BaseModel):
    """A brand to register, or more aliases, hashtags and logos for one already registered."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    aliases: list[str] = Field(default_factory=list, max_length=50)
    hashtags: list[str] = Field(default_factory=list, max_length=50)
    logos: list[str] = Field(default_factory=list, max_length=20, description="images, base64")


async def _body(request: Request) -> tuple[BrandBody, list[tuple[str, bytes]]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            form = await request.form(max_files=20, max_fields=120)
            uploads = [u for u in form.getlist("logos") if isinstance(u, UploadFile)]
            body = BrandBody(
                name=str(form.get("name") or ""),
                aliases=[str(a) for a in form.getlist("aliases")],
                hashtags=[str(h) for h in form.getlist("hashtags")],
            )
            logos = [(u.filename or f"logo {i}", await u.read()) for i, u in enumerate(uploads)]
            return body, logos
        if content_type == "application/json":
            body = BrandBody.model_validate_json(await request.body())
            logos = []
            for i, text in enumerate(body.logos):
                try:
                    logos.append((f"logos[{i}]", base64.b64decode(text, validate=True)))
                except (binascii.Error, ValueError):
                    raise Problem(422, "invalid_base64", f"logos[{i}] is not base64") from None
            return body, logos
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        raise Problem(422, "invalid_request", "the brand is not valid", errors=errors) from None
    raise Problem(415, "unsupported_media_type", "send multipart/form-data or application/json")


@router.get("/v1/brands")
async def list_brands(state: State, who: Reader) -> dict[str, Any]:
    """The registered brands with their aliases, hashtags and logos, and the registry version."""
    brands = await run_in_threadpool(state.services.brands.registered, who.workspace_id)
    return {
        "version": await run_in_threadpool(state.services.brands.version, who.workspace_id),
        "brands": brands,
    }


@router.post("/v1/brands", openapi_extra=BODY_DOC)
async def add_brand(
    request: Request,
    state: State,
    who: Writer,
    rescan: Annotated[bool, Query(description="look for the brand in every stored image now")] = True,
) -> dict[str, Any]:
    """Register a brand (multipart: `name`, repeated `aliases`, `hashtags` and `logos` files; or JSON with
    base64 logos). Every logo is checked before anything is stored: too small, featureless or not an
    image gives 422 with a stable code. Then, unless `rescan=false`, every stored image is scanned."""
    body, logos = await _body(request)
    brand = await run_in_threadpool(
        lambda: state.services.brands.add(who.workspace_id, body.name, body.aliases, body.hashtags, logos)
    )
    scanned = await state.gate.run(lambda: state.services.brands.rescan(who.workspace_id)) if rescan else None
    return {"brand": brand, "scanned": scanned}


@router.get("/v1/brands/counts")
async def brand_counts(
    state: State,
    who: Reader,
    window: TimeWindow,
) -> dict[str, Any]:
    """Images mentioning each brand per UTC day, dated by their earliest post (else by ingest)."""
    start, end = window
    rows = await run_in_threadpool(state.services.brands.counts, who.workspace_id, start, end)
    return {"counts": [{"day": day.isoformat(), "brand": name, "images": n} for day, name, n in rows]}


@router.post("/v1/brands/rescan")
async def rescan(state: State, who: Writer) -> dict[str, Any]:
    """Look for every registered brand in every stored image again."""
    return {"scanned": await state.gate.run(lambda: state.services.brands.rescan(who.workspace_id))}


@router.get("/v1/brands/{name}")
async def get_brand(name: str, state: State, who: Reader) -> dict[str, Any]:
    brand = await run_in_threadpool(state.services.brands.get, who.workspace_id, name)
    if brand is None:
        raise Problem(404, "not_found", f"no brand {name!r} in this workspace")
    return brand


@router.delete("/v1/brands/{name}", status_code=204)
async def delete_brand(name: str, state: State, who: Writer) -> Response:
    """Forget a brand and its logos, and rescan the stored images so its mentions disappear."""
    if not await run_in_threadpool(state.services.brands.remove, who.workspace_id, name):
        raise Problem(404, "not_found", f"no brand {name!r} in this workspace")
    await state.gate.run(lambda: state.services.brands.rescan(who.workspace_id))
    return Response(status_code=204)


@router.delete("/v1/brands/{name}/logos/{logo_id}", status_code=204)
async def delete_logo(
    name: str, logo_id: Annotated[int, Path(ge=1, le=2**63 - 1)], state: State, who: Writer
) -> Response:
    if not await run_in_threadpool(state.services.brands.remove_logo, who.workspace_id, name, logo_id):
        raise Problem(404, "not_found", f"no logo {logo_id} of brand {name!r} in this workspace")
    return Response(status_code=204)
