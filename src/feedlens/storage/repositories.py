"""Queries and writes, one function per question, each taking the caller's session (its unit of work).

Every function that reads or writes a workspace's objects takes the workspace id and filters by it: an
object of another workspace is simply not found, never "forbidden".
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feedlens.core.filters import ImageFilter
from feedlens.storage.facets import facets_for
from feedlens.storage.tables import (
    HIDDEN_REVIEW_STATES,
    Analysis,
    Facet,
    Hashtag,
    Image,
    Post,
    PostImage,
    ReviewItem,
    Workspace,
    new_id,
)


def workspace_id(session: Session, name: str) -> int | None:
    return session.scalar(select(Workspace.id).where(Workspace.name == name))


def ensure_workspace(session: Session, name: str) -> int:
    found = workspace_id(session, name)
    if found is not None:
        return found
    workspace = Workspace(name=name)
    session.add(workspace)
    session.flush()
    return workspace.id


def images_by_sha(session: Session, workspace: int, sha256s: Iterable[str]) -> dict[str, str]:
    """sha256 -> image id for the given originals already in the workspace."""
    wanted = list(set(sha256s))
    if not wanted:
        return {}
    rows = session.execute(
        select(Image.sha256, Image.id).where(Image.workspace_id == workspace, Image.sha256.in_(wanted))
    )
    return {sha: image_id for sha, image_id in rows}


def insert_image(session: Session, **values: Any) -> tuple[str, bool]:
    """Insert an image row unless its (workspace, sha256) exists: (image id, created).

    INSERT ... ON CONFLICT DO NOTHING instead of a savepoint: with pysqlite a SAVEPOINT that opens the
    transaction becomes the outer one and its RELEASE would commit half a batch.
    """
    dialect_insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        dialect_insert(Image)
        .values(id=new_id(), **values)
        .on_conflict_do_nothing(index_elements=["workspace_id", "sha256"])
        .returning(Image.id)
    )
    created = session.scalar(statement)
    if created is not None:
        return created, True
    found = images_by_sha(session, values["workspace_id"], [values["sha256"]])
    return found[values["sha256"]], False


def add_analyses(
    session: Session, image_id: str, results: dict[str, dict[str, Any]], versions: dict[str, str]
) -> None:
    """Store results at their analyzer versions and make them the image's current facets."""
    for name, result in results.items():
        version = versions[name]
        session.execute(
            delete(Analysis).where(
                Analysis.image_id == image_id, Analysis.analyzer == name, Analysis.version == version
            )
        )
        session.add(Analysis(image_id=image_id, analyzer=name, version=version, result=result))
        session.execute(delete(Facet).where(Facet.image_id == image_id, Facet.analyzer == name))
        session.add_all(
            Facet(image_id=image_id, analyzer=name, kind=k, value=v, score=s)
            for k, v, s in facets_for(name, result)
        )


def add_first_analyses(
    session: Session, image_id: str, results: dict[str, dict[str, Any]], versions: dict[str, str]
) -> None:
    """`add_analyses` for an image inserted in this transaction: nothing to replace, so no DELETEs, and
    the rows go in as two multi-row INSERTs rather than ORM objects (ingest's per-image storing cost).
    Only for a new image: no loaded ORM object of it exists to go stale."""
    if not results:
        return
    session.execute(
        insert(Analysis),
        [
            {"image_id": image_id, "analyzer": n, "version": versions[n], "result": r}
            for n, r in results.items()
        ],
    )
    facets = [
        {"image_id": image_id, "analyzer": n, "kind": k, "value": v, "score": score}
        for n, r in results.items()
        for k, v, score in facets_for(n, r)
    ]
    if facets:
        session.execute(insert(Facet), facets)


def current_analyses(session: Session, image_ids: Sequence[str]) -> dict[str, dict[str, Analysis]]:
    """image id -> analyzer -> newest stored analysis."""
    out: dict[str, dict[str, Analysis]] = {i: {} for i in image_ids}
    if not image_ids:
        return out
    rows = session.scalars(
        select(Analysis)
        .where(Analysis.image_id.in_(image_ids))
        .order_by(Analysis.created_at.desc(), Analysis.id.desc())
    )
    for analysis in rows:
        out[analysis.image_id].setdefault(analysis.analyzer, analysis)
    return out


def _stale(workspace: int | None, analyzer: str, version: str) -> list[ColumnElement[bool]]:
    current = exists().where(
        Analysis.image_id == Image.id, Analysis.analyzer == analyzer, Analysis.version == version
    )
    return [~current] + ([Image.workspace_id == workspace] if workspace is not None else [])


def stale_images(
    session: Session,
    workspace: int | None,
    analyzer: str,
    version: str,
    limit: int,
    skip: Sequence[str] = (),
) -> list[Image]:
    """Images without a result of `analyzer` at `version` (never analysed by it, or by an older one)."""
    query = select(Image).where(*_stale(workspace, analyzer, version))
    if skip:
        query = query.where(Image.id.not_in(list(skip)))
    return list(session.scalars(query.order_by(Image.created_at, Image.id).limit(limit)))


def count_stale(session: Session, workspace: int | None, analyzer: str, version: str) -> int:
    query = select(func.count()).select_from(Image).where(*_stale(workspace, analyzer, version))
    return int(session.scalar(query) or 0)


def upsert_post(session: Session, workspace: int, fields: dict[str, Any], hashtags: Sequence[str]) -> int:
    """Insert or update a post by (platform, post id); a later export refreshes counts and caption."""
    post = session.scalar(
        select(Post).where(
            Post.workspace_id == workspace,
            Post.platform == fields["platform"],
            Post.post_id == fields["post_id"],
        )
    )
    if post is None:
        post = Post(workspace_id=workspace, **fields)
        session.add(post)
    else:
        for key, value in fields.items():
            setattr(post, key, value)
    # The column holds 256 characters; a longer "hashtag" is noise, and must not fail the whole post.
    tags = list(dict.fromkeys(tag[:256] for tag in hashtags))
    post.hashtags = tags
    session.flush()
    session.execute(delete(Hashtag).where(Hashtag.post_pk == post.id))
    session.add_all(Hashtag(post_pk=post.id, tag=tag) for tag in tags)
    return post.id


def link_post_image(session: Session, post_pk: int, image_id: str, position: int) -> None:
    if session.get(PostImage, (post_pk, image_id)) is None:
        session.add(PostImage(post_pk=post_pk, image_id=image_id, position=position))


def posts_of(session: Session, image_ids: Sequence[str]) -> dict[str, list[Post]]:
    out: dict[str, list[Post]] = {i: [] for i in image_ids}
    if not image_ids:
        return out
    rows = session.execute(
        select(PostImage.image_id, Post)
        .join(Post, Post.id == PostImage.post_pk)
        .where(PostImage.image_id.in_(image_ids))
        .order_by(Post.created_at)
    )
    for image_id, post in rows:
        out[image_id].append(post)
    return out


def get_image(session: Session, workspace: int, image_id: str) -> Image | None:
    return session.scalar(select(Image).where(Image.workspace_id == workspace, Image.id == image_id))


def get_images(session: Session, workspace: int, image_ids: Sequence[str]) -> list[Image]:
    """The workspace's images among `image_ids`, in one query (order not kept)."""
    if not image_ids:
        return []
    return list(
        session.scalars(select(Image).where(Image.workspace_id == workspace, Image.id.in_(list(image_ids))))
    )


def blob_in_use(session: Session, blob: str) -> bool:
    return (session.scalar(select(func.count()).select_from(Image).where(Image.blob == blob)) or 0) > 0


def orphaned_post_images(session: Session, workspace: int, author: str) -> tuple[list[int], list[str]]:
    """Posts by `author`, and the images linked only to those posts (not to anyone else's)."""
    posts = list(
        session.scalars(
            select(Post.id).where(Post.workspace_id == workspace, func.lower(Post.author) == author.lower())
        )
    )
    if not posts:
        return [], []
    linked = set(session.scalars(select(PostImage.image_id).where(PostImage.post_pk.in_(posts))))
    shared = set(
        session.scalars(
            select(PostImage.image_id).where(PostImage.image_id.in_(linked), PostImage.post_pk.not_in(posts))
        )
    )
    return posts, sorted(linked - shared)


def hidden_by_review() -> ColumnElement[bool]:
    """True for an image that FEEDLENS_REVIEW__HIDE_UNREVIEWED keeps out of sight (pending, escalated or
    rejected in the moderation review queue)."""
    return exists().where(ReviewItem.image_id == Image.id, ReviewItem.state.in_(HIDDEN_REVIEW_STATES))


def _utc(value: datetime) -> datetime:
    """Aware UTC (naive means UTC): SQLite keeps datetimes as wall-clock text, so offsets must go first."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _facet(
    kind: str | Sequence[str], value: str | Sequence[str], min_score: float | None = None
) -> ColumnElement[bool]:
    kinds = [kind] if isinstance(kind, str) else list(kind)
    values = [value] if isinstance(value, str) else list(value)
    condition = and_(Facet.image_id == Image.id, Facet.kind.in_(kinds), Facet.value.in_(values))
    if min_score is not None:
        condition = and_(condition, Facet.score >= min_score)
    return exists().where(condition)


def filter_conditions(workspace: int, f: ImageFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Image.workspace_id == workspace]
    if f.label:
        terms = f.label_terms or (f.label.lower(),)
        where.append(_facet(("label", "class"), terms, f.label_min_score))
    for kind, value in (
        ("category", f.category),
        ("brand", f.brand),
        ("safety", f.safety),
        ("emotion", f.emotion),
        ("sentiment", f.sentiment),
        ("colour", f.colour),
    ):
        if value:
            where.append(_facet(kind, value.lower()))
    if f.has_text is not None:
        where.append(_facet("has_text", "true" if f.has_text else "false"))
    if f.min_faces is not None:
        where.append(
            exists().where(Facet.image_id == Image.id, Facet.kind == "face_count", Facet.score >= f.min_faces)
        )
    if f.hide_unreviewed:
        where.append(~hidden_by_review())
    if f.since:
        where.append(Image.created_at >= _utc(f.since))
    if f.until:
        where.append(Image.created_at < _utc(f.until))
    post_conditions: list[ColumnElement[bool]] = []
    if f.author:
        post_conditions.append(func.lower(Post.author) == f.author.lower().lstrip("@"))
    if f.platform:
        post_conditions.append(Post.platform == f.platform.lower())
    if f.posted_since:
        post_conditions.append(Post.created_at >= _utc(f.posted_since))
    if f.posted_until:
        post_conditions.append(Post.created_at < _utc(f.posted_until))
    if f.hashtag:
        post_conditions.append(
            exists().where(Hashtag.post_pk == Post.id, Hashtag.tag == f.hashtag.lower().lstrip("#"))
        )
    if post_conditions:
        where.append(
            exists().where(PostImage.image_id == Image.id, Post.id == PostImage.post_pk, *post_conditions)
        )
    return where


def encode_cursor(image: Image) -> str:
    return base64.urlsafe_b64encode(f"{image.created_at.isoformat()}|{image.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError on a cursor this server did not make."""
    try:
        stamp, image_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return _utc(datetime.fromisoformat(stamp)), image_id
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError("invalid cursor") from exc


def list_images(
    session: Session, workspace: int, filters: ImageFilter, limit: int, cursor: str | None = None
) -> tuple[list[Image], str | None]:
    """Newest first, keyset-paginated: (page, cursor of the next page or None)."""
    query = select(Image).where(*filter_conditions(workspace, filters))
    if cursor:
        stamp, last_id = decode_cursor(cursor)
        query = query.where(
            or_(Image.created_at < stamp, and_(Image.created_at == stamp, Image.id < last_id))
        )
    rows = list(session.scalars(query.order_by(Image.created_at.desc(), Image.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    return page, (encode_cursor(page[-1]) if len(rows) > limit else None)


def count_images(session: Session, workspace: int, filters: ImageFilter) -> int:
    return int(
        session.scalar(select(func.count()).select_from(Image).where(*filter_conditions(workspace, filters)))
        or 0
    )
