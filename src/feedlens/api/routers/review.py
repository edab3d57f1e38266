"""The moderation review queue: what waits for a person, decisions, scans and threshold calibration."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from feedlens.api.deps import Reader, State, Writer
from feedlens.api.problems import Problem

router = APIRouter(tags=["review"])


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject", "escalate"]
    reason: str = Field("", max_length=2000)


@router.get("/v1/review/moderation")
async def moderation_queue(
    state: State,
    who: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    queue_state: Annotated[Literal["pending", "escalated"], Query(alias="state")] = "pending",
) -> dict[str, Any]:
    """Images waiting for a moderator (`state=escalated`: those escalated), highest priority first:
    priority = risk + uncertainty weight x uncertainty (docs/feedback.md)."""
    items = await run_in_threadpool(state.services.review.queue, who.workspace_id, limit, queue_state)
    return {"state": queue_state, "items": items}


@router.post("/v1/review/moderation/scan")
async def moderation_scan(state: State, who: Writer) -> dict[str, int]:
    """Assess every image of the workspace (images ingested before the queue, or after a threshold change);
    decided images keep their decisions."""
    return await run_in_threadpool(state.services.review.scan, who.workspace_id)


@router.get("/v1/review/moderation/calibration")
async def moderation_calibration(
    state: State,
    who: Reader,
    target_precision: Annotated[float | None, Query(gt=0, le=1)] = None,
) -> dict[str, Any]:
    """Precision and recall of the unsafe flag at thresholds 0.05..0.95 of the risk score, judged by the
    moderators' decisions, the current threshold's point and the threshold reaching `target_precision`."""
    return await run_in_threadpool(state.services.review.calibration, who.workspace_id, target_precision)


@router.get("/v1/review/moderation/{image_id}")
async def moderation_status(image_id: str, state: State, who: Reader) -> dict[str, Any]:
    """One image's review state (`none` when never queued) and its decisions, newest first."""
    found = await run_in_threadpool(state.services.review.status, who.workspace_id, image_id)
    if found is None:
        raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
    return found


@router.post("/v1/review/moderation/{image_id}")
async def moderation_decide(image_id: str, body: DecisionBody, state: State, who: Writer) -> dict[str, Any]:
    """Approve, reject or escalate an image waiting for review, with a reason. 409 `not_in_review` when it
    is not waiting (never queued, already decided): change a decision with a safety correction instead."""
    done = await run_in_threadpool(
        lambda: state.services.review.decide(
            who.workspace_id, image_id, body.decision, body.reason, by=f"key:{who.key_id}"
        )
    )
    if done is None:
        raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
    return done
