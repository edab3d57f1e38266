"""Queries behind audience insights (services/insights): sentiment rows, posts grouped by brand, hashtag
or category with their engagement and sentiment, places, alert rules, alerts and engagements.

Posts are dated as the trends date them (storage/analytics.py): by `created_at`, else by their earliest
image's ingest time; the window is applied in SQL, bucketing happens in the services.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Subquery, and_, delete, exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feedlens.storage.analytics import as_utc
from feedlens.storage.insights_tables import (
    InsightImage,
    InsightPlace,
    InsightPost,
)
from feedlens.storage.repositories import hidden_by_review
from feedlens.storage.tables import Analysis, Facet, Hashtag, Image, Post, PostImage

# where brand and category facets come from (storage/facets.py)
FACET_OF = {"brand": ("brands", "brand"), "category": ("categories", "category")}
READ_BY_SENTIMENT = ("text", "faces")  # the analyzers an image's sentiment reads


@dataclass(frozen=True, slots=True)
class PostRow:
    """One post carrying a value (a brand, hashtag or category; "" when not grouped), through one image."""

    post: int
    value: str
    image_id: str
    when: datetime
    author: str | None
    likes: int | None
    comments: int | None
    shares: int | None
    score: float | None
    label: str | None

    @property
    def engagement(self) -> int:
        return (self.likes or 0) + (self.comments or 0) + (self.shares or 0)


def upsert(session: Session, table: Any, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """INSERT ... ON CONFLICT DO UPDATE on SQLite and PostgreSQL: concurrent refreshes never collide."""
    if not rows:
        return
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(table).values(list(rows))
    updates = {c: statement.excluded[c] for c in rows[0] if c not in keys}
    session.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=updates))


# -- sentiment ---------------------------------------------------------------------------------------------
def stale_images(session: Session, workspace: int, version: str, limit: int) -> list[str]:
    """Images without a sentiment row at `version`, or analysed by text or faces since it was written."""
    newer = exists().where(
        Analysis.image_id == Image.id,
        Analysis.analyzer.in_(READ_BY_SENTIMENT),
        Analysis.created_at > InsightImage.updated_at,
    )
    query = (
        select(Image.id)
        .outerjoin(InsightImage, InsightImage.image_id == Image.id)
        .where(
            Image.workspace_id == workspace,
            or_(InsightImage.image_id.is_(None), InsightImage.version != version, newer),
        )
        .order_by(Image.created_at, Image.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def unscanned_images(session: Session, workspace: int, limit: int) -> list[tuple[str, str]]:
    """(image id, blob) of images whose stored copy was not yet read for a location."""
    query = (
        select(Image.id, Image.blob)
        .join(InsightImage, InsightImage.image_id == Image.id)
        .where(Image.workspace_id == workspace, InsightImage.places_scanned.is_(False))
        .order_by(Image.id)
        .limit(limit)
    )
    return [(i, b) for i, b in session.execute(query)]


def posts_of_images(session: Session, image_ids: Sequence[str]) -> list[int]:
    if not image_ids:
        return []
    return sorted(set(session.scalars(select(PostImage.post_pk).where(PostImage.image_id.in_(image_ids)))))


def stale_posts(session: Session, workspace: int, version: str, limit: int) -> list[int]:
    """Posts without a sentiment row at `version`, or with an image whose row is newer than theirs."""
    newer = exists().where(
        PostImage.post_pk == Post.id,
        InsightImage.image_id == PostImage.image_id,
        InsightImage.updated_at > InsightPost.updated_at,
    )
    query = (
        select(Post.id)
        .outerjoin(InsightPost, InsightPost.post_pk == Post.id)
        .where(
            Post.workspace_id == workspace,
            or_(InsightPost.post_pk.is_(None), InsightPost.version != version, newer),
        )
        .order_by(Post.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def image_parts(session: Session, post_pks: Sequence[int]) -> dict[int, list[InsightImage]]:
    """post -> the sentiment rows of its images."""
    out: dict[int, list[InsightImage]] = {p: [] for p in post_pks}
    if not post_pks:
        return out
    rows = session.execute(
        select(PostImage.post_pk, InsightImage)
        .join(InsightImage, InsightImage.image_id == PostImage.image_id)
        .where(PostImage.post_pk.in_(post_pks))
    )
    for post, row in rows:
        out[post].append(row)
    return out


def image_sentiments(session: Session, workspace: int, image_ids: Sequence[str]) -> dict[str, InsightImage]:
    if not image_ids:
        return {}
    rows = session.scalars(
        select(InsightImage).where(
            InsightImage.workspace_id == workspace, InsightImage.image_id.in_(list(image_ids))
        )
    )
    return {row.image_id: row for row in rows}


def _first_seen() -> Subquery:
    """post -> its earliest image's ingest time (what dates a post without created_at)."""
    return (
        select(PostImage.post_pk, func.min(Image.created_at).label("first_seen"))
        .join(Image, Image.id == PostImage.image_id)
        .group_by(PostImage.post_pk)
        .subquery()
    )


def _posts_query(
    workspace: int,
    value: ColumnElement[Any] | None,
    since: datetime | None,
    until: datetime | None,
    hide_unreviewed: bool,
) -> tuple[Select[Any], Subquery]:
    first = _first_seen()
    when = func.coalesce(Post.created_at, first.c.first_seen)
    columns: list[Any] = [
        Post.id,
        PostImage.image_id,
        Post.created_at,
        first.c.first_seen,
        Post.author,
        Post.likes,
        Post.comments,
        Post.shares,
        InsightPost.score,
        InsightPost.label,
    ]
    query = (
        select(*columns, value if value is not None else Post.platform)
        .join(PostImage, PostImage.post_pk == Post.id)
        .join(Image, Image.id == PostImage.image_id)
        .join(first, first.c.post_pk == Post.id)
        .outerjoin(InsightPost, InsightPost.post_pk == Post.id)
        .where(Post.workspace_id == workspace, Image.workspace_id == workspace)
    )
    if hide_unreviewed:
        query = query.where(~hidden_by_review())
    if since is not None:
        query = query.where(when >= since)
    if until is not None:
        query = query.where(when < until)
    return query, first


def post_rows(
    session: Session,
    workspace: int,
    kind: str | None,
    value: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    hide_unreviewed: bool = False,
    author: str | None = None,
) -> Iterator[PostRow]:
    """Every (post, value, image) of the workspace's posts dated in [since, until): grouped by a brand or
    category its image shows, or a hashtag it carries (`kind`; one value when `value` is given), or not
    grouped (`kind` None: value ""). `author` keeps one author's posts (case-insensitive)."""
    column: Any = None
    if kind in FACET_OF:
        column = Facet.value
    elif kind == "hashtag":
        column = Hashtag.tag
    query, _ = _posts_query(workspace, column, since, until, hide_unreviewed)
    if kind in FACET_OF:
        analyzer, facet = FACET_OF[kind]
        query = query.join(Facet, and_(Facet.image_id == Image.id, Facet.analyzer == analyzer))
        query = query.where(Facet.kind == facet)
    elif kind == "hashtag":
        query = query.join(Hashtag, Hashtag.post_pk == Post.id)
    if kind is not None and value is not None:
        assert column is not None
        query = query.where(column == value.lower().lstrip("#"))
    if author is not None:
        query = query.where(func.lower(Post.author) == author.lower().lstrip("@"))
    seen: set[tuple[int, str, str]] = set()
    for (
        post,
        image_id,
        created,
        first,
        who,
        likes,
        comments,
        shares,
        score,
        label,
        grouped,
    ) in session.execute(query):
        group = str(grouped) if kind is not None else ""
        if (post, group, image_id) in seen:  # a brand found twice in one image (logo and caption)
            continue
        seen.add((post, group, image_id))
        when = as_utc(created or first)
        yield PostRow(post, group, image_id, when, who, likes, comments, shares, score, label)


def post_details(session: Session, post_pks: Sequence[int]) -> dict[int, Post]:
    if not post_pks:
        return {}
    return {p.id: p for p in session.scalars(select(Post).where(Post.id.in_(list(post_pks))))}


def post_sentiments(session: Session, post_pks: Sequence[int]) -> dict[int, InsightPost]:
    if not post_pks:
        return {}
    rows = session.scalars(select(InsightPost).where(InsightPost.post_pk.in_(list(post_pks))))
    return {row.post_pk: row for row in rows}


# -- places ------------------------------------------------------------------------------------------------
def place_rows(session: Session, workspace: int) -> list[InsightPlace]:
    rows = session.scalars(select(InsightPlace).where(InsightPlace.workspace_id == workspace))
    return list(rows)


def forget_places(session: Session, workspace: int) -> int:
    """Delete every kept location of the workspace and mark its images unread; how many were deleted."""
    count = session.scalar(
        select(func.count()).select_from(InsightPlace).where(InsightPlace.workspace_id == workspace)
    )
    session.execute(delete(InsightPlace).where(InsightPlace.workspace_id == workspace))
    session.execute(
        update(InsightImage).where(InsightImage.workspace_id == workspace).values(places_scanned=False)
    )
    return int(count or 0)


def find_posts(
    session: Session, workspace: int, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """(platform, post id) -> post pk for the workspace's posts among `keys`."""
    ids = sorted({post_id for _, post_id in keys})
    if not ids:
        return {}
    rows = session.execute(
        select(Post.platform, Post.post_id, Post.id).where(
            Post.workspace_id == workspace, Post.post_id.in_(ids)
        )
    )
    return {(platform, post_id): pk for platform, post_id, pk in rows}


def images_of_posts(session: Session, post_pks: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {p: [] for p in post_pks}
    if not post_pks:
        return out
    rows = session.execute(
        select(PostImage.post_pk, PostImage.image_id)
        .where(PostImage.post_pk.in_(list(post_pks)))
        .order_by(PostImage.position)
    )
    for post, image_id in rows:
        out[post].append(image_id)
    return out


# -- listings ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SentimentQuery:
    """What a sentiment listing keeps and how it is ordered: `order` is negative (most negative first),
    positive or newest."""

    label: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    order: str = "negative"
    limit: int = 50
    offset: int = 0


def _score_conditions(row: Any, q: SentimentQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if q.label:
        where.append(row.label == q.label)
    if q.min_score is not None:
        where.append(row.score >= q.min_score)
    if q.max_score is not None:
        where.append(row.score <= q.max_score)
    return where


def _ordered(query: Any, row: Any, newest: Any, q: SentimentQuery) -> Any:
    # NULL scores (nothing to read) go last in both directions, on SQLite and PostgreSQL alike
    nulls_last = row.score.is_(None)
    if q.order == "positive":
        return query.order_by(nulls_last, row.score.desc(), newest.desc())
    if q.order == "newest":
        return query.order_by(newest.desc())
    return query.order_by(nulls_last, row.score.asc(), newest.desc())


def list_images(
    session: Session, workspace: int, where: Sequence[ColumnElement[bool]], q: SentimentQuery
) -> tuple[list[tuple[Image, InsightImage]], int]:
    """Images with their sentiment, filtered by `where` (repositories.filter_conditions) and `q`: a page
    and the total count."""
    conditions = [Image.workspace_id == workspace, *where, *_score_conditions(InsightImage, q)]
    base = (
        select(Image, InsightImage).join(InsightImage, InsightImage.image_id == Image.id).where(*conditions)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    query = _ordered(base, InsightImage, Image.created_at, q).offset(q.offset).limit(q.limit)
    return [(i, s) for i, s in session.execute(query)], int(total)


def list_posts(
    session: Session,
    workspace: int,
    q: SentimentQuery,
    image_where: Sequence[ColumnElement[bool]] = (),
    author: str | None = None,
    platform: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[tuple[Post, InsightPost]], int]:
    """Posts with their sentiment: `image_where` must hold for one of the post's images (a brand shown,
    a category); dated by created_at, else their first image's ingest time."""
    first = _first_seen()
    when = func.coalesce(Post.created_at, first.c.first_seen)
    conditions = [Post.workspace_id == workspace, *_score_conditions(InsightPost, q)]
    if image_where:
        # an uncorrelated IN, run once: as a correlated EXISTS, SQLite scanned the workspace's images for
        # every post (60 s for 3,000 posts; docs/benchmarks.md "insights")
        matching = select(PostImage.post_pk).join(Image, Image.id == PostImage.image_id).where(*image_where)
        conditions.append(Post.id.in_(matching))
    if author:
        conditions.append(func.lower(Post.author) == author.lower().lstrip("@"))
    if platform:
        conditions.append(Post.platform == platform.lower())
    if since is not None:
        conditions.append(when >= since)
    if until is not None:
        conditions.append(when < until)
    base = (
        select(Post, InsightPost)
        .join(InsightPost, InsightPost.post_pk == Post.id)
        .join(first, first.c.post_pk == Post.id)
        .where(*conditions)
    )
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    query = _ordered(base, InsightPost, when, q).offset(q.offset).limit(q.limit)
    return [(p, s) for p, s in session.execute(query)], int(total)


def image_dates(session: Session, workspace: int, image_ids: Sequence[str]) -> dict[str, datetime]:
    """image id -> its date: its earliest post's created_at, else its ingest time (as trends date it)."""
    if not image_ids:
        return {}
    posted = (
        select(PostImage.image_id, func.min(Post.created_at).label("posted"))
        .join(Post, Post.id == PostImage.post_pk)
        .where(PostImage.image_id.in_(list(image_ids)))
        .group_by(PostImage.image_id)
        .subquery()
    )
    rows = session.execute(
        select(Image.id, Image.created_at, posted.c.posted)
        .outerjoin(posted, posted.c.image_id == Image.id)
        .where(Image.workspace_id == workspace, Image.id.in_(list(image_ids)))
    )
    return {i: as_utc(p or c) for i, c, p in rows}
