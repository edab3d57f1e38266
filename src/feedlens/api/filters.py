"""The metadata filters shared by GET /v1/images and the search endpoints, as one dependency."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request

from feedlens.api.problems import Problem
from feedlens.core.filters import ImageFilter


def image_filter(
    request: Request,
    label: Annotated[
        str | None, Query(max_length=256, description='an everyday label or a word for one ("cat", "kitten")')
    ] = None,
    label_min_score: Annotated[float, Query(ge=0, le=1)] = 0.1,
    category: Annotated[
        str | None,
        Query(max_length=64, description="an assigned category of the workspace's taxonomy, or other"),
    ] = None,
    brand: Annotated[str | None, Query(max_length=128, description="a registered brand mentioned")] = None,
    safety: Annotated[str | None, Query(pattern="^(safe|suggestive|explicit)$")] = None,
    emotion: Annotated[str | None, Query(max_length=32)] = None,
    sentiment: Annotated[str | None, Query(pattern="^(positive|neutral|negative)$")] = None,
    colour: Annotated[str | None, Query(max_length=32)] = None,
    has_text: bool | None = None,
    min_faces: Annotated[int | None, Query(ge=0, le=1000)] = None,
    author: Annotated[str | None, Query(max_length=256)] = None,
    hashtag: Annotated[str | None, Query(max_length=256)] = None,
    platform: Annotated[str | None, Query(max_length=32)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    posted_since: datetime | None = None,
    posted_until: datetime | None = None,
) -> ImageFilter:
    plain = ImageFilter(
        label=label,
        label_min_score=label_min_score,
        category=category,
        brand=brand,
        safety=safety,
        emotion=emotion,
        sentiment=sentiment,
        colour=colour,
        has_text=has_text,
        min_faces=min_faces,
        author=author,
        hashtag=hashtag,
        platform=platform,
        since=since,
        until=until,
        posted_since=posted_since,
        posted_until=posted_until,
    )
    # what the label word means (its everyday labels and aliases) is the services' to say
    resolved: ImageFilter = request.app.state.feedlens.services.resolve_filters(plain)
    return resolved


Filters = Annotated[ImageFilter, Depends(image_filter)]


def _utc(value: datetime | None) -> datetime | None:
    """Naive means UTC; the count queries compare aware datetimes."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def time_window(
    since: Annotated[datetime | None, Query(description="from this time (naive means UTC)")] = None,
    until: Annotated[datetime | None, Query(description="before this time")] = None,
) -> tuple[datetime | None, datetime | None]:
    """[since, until) in UTC for the per-day count endpoints; 422 when it is empty."""
    start, end = _utc(since), _utc(until)
    if start is not None and end is not None and start >= end:
        raise Problem(422, "invalid_request", "`since` must be before `until`")
    return start, end


TimeWindow = Annotated[tuple[datetime | None, datetime | None], Depends(time_window)]
