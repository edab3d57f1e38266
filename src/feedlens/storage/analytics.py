"""Row queries behind the analytics endpoints: facets, posts and hashtags of one workspace, each with the
time it is dated by. The window is applied in SQL (a plain comparison of UTC times, the same on SQLite and
PostgreSQL); bucketing into days and weeks happens in the service, in Python, because the two databases
truncate timestamps differently (the reason `categories.facet_counts` counts in Python too)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from sqlalchemy import Subquery, func, select
from sqlalchemy.orm import Session

from feedlens.storage.repositories import hidden_by_review
from feedlens.storage.tables import Brand, Facet, Hashtag, Image, Post, PostImage

# (image id, facet value, when) and (post pk, group, likes, comments, shares, when)
FacetRow = tuple[str, str, datetime]
EngagementRow = tuple[int, str, int | None, int | None, int | None, datetime]
HashtagRow = tuple[int, str, str, datetime]  # (post pk, tag, image id, when)


def as_utc(when: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _posted() -> Subquery:
    """image id -> its earliest post's created_at (NULL when no post of it has a time)."""
    return (
        select(PostImage.image_id, func.min(Post.created_at).label("posted"))
        .join(Post, Post.id == PostImage.post_pk)
        .group_by(PostImage.image_id)
        .subquery()
    )


def facet_rows(
    session: Session,
    workspace: int,
    analyzer: str,
    kind: str,
    min_score: float | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    hide_unreviewed: bool = False,
) -> Iterator[FacetRow]:
    """Every facet of one analyzer and kind in the workspace dated in [since, until), with the image's
    date: its earliest post's created_at or, without one, its ingest time (as GET /v1/categories/counts
    dates images). Times are aware UTC."""
    posted = _posted()
    when = func.coalesce(posted.c.posted, Image.created_at)
    query = (
        select(Facet.image_id, Facet.value, Image.created_at, posted.c.posted)
        .join(Image, Image.id == Facet.image_id)
        .outerjoin(posted, posted.c.image_id == Image.id)
        .where(Image.workspace_id == workspace, Facet.analyzer == analyzer, Facet.kind == kind)
    )
    if min_score is not None:
        query = query.where(Facet.score >= min_score)
    if hide_unreviewed:
        query = query.where(~hidden_by_review())
    if since is not None:
        query = query.where(when >= since)
    if until is not None:
        query = query.where(when < until)
    for image_id, value, created, posted_at in session.execute(query):
        yield image_id, value, as_utc(posted_at or created)


def engagement_rows(
    session: Session,
    workspace: int,
    analyzer: str,
    kind: str,
    since: datetime | None = None,
    until: datetime | None = None,
    hide_unreviewed: bool = False,
) -> Iterator[EngagementRow]:
    """(post, facet value, likes, comments, shares, when) for every post dated in [since, until) showing an
    image with that facet; a post is dated by its created_at or, without one, by its earliest such image's
    ingest time. A post whose carousel shows the value twice appears once."""
    when = func.coalesce(Post.created_at, func.min(Image.created_at))
    query = (
        select(
            Post.id,
            Facet.value,
            Post.likes,
            Post.comments,
            Post.shares,
            Post.created_at,
            func.min(Image.created_at),
        )
        .join(PostImage, PostImage.post_pk == Post.id)
        .join(Image, Image.id == PostImage.image_id)
        .join(Facet, Facet.image_id == Image.id)
        .where(
            Post.workspace_id == workspace,
            Image.workspace_id == workspace,
            Facet.analyzer == analyzer,
            Facet.kind == kind,
        )
        .group_by(Post.id, Facet.value, Post.likes, Post.comments, Post.shares, Post.created_at)
    )
    if hide_unreviewed:
        query = query.where(~hidden_by_review())
    if since is not None:
        query = query.having(when >= since)
    if until is not None:
        query = query.having(when < until)
    for post, value, likes, comments, shares, created, ingested in session.execute(query):
        yield post, value, likes, comments, shares, as_utc(created or ingested)


def hashtag_rows(session: Session, workspace: int, hide_unreviewed: bool = False) -> Iterator[HashtagRow]:
    """(post, tag, image, when) for every hashtag of every post with an image in the workspace. Not
    windowed here: a post without a time is dated by its earliest image, which a row filter would miss."""
    query = (
        select(Post.id, Hashtag.tag, Image.id, Post.created_at, Image.created_at)
        .join(Hashtag, Hashtag.post_pk == Post.id)
        .join(PostImage, PostImage.post_pk == Post.id)
        .join(Image, Image.id == PostImage.image_id)
        .where(Post.workspace_id == workspace, Image.workspace_id == workspace)
    )
    if hide_unreviewed:
        query = query.where(~hidden_by_review())
    for post, tag, image_id, created, ingested in session.execute(query):
        yield post, tag, image_id, as_utc(created or ingested)


def brand_names(session: Session, workspace: int) -> dict[str, str]:
    """Lower-cased brand name (as facets hold it) -> the registered spelling."""
    rows = session.scalars(select(Brand.name).where(Brand.workspace_id == workspace))
    return {name.lower(): name for name in rows}
