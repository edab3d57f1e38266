"""Queries for active learning: the image pool, and the retraining loop's cycles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedlens.storage.tables import Image, LearningCycle

CYCLE_FIELDS = (
    "task",
    "labels",
    "holdout",
    "metric",
    "candidate_version",
    "candidate_score",
    "production_version",
    "production_score",
    "promoted",
    "reason",
    "trigger",
    "created_by",
)


def image_ids(session: Session, workspace: int, limit: int) -> list[str]:
    """The workspace's image ids, newest first, at most `limit`."""
    query = (
        select(Image.id)
        .where(Image.workspace_id == workspace)
        .order_by(Image.created_at.desc(), Image.id)
        .limit(limit)
    )
    return [str(i) for i in session.scalars(query)]


def add_cycle(session: Session, workspace: int, record: dict[str, Any]) -> None:
    session.add(LearningCycle(workspace_id=workspace, **{k: record[k] for k in CYCLE_FIELDS}))


def cycles(session: Session, workspace: int, task: str) -> list[dict[str, Any]]:
    query = (
        select(LearningCycle)
        .where(LearningCycle.workspace_id == workspace, LearningCycle.task == task)
        .order_by(LearningCycle.id)
    )
    return [
        {**{k: getattr(c, k) for k in CYCLE_FIELDS}, "created_at": c.created_at.isoformat()}
        for c in session.scalars(query)
    ]
