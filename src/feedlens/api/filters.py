"""The metadata filters shared by GET /v1/images and the search endpoints, as one dependency."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query

from feedlens.storage.repositories import ImageFilter


def image_filter(
    label: Annotated[str | None, Query(max_length=256, description="label or WordNet concept")] = None,
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
    return ImageFilter(
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


Filters = Annotated[ImageFilter, Depends(image_filter)]
