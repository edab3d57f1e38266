"""Queries behind alert rules and recommendations (services/insights/alerts.py, followers.py): rules
and their alerts, followers' engagements, and what the recommender reads of a workspace."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feedlens.storage.analytics import as_utc
from feedlens.storage.insights_tables import Alert, AlertRule, Engagement
from feedlens.storage.repositories import hidden_by_review
from feedlens.storage.tables import Facet, Image, Post, PostImage, utcnow


# -- alerts ------------------------------------------------------------------------------------------------
def rules(session: Session, workspace: int, rule_id: int | None = None) -> list[AlertRule]:
    query = select(AlertRule).where(AlertRule.workspace_id == workspace)
    if rule_id is not None:
        query = query.where(AlertRule.id == rule_id)
    return list(session.scalars(query.order_by(AlertRule.id)))


def add_alert(session: Session, values: dict[str, Any]) -> int | None:
    """Record an alert unless its (rule, period) is there already: its id when it is new, else None."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(Alert).values(created_at=utcnow(), **values).on_conflict_do_nothing().returning(Alert.id)
    )
    found = session.scalar(statement)
    return int(found) if found is not None else None


def alerts(
    session: Session, workspace: int, rule_id: int | None = None, limit: int = 100
) -> list[tuple[Alert, AlertRule]]:
    query = (
        select(Alert, AlertRule)
        .join(AlertRule, AlertRule.id == Alert.rule_id)
        .where(Alert.workspace_id == workspace)
    )
    if rule_id is not None:
        query = query.where(Alert.rule_id == rule_id)
    rows = session.execute(query.order_by(Alert.period.desc(), Alert.id.desc()).limit(limit))
    return [(a, r) for a, r in rows]


def undelivered(session: Session, workspace: int, max_attempts: int) -> list[tuple[Alert, AlertRule]]:
    """Alerts whose webhook is still to be sent (or failed fewer than `max_attempts` times)."""
    rows = session.execute(
        select(Alert, AlertRule)
        .join(AlertRule, AlertRule.id == Alert.rule_id)
        .where(
            Alert.workspace_id == workspace,
            Alert.webhook_status.in_(("pending", "failed")),
            Alert.webhook_attempts < max_attempts,
        )
        .order_by(Alert.id)
    )
    return [(a, r) for a, r in rows]


# -- engagements -------------------------------------------------------------------------------------------
def engagements(
    session: Session, workspace: int, follower: str | None = None
) -> list[tuple[str, str, str, datetime]]:
    """(follower, image id, kind, when) of the workspace, or of one follower (case-insensitive)."""
    query = select(Engagement.follower, Engagement.image_id, Engagement.kind, Engagement.created_at).where(
        Engagement.workspace_id == workspace
    )
    if follower is not None:
        query = query.where(func.lower(Engagement.follower) == follower.lower().lstrip("@"))
    return [(f, i, k, as_utc(w)) for f, i, k, w in session.execute(query.order_by(Engagement.id))]


def author_images(session: Session, workspace: int, author: str | None = None) -> list[tuple[str, str]]:
    """(author, image id) of every post with an author (or of one author, case-insensitive)."""
    query = (
        select(Post.author, PostImage.image_id)
        .join(PostImage, PostImage.post_pk == Post.id)
        .where(Post.workspace_id == workspace, Post.author.is_not(None))
    )
    if author is not None:
        query = query.where(func.lower(Post.author) == author.lower().lstrip("@"))
    return [(str(a), i) for a, i in session.execute(query.order_by(Post.id, PostImage.position))]


def category_scores(session: Session, workspace: int) -> dict[str, dict[str, float]]:
    """image id -> assigned category -> its score (storage/facets.py `category` facets)."""
    rows = session.execute(
        select(Facet.image_id, Facet.value, Facet.score)
        .join(Image, Image.id == Facet.image_id)
        .where(Image.workspace_id == workspace, Facet.analyzer == "categories", Facet.kind == "category")
    )
    out: dict[str, dict[str, float]] = {}
    for image_id, value, score in rows:
        out.setdefault(image_id, {})[value] = float(score if score is not None else 1.0)
    return out


def workspace_image_ids(session: Session, workspace: int, image_ids: Sequence[str]) -> set[str]:
    if not image_ids:
        return set()
    rows = session.scalars(
        select(Image.id).where(Image.workspace_id == workspace, Image.id.in_(list(image_ids)))
    )
    return set(rows)


def hidden_images(session: Session, workspace: int) -> set[str]:
    """Images FEEDLENS_REVIEW__HIDE_UNREVIEWED keeps out of sight (waiting for review, or rejected)."""
    rows = session.scalars(select(Image.id).where(Image.workspace_id == workspace, hidden_by_review()))
    return set(rows)
