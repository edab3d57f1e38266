"""Corrections: confirm or correct an image's categories and moderation verdict (docs/feedback.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.concurrency import run_in_threadpool

from feedlens.api.deps import Reader, State, Writer
from feedlens.api.problems import Problem
from feedlens.api.routers.learning import maybe_retrain
from feedlens.core.taxonomy import MAX_NAME

router = APIRouter(tags=["feedback"])
MAX_LABELS = 50

CategoryName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME)]


class CorrectionBody(BaseModel):
    """What a person says about an image: categories it shows and (`not`) does not show, `confirm` to accept
    the assigned categories, and/or the moderation verdict it deserves."""

    model_config = ConfigDict(extra="forbid")

    categories: list[CategoryName] = Field(default_factory=list, max_length=MAX_LABELS)
    not_: list[CategoryName] = Field(default_factory=list, max_length=MAX_LABELS, alias="not")
    confirm: bool = False
    safety: Literal["safe", "suggestive", "explicit"] | None = None
    reason: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _some(self) -> CorrectionBody:
        if not (self.categories or self.not_ or self.confirm or self.safety):
            raise ValueError("give `categories`, `not`, `confirm` or `safety`")
        return self


@router.post("/v1/images/{image_id}/corrections", status_code=201, tags=["images"])
async def correct(image_id: str, body: CorrectionBody, state: State, who: Writer) -> dict[str, Any]:
    """Confirm or correct an image: categories become labels (training's and live accuracy's ground truth),
    a verdict becomes a moderation decision (`safe` approves, others reject). Recorded with who, when, the
    prediction it replaces and that prediction's version."""
    done = await run_in_threadpool(
        lambda: state.services.corrections.correct(
            who.workspace_id,
            image_id,
            categories=body.categories,
            not_=body.not_,
            confirm=body.confirm,
            safety=body.safety,
            reason=body.reason,
            by=f"key:{who.key_id}",
            source="api",
        )
    )
    if done is None:
        raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
    if body.categories or body.not_ or body.confirm:  # new ground truth: maybe time for a retraining cycle
        await run_in_threadpool(maybe_retrain, state, who.workspace_id, f"key:{who.key_id}")
    return done


@router.get("/v1/images/{image_id}/corrections", tags=["images"])
async def corrections(image_id: str, state: State, who: Reader) -> dict[str, Any]:
    """Every correction of an image, newest (the one in force) first."""
    found = await run_in_threadpool(state.services.corrections.history, who.workspace_id, image_id)
    if found is None:
        raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
    return {"image_id": image_id, "corrections": found}


class ReplaceBody(BaseModel):
    """The category an image shows instead of the one in the path."""

    model_config = ConfigDict(extra="forbid")

    with_: CategoryName = Field(alias="with")


@router.delete("/v1/images/{image_id}/labels/{category}", tags=["images"])
async def remove_label(image_id: str, category: CategoryName, state: State, who: Writer) -> dict[str, Any]:
    """Remove a wrong label (shows or does not show `category`); recorded as a correction of kind `labels`.
    404 `not_labelled` when the image has none for it."""
    from feedlens.services.training.labels import LabelEdits

    edits = LabelEdits(state.services.database)
    done = await run_in_threadpool(edits.remove, who.workspace_id, image_id, [category], f"key:{who.key_id}")
    if done is None:
        raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
    return done


@router.post("/v1/images/{image_id}/labels/{category}/replace", tags=["images"])
async def replace_label(
    image_id: str, category: CategoryName, body: ReplaceBody, state: State, who: Writer
) -> dict[str, Any]:
    """Replace a wrong label: the image shows `with`, not `category` (whose label is removed, not negated).
    Recorded as a correction; 404 `not_labelled`, 422 `unknown_category` change nothing."""
    from feedlens.services.training.labels import LabelEdits

    edits = LabelEdits(state.services.database)
    done = await run_in_threadpool(
        edits.replace,
        state.services.categories,
        who.workspace_id,
        image_id,
        category,
        body.with_,
        f"key:{who.key_id}",
    )
    if done is None:
        raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
    return done
