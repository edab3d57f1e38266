"""Active learning (docs/feedback.md): the labelling queue, the retraining loop's cycles and status."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from feedlens.api.deps import Reader, State, Writer
from feedlens.api.state import AppState
from feedlens.services.training import Run, TrainOptions

router = APIRouter(tags=["active learning"])


class CycleBody(BaseModel):
    """One retraining cycle; unset fields take the FEEDLENS_LEARNING__* settings."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["probe", "finetune"] | None = None
    metric: Literal["macro_f1", "accuracy"] | None = None
    margin: float | None = Field(None, ge=0.0, le=1.0)
    epochs: int = Field(15, ge=1, le=200)
    seed: int = Field(0, ge=0, le=2**31 - 1)


@router.get("/v1/review/labeling")
async def labeling_queue(
    state: State,
    who: Reader,
    n: Annotated[int, Query(ge=1, le=200, description="how many images")] = 20,
    strategy: Annotated[
        Literal["margin", "least_confidence", "entropy", "random"], Query(description="uncertainty measure")
    ] = "margin",
    diversity: Annotated[bool, Query(description="spread the picks over embedding clusters")] = True,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> dict[str, Any]:
    """The next unlabelled images to label: most uncertain under a model refitted on the current labels,
    spread over clusters; each pick says its uncertainty, cluster and the predicted categories."""
    return await run_in_threadpool(
        lambda: state.services.learning.next(who.workspace_id, n, strategy, diversity=diversity, seed=seed)
    )


def submit_cycle(state: AppState, workspace: int, body: CycleBody, trigger: str, by: str) -> Run:
    conf = state.settings.learning
    options = TrainOptions(mode=body.mode or conf.mode, epochs=body.epochs, seed=body.seed)
    return state.runs.submit(
        workspace,
        "cycle",
        lambda: state.services.learning.cycle(
            workspace, options, metric=body.metric, margin=body.margin, trigger=trigger, created_by=by
        ),
    )


def maybe_retrain(state: AppState, workspace: int, by: str) -> None:
    """After labels arrive over the API: start a cycle when enough new ones have (none while one runs)."""
    if state.runs.active(workspace, "cycle") is None and state.services.learning.due(workspace):
        submit_cycle(state, workspace, CycleBody(), "labels", by)


@router.post("/v1/review/retrain", status_code=202)
async def retrain(state: State, who: Writer, body: CycleBody | None = None) -> JSONResponse:
    """Run a retraining cycle now (202 with a run to poll); the result says whether it was promoted."""
    run = submit_cycle(state, who.workspace_id, body or CycleBody(), "command", f"key:{who.key_id}")
    return JSONResponse(run.to_dict(), status_code=202, headers={"Location": f"/v1/models/runs/{run.id}"})


@router.get("/v1/review/learning")
async def learning_status(state: State, who: Reader) -> dict[str, Any]:
    """Every retraining cycle and the learning curve: the holdout metric against the number of labels."""
    return await run_in_threadpool(state.services.learning.status, who.workspace_id)
