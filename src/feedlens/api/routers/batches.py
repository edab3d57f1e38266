"""POST /v1/batches (many images or URLs -> a job) and GET /v1/jobs/{id} (progress, per-item results)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.datastructures import UploadFile

from feedlens.api.deps import Reader, State, Writer
from feedlens.api.inputs import decode_base64, parse_post
from feedlens.api.problems import Problem
from feedlens.services.jobs import BatchItem

router = APIRouter(tags=["batches"])


class BatchItemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str | None = Field(None, description="base64 image bytes")
    url: str | None = Field(None, max_length=4096)
    name: str | None = Field(None, max_length=512)
    post: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one(self) -> BatchItemBody:
        if (self.content is None) == (self.url is None):
            raise ValueError("give exactly one of content or url")
        return self


class BatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BatchItemBody] = Field(min_length=1)


async def _items(request: Request, state: State) -> list[BatchItem]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    limit = state.settings.api.max_batch_items
    if content_type == "multipart/form-data":
        form = await request.form(max_files=limit, max_fields=limit + 10)
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not files:
            raise Problem(422, "missing_file", "multipart batches need one or more 'files' fields")
        items = [
            BatchItem(source=f.filename or f"upload-{n}", data=await f.read()) for n, f in enumerate(files)
        ]
        return items
    try:
        body = BatchBody.model_validate(await request.json())
    except ValueError as exc:  # JSONDecodeError and ValidationError are both ValueErrors
        errors = exc.errors() if isinstance(exc, ValidationError) else []
        detail = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in errors]
        raise Problem(422, "invalid_request", "the body is not a valid batch", errors=detail) from None
    if len(body.items) > limit:
        raise Problem(413, "batch_too_large", f"{len(body.items)} items; at most {limit} per batch")
    if any(i.url for i in body.items) and not state.settings.fetch.enabled:
        raise Problem(400, "fetch_disabled", "URL items need FEEDLENS_FETCH__ENABLED=true on the server")
    out = []
    for n, item in enumerate(body.items):
        name = item.name or item.url or f"item-{n}"
        data = decode_base64(item.content) if item.content is not None else None
        out.append(BatchItem(source=name, data=data, url=item.url, post=parse_post(item.post, name)))
    return out


# The body is read by hand (JSON or multipart): the schema is named here for the docs (api/web.py adds it).
BATCH_DOC: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/BatchBody"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}}
                    },
                }
            },
        }
    }
}


@router.post("/v1/batches", status_code=202, openapi_extra=BATCH_DOC)
async def create_batch(request: Request, state: State, who: Writer) -> JSONResponse:
    """Accept many images (JSON `items` with base64 `content` or `url`, or multipart `files`) as a job.
    The job survives a server restart; poll GET /v1/jobs/{id}."""
    items = await _items(request, state)
    job_id = state.services.jobs.create_batch(who.workspace_id, items)
    body = {"id": job_id, "status": "pending", "total": len(items), "url": f"/v1/jobs/{job_id}"}
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/jobs/{job_id}"})


@router.get("/v1/jobs/{job_id}")
def get_job(
    job_id: str,
    state: State,
    who: Reader,
    results: Annotated[bool, Query(description="include each done item's results")] = True,
) -> dict[str, Any]:
    view = state.services.jobs.view(who.workspace_id, job_id, with_results=results)
    if view is None:
        raise Problem(404, "not_found", f"no job {job_id!r} in this workspace")
    return view
