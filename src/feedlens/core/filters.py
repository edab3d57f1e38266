"""The metadata filters shared by listings, search and analytics (GET /v1/images, feedlens search ...)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ImageFilter:
    """Filters of GET /v1/images; all given ones must hold."""

    label: str | None = None  # an everyday label, or a word for one ("kitten" finds cats, "animal" too)
    # what `label` means, resolved by the services (Services.resolve_filters): label ids and class names
    label_terms: tuple[str, ...] = ()
    label_min_score: float = 0.1
    category: str | None = None  # an assigned category of the workspace's taxonomy, or "other"
    brand: str | None = None  # a registered brand mentioned (logo, text or caption)
    safety: str | None = None
    emotion: str | None = None
    sentiment: str | None = None
    colour: str | None = None
    has_text: bool | None = None
    min_faces: int | None = None
    author: str | None = None
    hashtag: str | None = None
    platform: str | None = None
    since: datetime | None = None  # ingested at or after
    until: datetime | None = None
    posted_since: datetime | None = None
    posted_until: datetime | None = None
    hide_unreviewed: bool = False  # leave out images waiting for moderation review, or rejected by it
