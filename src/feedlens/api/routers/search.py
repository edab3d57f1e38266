"""Search by words or by example, duplicates, clusters and index maintenance."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from feedlens.api.deps import Admin, Reader, State
from feedlens.api.filters import Filters
from feedlens.api.inputs import read_image_input
from feedlens.api.problems import Problem
from feedlens.api.routers.analyze import BODY_DOC
from feedlens.services.search import Hit

router = APIRouter(tags=["search"])
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=10_000)]
MinScore = Annotated[float | None, Query(ge=0, le=1, description="default FEEDLENS_SEARCH__MIN_SCORE")]


def _page(state: State, workspace: int, hits: list[Hit], limit: int, offset: int) -> dict[str, Any]:
    ids = [h.image_id for h in hits]
    views = state.services.library.views_by_id(workspace, ids, state.services.current_versions)
    items = [
        {
            "image_id": h.image_id,
            "score": round(h.score, 4),
            "cosine": round(h.cosine, 4),
            "image": views[h.image_id],
        }
        for h in hits
        if h.image_id in views
    ]
    return {
        "items": items,
        "min_score": state.settings.search.min_score,
        "next_offset": offset + limit if len(hits) == limit else None,
    }


@router.get("/v1/search")
async def search(
    state: State,
    who: Reader,
    filters: Filters,
    q: Annotated[str, Query(min_length=1, max_length=500, pattern=r"\S", description="words to look for")],
    not_: Annotated[list[str] | None, Query(alias="not", max_length=20, description="negative terms")] = None,
    limit: Limit = 20,
    offset: Offset = 0,
    min_score: MinScore = None,
) -> dict[str, Any]:
    """Images matching words (their content, OCR text, captions and hashtags), best first; scores are
    calibrated to [0, 1] and results under `min_score` are not returned."""
    negative = [n for n in (not_ or []) if n.strip()]
    hits = await state.gate.run(
        lambda: state.services.search.text(who.workspace_id, q, negative, filters, limit, offset, min_score)
    )
    return {"query": q, "not": negative, **_page(state, who.workspace_id, hits, limit, offset)}


@router.post("/v1/search/similar", openapi_extra=BODY_DOC)
async def similar(
    request: Request,
    state: State,
    who: Reader,
    filters: Filters,
    image_id: Annotated[
        str | None, Query(max_length=64, description="a stored image instead of an upload")
    ] = None,
    limit: Limit = 20,
    offset: Offset = 0,
    min_score: MinScore = None,
) -> dict[str, Any]:
    """Images that look like an uploaded image (multipart `file` / JSON `image`) or a stored one."""
    if image_id is not None:
        found = await run_in_threadpool(
            lambda: state.services.search.similar(
                who.workspace_id,
                image_id=image_id,
                filters=filters,
                limit=limit,
                offset=offset,
                min_score=min_score,
            )
        )
        if found is None:
            raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
        return _page(state, who.workspace_id, found, limit, offset)
    given = await read_image_input(request, allow_post=False)
    data = given.data
    if given.url is not None:
        data = (await run_in_threadpool(state.services.fetcher.fetch, given.url)).data
    assert data is not None
    vector = await state.gate.run(lambda: state.services.visual_vector(data, given.name))
    hits = await run_in_threadpool(
        lambda: state.services.search.similar(
            who.workspace_id,
            vector=vector,
            filters=filters,
            limit=limit,
            offset=offset,
            min_score=min_score,
        )
    )
    return _page(state, who.workspace_id, hits or [], limit, offset)


@router.get("/v1/duplicates")
async def duplicates(state: State, who: Reader) -> dict[str, Any]:
    """Exact (same bytes, several posts), near (same photo edited) and similar (same scene) groups."""
    return await run_in_threadpool(state.services.search.duplicates, who.workspace_id)


@router.get("/v1/clusters")
async def clusters(
    state: State, who: Reader, min_size: Annotated[int, Query(ge=2, le=1000)] = 3
) -> dict[str, Any]:
    """Visual clusters of the workspace, named from their members' labels, and the outliers."""
    return await run_in_threadpool(state.services.search.clusters, who.workspace_id, min_size)


@router.post("/v1/index/rebuild")
async def rebuild(state: State, who: Admin) -> dict[str, Any]:
    """Rebuild the workspace's vector indexes from the stored embeddings."""
    counts = await run_in_threadpool(state.services.search.rebuild, who.workspace_id)
    return {"rebuilt": counts}
