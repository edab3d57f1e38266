"""Queries for the feedback loop: corrections, the moderation review queue and moderation decisions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from feedlens.storage import repositories as repo
from feedlens.storage.tables import (
    Correction,
    Image,
    ModelPrediction,
    ModerationDecision,
    ReviewItem,
    TrainedModel,
    utcnow,
)

OPEN_STATES = ("pending", "escalated")  # states a reviewer can still decide


# -- corrections -------------------------------------------------------------------------------------------
def add_correction(session: Session, **fields: Any) -> Correction:
    row = Correction(**fields)
    session.add(row)
    session.flush()
    return row


def corrections_of(session: Session, image_id: str) -> list[Correction]:
    """An image's corrections, newest first."""
    query = (
        select(Correction)
        .where(Correction.image_id == image_id)
        .order_by(Correction.created_at.desc(), Correction.id.desc())
    )
    return list(session.scalars(query))


def served_prediction(session: Session, image_id: str, task: str) -> dict[str, Any] | None:
    """The newest recorded prediction of a trained model that answered for the image (the served arm)."""
    row = session.execute(
        select(ModelPrediction, TrainedModel.version)
        .join(TrainedModel, TrainedModel.id == ModelPrediction.model_id)
        .where(ModelPrediction.image_id == image_id, ModelPrediction.task == task, ModelPrediction.served)
        .order_by(ModelPrediction.created_at.desc(), ModelPrediction.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    prediction, version = row
    return {
        "version": int(version),
        "arm": prediction.arm,
        "label": prediction.label,
        "confidence": prediction.confidence,
    }


# -- the review queue --------------------------------------------------------------------------------------
def review_item(session: Session, workspace: int, image_id: str, lock: bool = False) -> ReviewItem | None:
    query = select(ReviewItem).where(ReviewItem.workspace_id == workspace, ReviewItem.image_id == image_id)
    return session.scalar(query.with_for_update() if lock else query)


def enqueue(session: Session, workspace: int, image_id: str, **fields: Any) -> None:
    """Put an image in the queue (`pending`), or refresh the scores of one still pending; an image a person
    already decided (or escalated) keeps its state."""
    row = session.get(ReviewItem, image_id)
    if row is None:
        session.add(ReviewItem(image_id=image_id, workspace_id=workspace, state="pending", **fields))
    elif row.state == "pending":
        for key, value in fields.items():
            setattr(row, key, value)


def dequeue_pending(session: Session, image_ids: Sequence[str]) -> int:
    """Drop pending entries (their newest safety result no longer needs a person); decided ones stay."""
    if not image_ids:
        return 0
    query = delete(ReviewItem).where(ReviewItem.image_id.in_(list(image_ids)), ReviewItem.state == "pending")
    return int(session.execute(query).rowcount or 0)  # type: ignore[attr-defined]


def set_state(session: Session, workspace: int, image_id: str, state: str, **fields: Any) -> ReviewItem:
    """Set an image's review state, creating its entry when it was never queued."""
    row = session.get(ReviewItem, image_id)
    if row is None:
        row = ReviewItem(image_id=image_id, workspace_id=workspace, state=state, **fields)
        session.add(row)
    else:
        row.state = state
        row.updated_at = utcnow()
    session.flush()
    return row


def queue(session: Session, workspace: int, states: Sequence[str], limit: int) -> list[ReviewItem]:
    """Queue entries in `states`, highest priority first (oldest first among equals)."""
    query = (
        select(ReviewItem)
        .where(ReviewItem.workspace_id == workspace, ReviewItem.state.in_(list(states)))
        .order_by(ReviewItem.priority.desc(), ReviewItem.queued_at, ReviewItem.image_id)
        .limit(limit)
    )
    return list(session.scalars(query))


def count_state(session: Session, workspace: int, state: str) -> int:
    query = select(func.count()).where(ReviewItem.workspace_id == workspace, ReviewItem.state == state)
    return int(session.scalar(query) or 0)


def hidden_ids(session: Session, workspace: int) -> list[str]:
    """Images of the workspace that hiding-until-reviewed keeps out of sight."""
    query = select(Image.id).where(Image.workspace_id == workspace, repo.hidden_by_review())
    return list(session.scalars(query))


def workspace_image_ids(session: Session, workspace: int) -> list[str]:
    return list(session.scalars(select(Image.id).where(Image.workspace_id == workspace).order_by(Image.id)))


# -- decisions ---------------------------------------------------------------------------------------------
def add_decision(session: Session, **fields: Any) -> ModerationDecision:
    row = ModerationDecision(**fields)
    session.add(row)
    session.flush()
    return row


def decisions_of(session: Session, image_id: str) -> list[ModerationDecision]:
    query = (
        select(ModerationDecision)
        .where(ModerationDecision.image_id == image_id)
        .order_by(ModerationDecision.created_at.desc(), ModerationDecision.id.desc())
    )
    return list(session.scalars(query))


def final_decisions(session: Session, workspace: int) -> list[ModerationDecision]:
    """Per image, the newest approve or reject (escalations say nothing about the truth)."""
    query = (
        select(ModerationDecision)
        .where(
            ModerationDecision.workspace_id == workspace,
            ModerationDecision.decision.in_(("approve", "reject")),
        )
        .order_by(ModerationDecision.created_at.desc(), ModerationDecision.id.desc())
    )
    newest: dict[str, ModerationDecision] = {}
    for row in session.scalars(query):
        newest.setdefault(row.image_id, row)
    return list(newest.values())
