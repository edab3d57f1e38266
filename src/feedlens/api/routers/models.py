"""Trained models (docs/training.md): train and evaluate in the background, the registry with its
`production` alias, promote / rollback, A/B tests with live accuracy, predictions and Grad-CAM."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from feedlens.api.deps import Admin, Reader, State, Writer
from feedlens.api.inputs import read_image_input
from feedlens.api.problems import Problem
from feedlens.api.state import AppState
from feedlens.services.training import WORKSPACE, TrainOptions

router = APIRouter(tags=["models"])

Task = Annotated[Literal["categories"], Query(description="what the model predicts")]
MAX_VERSION = 2**31 - 1  # an INTEGER column: a larger number would be a database error, not a 404
VersionPath = Annotated[int, Path(ge=1, le=MAX_VERSION, description="a model version")]
DECODE_SIDE = 256


class TrainBody(BaseModel):
    """How to train on the workspace's labels (images labelled with exactly one category)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["probe", "finetune"] = "probe"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    epochs: int = Field(15, ge=1, le=200, description="fine-tuning only; early stopping usually ends sooner")
    balance: Literal["weights", "resample", "none"] = "weights"
    int8: bool = True
    max_int8_loss_points: float = Field(1.0, ge=0.0, le=100.0)
    skip_bad_images: bool = False


class EvaluateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    against: int | None = Field(
        None, ge=1, le=MAX_VERSION, description="compare with this version (default: production)"
    )


class AbBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    candidate: int | None = Field(
        None, ge=1, le=MAX_VERSION, description="the version to try (not needed to stop)"
    )
    mode: Literal["off", "split", "shadow"]
    share: float = Field(0.0, ge=0.0, le=1.0, description="split: share of images the candidate answers")


def _accepted(run: Any) -> JSONResponse:
    return JSONResponse(run.to_dict(), status_code=202, headers={"Location": f"/v1/models/runs/{run.id}"})


def _recategorise(state: AppState, workspace: int) -> dict[str, Any]:
    """A new production model drives the workspace's categories: recategorise it in the background."""
    run = state.runs.submit(
        workspace, "recategorize", lambda: state.services.categories.recategorize(workspace)
    )
    return dict(run.to_dict())


# -- static paths first: `/v1/models/{version}` would otherwise swallow them ------------------------------
@router.get("/v1/models")
async def list_models(state: State, who: Reader, task: Task = "categories") -> dict[str, Any]:
    """Every version of the task's models, with aliases (`production`, `candidate`) and the A/B state."""
    registry = state.services.training.registry
    versions = await run_in_threadpool(registry.versions, who.workspace_id, task)
    ab = await run_in_threadpool(registry.ab_status, who.workspace_id, task)
    production = next((v["version"] for v in versions if "production" in v["aliases"]), None)
    return {"task": task, "production": production, "ab": ab, "models": versions}


@router.post("/v1/models/train", status_code=202)
async def train(body: TrainBody, state: State, who: Writer, task: Task = "categories") -> JSONResponse:
    """Train a new version on the workspace's labels in the background: 202 with a run to poll
    (`Location`); the run's result is the registered version with its metrics. Fine-tuning with under 10
    labelled images in a category: 409 `not_enough_labels` at once."""
    options = TrainOptions(**body.model_dump())
    if options.mode == "finetune":  # 409 now, not a failed run later
        await run_in_threadpool(state.services.training.check_finetune, who.workspace_id)
    by = f"key:{who.key_id}"
    run = state.runs.submit(
        who.workspace_id,
        "train",
        lambda: state.services.training.train(who.workspace_id, WORKSPACE, options, task=task, created_by=by),
    )
    return _accepted(run)


@router.get("/v1/models/runs/{run_id}")
async def get_run(run_id: str, state: State, who: Reader) -> dict[str, Any]:
    """A training or evaluation run: queued, running, succeeded (with `result`) or failed (with `error`)."""
    return state.runs.get(who.workspace_id, run_id).to_dict()


@router.post("/v1/models/rollback")
async def rollback(state: State, who: Admin, task: Task = "categories") -> dict[str, Any]:
    """Production goes back to the model it replaced; 409 `nothing_to_roll_back` at the first one.
    `recategorize`: the background run that recategorises the workspace with it."""
    model: dict[str, Any] = await run_in_threadpool(
        state.services.training.registry.rollback, who.workspace_id, task, f"key:{who.key_id}"
    )
    return {**model, "recategorize": _recategorise(state, who.workspace_id)}


@router.get("/v1/models/ab")
async def ab_status(state: State, who: Reader, task: Task = "categories") -> dict[str, Any]:
    """The A/B test: mode, share, and for production and candidate the recorded predictions and live
    accuracy on labelled images (all, served-only, and on the images both predicted)."""
    return await run_in_threadpool(state.services.training.registry.ab_status, who.workspace_id, task)


@router.put("/v1/models/ab")
async def set_ab(body: AbBody, state: State, who: Admin, task: Task = "categories") -> dict[str, Any]:
    """Start (`split` with a share, or `shadow`), change or stop (`off`) an A/B test of a candidate."""
    registry = state.services.training.registry
    await run_in_threadpool(
        registry.set_ab, who.workspace_id, task, body.candidate, body.mode, body.share, f"key:{who.key_id}"
    )
    return await run_in_threadpool(registry.ab_status, who.workspace_id, task)


@router.get("/v1/models/history")
async def history(state: State, who: Reader, task: Task = "categories") -> dict[str, Any]:
    """Every promote, rollback and A/B change, oldest first."""
    return {
        "events": await run_in_threadpool(state.services.training.registry.history, who.workspace_id, task)
    }


async def _image(request: Request, state: State, workspace: int, image_id: str | None) -> tuple[Any, str]:
    """The image to predict on or explain (a stored one by id, else an upload) and its routing key."""
    decoder = state.services.decoder
    if image_id is not None:
        images = await run_in_threadpool(state.services.training.server.stored_images, workspace, [image_id])
        if image_id not in images:
            raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
        return images[image_id], image_id
    given = await read_image_input(request, allow_post=False)
    data = given.data
    if given.url is not None:
        data = (await run_in_threadpool(state.services.fetcher.fetch, given.url)).data
    assert data is not None
    decoded = await run_in_threadpool(decoder.decode, data, DECODE_SIDE)
    return decoded.image, hashlib.sha256(data).hexdigest()


@router.post("/v1/classify")
async def classify(
    request: Request,
    state: State,
    who: Reader,
    image_id: Annotated[
        str | None, Query(max_length=64, description="a stored image instead of an upload")
    ] = None,
    task: Task = "categories",
) -> dict[str, Any]:
    """The production model's prediction (or the A/B candidate's, for its share of images), for an upload
    (multipart `file` / JSON `image`) or a stored image. Predictions for stored images are recorded; the
    non-served arm of an A/B test is listed under `also`."""
    image, key = await _image(request, state, who.workspace_id, image_id)
    server = state.services.training.server
    if image_id is not None:
        found = await state.gate.run(lambda: server.predict_stored(who.workspace_id, task, [image_id]))
        arms = found[image_id]
    else:
        arms = (await state.gate.run(lambda: server.predict(who.workspace_id, task, [image], [key])))[0]
    return {"task": task, "image_id": image_id, **arms[0].to_dict(), "also": [p.to_dict() for p in arms[1:]]}


@router.post(
    "/v1/models/explain",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "the heatmap over the image"}},
)
async def explain(
    request: Request,
    state: State,
    who: Reader,
    image_id: Annotated[str | None, Query(max_length=64)] = None,
    version: Annotated[int | None, Query(ge=1, le=MAX_VERSION)] = None,
    category: Annotated[str | None, Query(max_length=64, description="default: the predicted one")] = None,
    task: Task = "categories",
) -> Response:
    """Grad-CAM heatmap of a category's score overlaid on the image, PNG at the image's size; headers name
    the version, category and score."""
    image, _ = await _image(request, state, who.workspace_id, image_id)
    png, info = await state.gate.run(
        lambda: state.services.training.explain(
            who.workspace_id, image, version=version, category=category, task=task
        )
    )
    headers = {
        "X-Feedlens-Model-Version": str(info["version"]),
        "X-Feedlens-Category": info["category"].encode("ascii", "backslashreplace").decode(),
        "X-Feedlens-Score": f"{info['score']:.6f}",
    }
    return Response(png, media_type="image/png", headers=headers)


@router.get("/v1/images/{image_id}/predictions", tags=["images"])
async def image_predictions(image_id: str, state: State, who: Reader) -> dict[str, Any]:
    """Recorded predictions of trained models for a stored image (both arms of an A/B test)."""
    found = await run_in_threadpool(state.services.training.server.predictions_of, who.workspace_id, image_id)
    if found is None:
        raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
    return {"image_id": image_id, "predictions": found}


# -- one version ---------------------------------------------------------------------------------------------
@router.get("/v1/models/{version}")
async def get_model(
    version: VersionPath, state: State, who: Reader, task: Task = "categories"
) -> dict[str, Any]:
    """One version: metrics, dataset hash, parameters, parent, compression, training details."""
    return await run_in_threadpool(state.services.training.registry.get, who.workspace_id, task, version)


@router.get("/v1/models/{version}/report", response_class=HTMLResponse)
async def report(version: VersionPath, state: State, who: Reader, task: Task = "categories") -> HTMLResponse:
    """The evaluation report made after training: a self-contained HTML page."""
    page = await run_in_threadpool(state.services.training.report, who.workspace_id, version, "report", task)
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": (
                "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
            )
        },
    )


@router.get("/v1/models/{version}/metrics")
async def metrics(version: VersionPath, state: State, who: Reader, task: Task = "categories") -> Response:
    """The evaluation report's numbers (`metrics.json`)."""
    data = await run_in_threadpool(state.services.training.report, who.workspace_id, version, "metrics", task)
    return Response(data, media_type="application/json")


@router.post("/v1/models/{version}/evaluate", status_code=202)
async def evaluate(
    version: VersionPath,
    state: State,
    who: Writer,
    body: EvaluateBody | None = None,
    task: Task = "categories",
) -> JSONResponse:
    """Evaluate a version on the workspace's labels in the background (its test split when they are the
    data it was trained on), side by side with `against` or production; the run's result is the report's
    numbers."""
    against = None if body is None else body.against
    state.services.training.registry.get(who.workspace_id, task, version)  # 404 now rather than in the run

    def work() -> dict[str, Any]:
        report, _ = state.services.training.evaluate(
            who.workspace_id, version, WORKSPACE, against=against, task=task
        )
        return report.metrics

    return _accepted(state.runs.submit(who.workspace_id, "evaluate", work))


@router.post("/v1/models/{version}/promote")
async def promote(
    version: VersionPath, state: State, who: Admin, task: Task = "categories"
) -> dict[str, Any]:
    """Make a version the task's production model (what /v1/classify and ingest use). The answer's
    `promotion_warnings` say when its accuracy is low or unknown (too few test images); `recategorize`:
    the background run (poll `/v1/models/runs/{id}`) that recategorises the workspace with it."""
    from feedlens.training.advice import promotion_warnings

    model: dict[str, Any] = await run_in_threadpool(
        state.services.training.registry.promote, who.workspace_id, task, version, f"key:{who.key_id}"
    )
    recategorize = _recategorise(state, who.workspace_id)
    return {**model, "promotion_warnings": promotion_warnings(model), "recategorize": recategorize}
