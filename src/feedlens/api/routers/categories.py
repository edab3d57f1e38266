"""Categories: the workspace's taxonomy (versioned), its categories and per-day counts, labels on images,
training (an alias of the model registry's route) and recategorising."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.concurrency import run_in_threadpool

from feedlens.api.deps import Admin, Reader, State, Writer
from feedlens.api.filters import TimeWindow
from feedlens.api.problems import Problem
from feedlens.api.routers.learning import maybe_retrain
from feedlens.core.taxonomy import MAX_BYTES, MAX_NAME, parse_taxonomy

router = APIRouter(tags=["categories"])

JSON_TYPES = ("application/json",)
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
MAX_LABELS = 50

TAXONOMY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": f"a taxonomy document (docs/categories.md), at most {MAX_BYTES} bytes",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
            "text/yaml": {"schema": {"type": "string"}},
        },
    }
}

CategoryName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME)]


class LabelsBody(BaseModel):
    """Categories an image shows and (`not`) does not show; statements replace earlier ones about the
    same categories."""

    model_config = ConfigDict(extra="forbid")

    categories: list[CategoryName] = Field(default_factory=list, max_length=MAX_LABELS)
    not_: list[CategoryName] = Field(default_factory=list, max_length=MAX_LABELS, alias="not")

    @model_validator(mode="after")
    def _some(self) -> LabelsBody:
        if not self.categories and not self.not_:
            raise ValueError("give at least one category in `categories` or `not`")
        return self


class CategoryTrainBody(BaseModel):
    """How to train: `probe` (default; with few labels it learns from all and cross-validates) or
    `finetune` (refused with 409 `not_enough_labels` below 10 labelled images per category)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["probe", "finetune"] = "probe"


async def _read_capped(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes `limit` bytes (not buffered past it)."""
    length = request.headers.get("content-length")
    detail = f"a taxonomy document is at most {limit} bytes"
    if length is not None and length.isdigit() and int(length) > limit:
        raise Problem(413, "request_too_large", detail)
    chunks, seen = [], 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise Problem(413, "request_too_large", detail)
        chunks.append(chunk)
    return b"".join(chunks)


# -- taxonomy ----------------------------------------------------------------------------------------------
@router.get("/v1/taxonomy")
async def get_taxonomy(state: State, who: Reader) -> dict[str, Any]:
    """The workspace's current taxonomy and its version (the default taxonomy until one is set)."""
    taxonomy, version = await run_in_threadpool(state.services.categories.taxonomy, who.workspace_id)
    return {"version": version, "taxonomy": taxonomy.to_dict()}


@router.put("/v1/taxonomy", openapi_extra=TAXONOMY_DOC)
async def put_taxonomy(request: Request, state: State, who: Admin) -> dict[str, Any]:
    """Replace the taxonomy (JSON, or YAML as application/yaml or text/yaml): stores a new version and
    recategorises every image of the workspace with it. Labels of removed categories are kept."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in (*JSON_TYPES, *YAML_TYPES):
        raise Problem(
            415, "unsupported_media_type", "send the taxonomy as application/json or application/yaml"
        )
    body = await _read_capped(request, MAX_BYTES)
    media_type = "application/json" if content_type in JSON_TYPES else "application/yaml"
    # TaxonomyError -> 422 listing every problem; parsing up to MAX_BYTES of YAML is off the event loop
    taxonomy = await run_in_threadpool(parse_taxonomy, body, media_type)
    version, recategorized = await run_in_threadpool(
        state.services.categories.set_taxonomy, who.workspace_id, taxonomy
    )
    return {"version": version, "recategorized": recategorized}


@router.get("/v1/taxonomy/versions")
async def taxonomy_versions(state: State, who: Reader) -> dict[str, Any]:
    """Every version of the workspace's taxonomy, newest first."""
    return {"versions": await run_in_threadpool(state.services.categories.history, who.workspace_id)}


# -- categories --------------------------------------------------------------------------------------------
@router.get("/v1/categories")
async def list_categories(state: State, who: Reader) -> dict[str, Any]:
    """The current categories (and `other`), each with the number of images currently assigned it."""
    return await run_in_threadpool(state.services.categories.overview, who.workspace_id)


@router.get("/v1/categories/counts")
async def category_counts(
    state: State,
    who: Reader,
    window: TimeWindow,
) -> dict[str, Any]:
    """Images per category and UTC day, dated by their earliest post (or, without one, by ingest)."""
    start, end = window
    rows = await run_in_threadpool(state.services.categories.counts, who.workspace_id, start, end)
    return {"counts": [{"day": day.isoformat(), "category": name, "images": n} for day, name, n in rows]}


@router.post("/v1/categories/recategorize")
async def recategorize(state: State, who: Writer) -> dict[str, Any]:
    """Categorise every image of the workspace again with the current taxonomy and model."""
    return {
        "recategorized": await run_in_threadpool(state.services.categories.recategorize, who.workspace_id)
    }


@router.post("/v1/categories/train")
async def train(state: State, who: Writer, body: CategoryTrainBody | None = None) -> dict[str, Any]:
    """Train on the workspace's labels through the model registry (as `POST /v1/models/train`, but
    waiting for it), register the version, make it production and recategorise with it. 409
    `not_enough_labels` without images labelled with one category in two categories or more, or when
    fine-tuning has too few; the message says how many are needed."""
    mode = body.mode if body is not None else "probe"
    by = f"key:{who.key_id}"
    report = await run_in_threadpool(state.services.categories.train, who.workspace_id, mode, by)
    return dataclasses.asdict(report)


@router.get("/v1/categories/models")
async def category_models(state: State, who: Reader) -> dict[str, Any]:
    """The registry's versions, newest first (`current`: the production one, which drives the categories),
    then older category models trained before the routes were merged (`source: category_models`)."""
    return {"models": await run_in_threadpool(state.services.categories.models, who.workspace_id)}


# -- labels ------------------------------------------------------------------------------------------------
@router.post("/v1/images/{image_id}/labels", tags=["images"])
async def add_labels(image_id: str, body: LabelsBody, state: State, who: Writer) -> dict[str, Any]:
    """Say which categories an image shows (`categories`) and does not show (`not`): ground truth for
    POST /v1/categories/train. Names are the current taxonomy's (any case)."""
    labels = await run_in_threadpool(
        lambda: state.services.categories.label(
            who.workspace_id,
            image_id,
            body.categories,
            body.not_,
            source="api",
            created_by=f"key:{who.key_id}",  # the key's id: the secret is never stored or echoed
        )
    )
    if labels is None:
        raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
    await run_in_threadpool(maybe_retrain, state, who.workspace_id, f"key:{who.key_id}")
    return {"image_id": image_id, "labels": labels}


@router.get("/v1/images/{image_id}/labels", tags=["images"])
async def get_labels(image_id: str, state: State, who: Reader) -> dict[str, Any]:
    """The labels recorded for an image."""
    labels = await run_in_threadpool(state.services.categories.labels, who.workspace_id, image_id)
    if labels is None:
        raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
    return {"image_id": image_id, "labels": labels}
