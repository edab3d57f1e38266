"""POST /v1/analyze: results for one image, nothing stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from feedlens.api.deps import Reader, State
from feedlens.api.inputs import read_image_input
from feedlens.api.problems import item_problem

router = APIRouter(tags=["analyze"])

BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "analyzers": {"type": "string", "description": "comma-separated"},
                    },
                    "required": ["file"],
                }
            },
            "application/json": {"schema": {"$ref": "#/components/schemas/AnalyzeBody"}},
        }
    }
}


@router.post("/v1/analyze", openapi_extra=BODY_DOC)
async def analyze(request: Request, state: State, _: Reader) -> dict[str, Any]:
    """Analyse one image (multipart `file`, or JSON `image.content` base64 / `image.url`) and return
    every analyzer's result. Nothing is stored."""
    given = await read_image_input(request, allow_post=False)
    data = given.data
    if given.url is not None:
        data = (await run_in_threadpool(state.services.fetcher.fetch, given.url)).data
    assert data is not None
    pipeline = state.services.pipeline(given.analyzers or None)
    report = await state.gate.run(lambda: pipeline.analyze_one(data, given.name))
    state.metrics.images.inc()
    if not report.ok:
        raise item_problem(report.error)
    out = report.to_dict()
    out.pop("path", None)
    out["versions"] = pipeline.versions()
    return out
