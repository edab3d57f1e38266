"""The library: add images (with post metadata), list and filter them, read one, its thumbnail, erase."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from feedlens.api.deps import Admin, Reader, State, Viewer, Writer
from feedlens.api.filters import Filters
from feedlens.api.inputs import read_image_input
from feedlens.api.problems import Problem, item_problem
from feedlens.api.routers.analyze import BODY_DOC
from feedlens.services.ingest import IngestItem

router = APIRouter(tags=["images"])


@router.post("/v1/images", status_code=201, openapi_extra=BODY_DOC)
async def add_image(request: Request, state: State, who: Writer) -> JSONResponse:
    """Store and analyse one image, optionally with its post (`post`: the feed schema). 201 when new,
    200 when the same bytes were already in the workspace (the post is linked either way)."""
    given = await read_image_input(request, allow_post=True)
    item = IngestItem(source=given.name, data=given.data, url=given.url, post=given.post)
    if given.analyzers:  # a custom analyzer set runs alone
        ingestor = state.services.ingestor(given.analyzers)
        outcome = await state.gate.run(lambda: ingestor.process_batch(who.workspace_id, [item])[0])
    else:
        outcome = await state.gate.run_coalesced(
            lambda: state.coalescer.submit(who.workspace_id, item), state.coalescer.drain
        )
    state.metrics.images.inc()
    if outcome.status == "failed" or outcome.image_id is None:
        raise item_problem(outcome.error, "the image could not be stored")
    view = _view(state, who.workspace_id, outcome.image_id)
    return JSONResponse(
        {"status": outcome.status, **view}, status_code=201 if outcome.status == "added" else 200
    )


def _view(state: State, workspace: int, image_id: str) -> dict[str, Any]:
    view = state.services.library.view(workspace, image_id, state.services.current_versions)
    if view is None:
        raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
    return view


@router.get("/v1/images/{image_id}")
def get_image(image_id: str, state: State, who: Reader) -> dict[str, Any]:
    """One image: metadata, posts, the newest result of every analyzer, and which of them are stale."""
    return _view(state, who.workspace_id, image_id)


@router.get("/v1/images/{image_id}/thumbnail", response_class=Response)
def thumbnail(image_id: str, state: State, who: Viewer) -> Response:
    """The stored WebP thumbnail. Rate-limited in the key's views bucket, not its analysis budget: a
    gallery shows hundreds (docs/api.md "Limits and concurrency")."""
    data = state.services.library.thumbnail(who.workspace_id, image_id)
    if data is None:
        raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
    return Response(data, media_type="image/webp", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/v1/images")
def list_images(
    state: State,
    who: Reader,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """Images of the workspace, newest first, filtered; follow `next_cursor` for the next page."""
    library, current = state.services.library, state.services.current_versions
    items, next_cursor = library.page(who.workspace_id, filters, limit, cursor, current)
    return {"items": items, "next_cursor": next_cursor}


@router.delete("/v1/images/{image_id}", status_code=204, response_class=Response)
def delete_image(image_id: str, state: State, who: Writer) -> Response:
    """Erase an image: its rows, stored copy and thumbnail (unless another workspace holds the same file)."""
    if not state.services.library.delete_images(who.workspace_id, [image_id]):
        raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
    return Response(status_code=204)


@router.delete("/v1/authors/{author}", tags=["erasure"])
def delete_author(author: str, state: State, who: Admin) -> dict[str, Any]:
    """Right to erasure: the author's posts and every image that no other author's post shows."""
    erased = state.services.library.delete_author(who.workspace_id, author)
    return {"author": author.lstrip("@"), "erased": erased}
