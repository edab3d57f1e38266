"""Audience insights (docs/insights.md): post sentiment, brand monitoring, influencers, authors and places.
Alerts and recommendations are in insights_alerts.py and insights_followers.py, included here, so the app
registers this one router."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from feedlens.api.deps import Reader, State, Writer
from feedlens.api.filters import Filters, TimeWindow
from feedlens.api.problems import Problem
from feedlens.api.routers import insights_alerts, insights_followers
from feedlens.services.analytics import Bucket, Table, Window
from feedlens.services.insights.places import Place
from feedlens.services.insights.service import SentimentQuery

router = APIRouter(tags=["insights"])
router.include_router(insights_alerts.router)
router.include_router(insights_followers.router)

# `mood`, not `label` or `sentiment`: those are GET /v1/images filters (an everyday label; faces' sentiment)
Mood = Annotated[
    str | None,
    Query(pattern="^(positive|neutral|negative|unknown)$", description="the sentiment label to keep"),
]
Score = Annotated[float | None, Query(ge=-1, le=1)]
Kind = Annotated[
    str | None, Query(pattern="^(brand|hashtag|category)$", description="what to group posts by")
]
Value = Annotated[str | None, Query(max_length=256, description="one brand, hashtag or category")]
Format = Annotated[str, Query(alias="format", pattern="^(json|csv)$", description="json (default) or csv")]


class Parts(BaseModel):
    caption: float | None = Field(description="VADER compound of the caption and hashtags, -1..1")
    image_text: float | None = Field(description="VADER compound of the text read in the image(s)")
    faces: float | None = Field(description="P(positive) - P(negative) of the faces' emotions")


class ImageSentiment(BaseModel):
    id: str
    source: str | None = None
    created_at: str | None = None
    score: float | None = Field(description="the weighted mean of the parts present; null: nothing to read")
    label: str
    parts: Parts


class PostSentiment(BaseModel):
    platform: str
    post_id: str
    author: str | None
    caption: str | None
    created_at: str | None
    likes: int | None
    comments: int | None
    shares: int | None
    url: str | None
    images: list[str]
    score: float | None
    label: str
    parts: Parts


class ImagePage(BaseModel):
    total: int
    offset: int
    items: list[ImageSentiment]


class PostPage(BaseModel):
    total: int
    offset: int
    items: list[PostSentiment]


class TableOut(BaseModel):
    """A table: named columns and rows (docs/insights.md names every column)."""

    metric: str
    bucket: str
    since: str | None
    until: str | None
    columns: list[str]
    rows: list[dict[str, Any]]


class AuthorOut(BaseModel):
    author: str
    summary: dict[str, Any]
    brands: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    hashtags: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    posts: list[PostSentiment]


class PlaceRow(BaseModel):
    place: str
    lat: float | None = Field(description="the grid cell's latitude (rounded); null for a name alone")
    lon: float | None
    images: int
    posts: int
    engagement: int
    sentiment: float | None
    negative_share: float | None
    sources: list[str]


class PlacesOut(BaseModel):
    kept: bool = Field(description="whether locations are kept (FEEDLENS_STORE_METADATA=all)")
    policy: str
    note: str | None
    precision: int
    places: list[PlaceRow]


class PlaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    platform: str = Field("", max_length=32)
    post_id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(None, max_length=128)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class PlacesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    places: list[PlaceIn] = Field(max_length=10_000)


def sentiment_query(
    mood: Mood = None,
    min_score: Score = None,
    max_score: Score = None,
    order: Annotated[str, Query(pattern="^(negative|positive|newest)$")] = "negative",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> SentimentQuery:
    return SentimentQuery(mood, min_score, max_score, order, limit, offset)


Sentiments = Annotated[SentimentQuery, Depends(sentiment_query)]


def window(
    span: TimeWindow,
    bucket: Annotated[Bucket, Query(description="day or week (ISO weeks, named by their Monday; UTC)")] = (
        Bucket.WEEK
    ),
) -> Window:
    return Window(since=span[0], until=span[1], bucket=bucket)


Span = Annotated[Window, Depends(window)]


def _table(name: str, table: Table, span: Window, fmt: str) -> Response | dict[str, Any]:
    if fmt == "csv":
        return Response(
            table.to_csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="feedlens-{name}.csv"'},
        )
    return table.to_json(name, span)


@router.get("/v1/insights/sentiment/images", response_model=ImagePage)
async def image_sentiments(state: State, who: Reader, filters: Filters, query: Sentiments) -> dict[str, Any]:
    """Images with their sentiment and its parts, most negative first (or `order`), filtered like
    GET /v1/images (brand, category, hashtag, author ...) and by `mood` (the label) and score."""
    insights = state.services.insights
    return await run_in_threadpool(insights.images, who.workspace_id, filters, query)


@router.get("/v1/insights/sentiment/images/{image_id}", response_model=ImageSentiment)
async def image_sentiment(image_id: str, state: State, who: Reader) -> dict[str, Any]:
    found = await run_in_threadpool(state.services.insights.image, who.workspace_id, image_id)
    if found is None:
        raise Problem(404, "not_found", f"no image {image_id!r} in this workspace")
    return found


@router.get("/v1/insights/sentiment/posts", response_model=PostPage)
async def post_sentiments(state: State, who: Reader, filters: Filters, query: Sentiments) -> dict[str, Any]:
    """Posts with their sentiment: `author`, `platform`, `posted_since` and `posted_until` apply to the
    post, the image filters (brand, category, label ...) to any of its images."""
    insights = state.services.insights
    return await run_in_threadpool(insights.posts, who.workspace_id, query, filters)


@router.get("/v1/insights/monitor", response_model=TableOut, responses={200: {"content": {"text/csv": {}}}})
async def monitor(
    state: State,
    who: Reader,
    span: Span,
    kind: Kind = None,
    value: Value = None,
    top: Annotated[int, Query(ge=1, le=100)] = 10,
    fmt: Format = "json",
) -> Response | dict[str, Any]:
    """Per period and brand, hashtag or category (one `value`, or the `top` by posts; no `kind`: all
    posts): posts, images, likes, comments, shares, engagement, mean sentiment, positive, neutral and
    negative posts, and the negative share."""
    audience = state.services.insights.audience
    table = await run_in_threadpool(audience.monitor, who.workspace_id, kind, span, value, top)
    return _table(f"monitor-{kind or 'posts'}", table, span, fmt)


@router.get(
    "/v1/insights/influencers", response_model=TableOut, responses={200: {"content": {"text/csv": {}}}}
)
async def influencers(
    state: State,
    who: Reader,
    span: Span,
    kind: Kind = None,
    value: Value = None,
    order: Annotated[str, Query(pattern="^(engagement|posts)$")] = "engagement",
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    fmt: Format = "json",
) -> Response | dict[str, Any]:
    """Authors ranked by the engagement of their posts about a brand, hashtag or category (all their
    posts without one), or by how many of their posts carry it (`order=posts`), with their sentiment."""
    if (kind is None) != (value is None):
        raise Problem(422, "invalid_request", "give `kind` and `value` together, or neither")
    audience = state.services.insights.audience
    table = await run_in_threadpool(audience.influencers, who.workspace_id, span, kind, value, order, limit)
    return _table("influencers", table, span, fmt)


@router.get("/v1/insights/authors/{author}", response_model=AuthorOut)
async def author(author: str, state: State, who: Reader, span: Span) -> dict[str, Any]:
    """An author's page: totals and sentiment, the brands, categories and hashtags their posts carry, a
    timeline, and their latest posts."""
    audience = state.services.insights.audience
    found = await run_in_threadpool(audience.author, who.workspace_id, author, span)
    if found is None:
        raise Problem(404, "not_found", f"no post by {author!r} in this workspace")
    return found


Precision = Annotated[int | None, Query(ge=0, le=3, description="decimal places of the grid (1: ~11 km)")]


@router.get("/v1/insights/places", response_model=PlacesOut)
async def places(state: State, who: Reader, span: Span, precision: Precision = None) -> dict[str, Any]:
    """Places (grid cells of kept locations, or names), with images, posts, engagement and sentiment.
    Empty, with `kept: false`, unless FEEDLENS_STORE_METADATA=all."""
    service = state.services.insights.places
    return await run_in_threadpool(service.table, who.workspace_id, span, precision)


@router.get("/v1/insights/places/images")
async def place_images(
    state: State,
    who: Reader,
    span: Span,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    name: Annotated[str | None, Query(max_length=128)] = None,
    precision: Precision = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 60,
) -> dict[str, Any]:
    """The images of one place: the grid cell holding (`lat`, `lon`), or a `name` without coordinates."""
    if (lat is None) != (lon is None) or (lat is None and not name):
        raise Problem(422, "invalid_request", "give `lat` and `lon`, or a `name`")
    service = state.services.insights.places
    items = await run_in_threadpool(
        lambda: service.images(who.workspace_id, span, lat, lon, name, precision, limit)
    )
    return {"items": items}


@router.post("/v1/insights/places")
async def add_places(body: PlacesIn, state: State, who: Writer) -> dict[str, Any]:
    """Keep posts' locations (a name, coordinates or both) for all their images: 409 `places_off`
    unless FEEDLENS_STORE_METADATA=all. Posts the workspace does not have are counted."""
    try:
        records = [(p.platform.lower(), p.post_id, Place(p.name, p.lat, p.lon)) for p in body.places]
    except ValueError as exc:
        raise Problem(422, "invalid_request", str(exc)) from None
    return await run_in_threadpool(state.services.insights.places.add, who.workspace_id, records)


@router.delete("/v1/insights/places")
async def forget_places(state: State, who: Writer) -> dict[str, int]:
    """Delete every kept location of the workspace."""
    return {"deleted": await run_in_threadpool(state.services.insights.places.forget, who.workspace_id)}


@router.post("/v1/insights/refresh")
async def refresh(state: State, who: Writer) -> dict[str, int]:
    """Bring every image's and post's sentiment up to date now (reads do it too; after a change of
    weights this can take a while on a large library)."""
    return await run_in_threadpool(state.services.insights.refresh, who.workspace_id)
