"""Trends of the workspace (docs/api.md#analytics): counts over time, engagement, hashtags, unsafe share;
JSON by default, `format=csv` for a spreadsheet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from feedlens.api.deps import Reader, State
from feedlens.api.filters import TimeWindow
from feedlens.services.analytics import Bucket, GroupBy, Table, Window

router = APIRouter(tags=["analytics"])

Format = Annotated[str, Query(alias="format", pattern="^(json|csv)$", description="json (default) or csv")]
Top = Annotated[int, Query(ge=1, le=100, description="series for the values with the most images")]


def window(
    span: TimeWindow,
    bucket: Annotated[Bucket, Query(description="day or week (ISO weeks, named by their Monday; UTC)")] = (
        Bucket.DAY
    ),
) -> Window:
    """[since, until) in UTC, dated by the image's earliest post or else its ingest time; 422 if empty."""
    return Window(since=span[0], until=span[1], bucket=bucket)


Span = Annotated[Window, Depends(window)]


async def _answer(name: str, span: Window, fmt: str, compute: Callable[[], Table]) -> Response:
    table = await run_in_threadpool(compute)
    if fmt == "csv":
        return Response(
            table.to_csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="feedlens-{name}.csv"'},
        )
    return JSONResponse(table.to_json(name, span))


CSV_DOC: dict[str, Any] = {
    "responses": {"200": {"content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}}}}
}


@router.get("/v1/analytics/categories", response_class=Response, openapi_extra=CSV_DOC)
async def categories(state: State, who: Reader, span: Span, top: Top = 10, fmt: Format = "json") -> Response:
    """Images per category and period (columns period, category, images)."""
    return await _answer(
        "categories", span, fmt, lambda: state.services.analytics.categories(who.workspace_id, span, top)
    )


@router.get("/v1/analytics/labels", response_class=Response, openapi_extra=CSV_DOC)
async def labels(
    state: State,
    who: Reader,
    span: Span,
    kind: Annotated[
        str,
        Query(
            pattern="^(headline|label|class)$",
            description="headline: each image's leading label; label: all its labels; class: raw ImageNet",
        ),
    ] = "headline",
    min_score: Annotated[float, Query(ge=0, le=1)] = 0.1,
    top: Top = 10,
    fmt: Format = "json",
) -> Response:
    """Images per everyday label with score >= `min_score`, and period."""
    return await _answer(
        "labels",
        span,
        fmt,
        lambda: state.services.analytics.labels(who.workspace_id, span, kind, min_score, top),
    )


@router.get("/v1/analytics/brands", response_class=Response, openapi_extra=CSV_DOC)
async def brands(state: State, who: Reader, span: Span, top: Top = 10, fmt: Format = "json") -> Response:
    """Images mentioning each registered brand (logo, image text or caption), per period."""
    return await _answer(
        "brands", span, fmt, lambda: state.services.analytics.brands(who.workspace_id, span, top)
    )


@router.get("/v1/analytics/sentiment", response_class=Response, openapi_extra=CSV_DOC)
async def sentiment(state: State, who: Reader, span: Span, fmt: Format = "json") -> Response:
    """Images with faces per dominant emotion sentiment (positive, neutral, negative) and period."""
    return await _answer(
        "sentiment", span, fmt, lambda: state.services.analytics.sentiment(who.workspace_id, span)
    )


@router.get("/v1/analytics/safety", response_class=Response, openapi_extra=CSV_DOC)
async def safety(state: State, who: Reader, span: Span, fmt: Format = "json") -> Response:
    """Per period: images with a verdict, safe / suggestive / explicit counts, and the unsafe share."""
    return await _answer("safety", span, fmt, lambda: state.services.analytics.safety(who.workspace_id, span))


@router.get("/v1/analytics/engagement", response_class=Response, openapi_extra=CSV_DOC)
async def engagement(
    state: State,
    who: Reader,
    span: Span,
    by: Annotated[GroupBy, Query(description="category or brand")] = GroupBy.CATEGORY,
    top: Annotated[int, Query(ge=1, le=100)] = 20,
    fmt: Format = "json",
) -> Response:
    """Posts, likes, comments and shares (sums and means) per category or brand over the window."""
    return await _answer(
        f"engagement-{by.value}",
        span,
        fmt,
        lambda: state.services.analytics.engagement(who.workspace_id, span, by, top),
    )


@router.get("/v1/analytics/hashtags", response_class=Response, openapi_extra=CSV_DOC)
async def hashtags(
    state: State,
    who: Reader,
    span: Span,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    fmt: Format = "json",
) -> Response:
    """The most used hashtags of the workspace's posts in the window: posts and images per tag."""
    return await _answer(
        "hashtags", span, fmt, lambda: state.services.analytics.hashtags(who.workspace_id, span, limit)
    )
