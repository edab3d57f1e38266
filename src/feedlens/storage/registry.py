"""Queries for the model registry: trained models, deployments, deployment events, recorded predictions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedlens.storage.tables import (
    CategoryLabel,
    DeploymentEvent,
    ModelDeployment,
    ModelPrediction,
    TrainedModel,
    utcnow,
)


def next_version(session: Session, workspace: int, task: str) -> int:
    latest = session.scalar(
        select(func.max(TrainedModel.version)).where(
            TrainedModel.workspace_id == workspace, TrainedModel.task == task
        )
    )
    return int(latest or 0) + 1


def add_model(session: Session, **fields: Any) -> TrainedModel:
    row = TrainedModel(**fields)
    session.add(row)
    session.flush()
    return row


def models(session: Session, workspace: int, task: str) -> list[TrainedModel]:
    query = (
        select(TrainedModel)
        .where(TrainedModel.workspace_id == workspace, TrainedModel.task == task)
        .order_by(TrainedModel.version)
    )
    return list(session.scalars(query))


def model(session: Session, workspace: int, task: str, version: int) -> TrainedModel | None:
    return session.scalar(
        select(TrainedModel).where(
            TrainedModel.workspace_id == workspace, TrainedModel.task == task, TrainedModel.version == version
        )
    )


def model_by_id(session: Session, model_id: int | None) -> TrainedModel | None:
    return None if model_id is None else session.get(TrainedModel, model_id)


def deployment(
    session: Session, workspace: int, task: str, *, create: bool = False
) -> ModelDeployment | None:
    row = session.get(ModelDeployment, (workspace, task))
    if row is None and create:
        row = ModelDeployment(workspace_id=workspace, task=task, ab_mode="off", ab_share=0.0)
        session.add(row)
        session.flush()
    return row


def deployment_for_update(session: Session, workspace: int, task: str) -> ModelDeployment:
    """The deployment row, locked (PostgreSQL) so concurrent promotes serialise; created when missing."""
    row = session.scalar(
        select(ModelDeployment)
        .where(ModelDeployment.workspace_id == workspace, ModelDeployment.task == task)
        .with_for_update()
    )
    if row is None:
        row = deployment(session, workspace, task, create=True)
        assert row is not None
    row.updated_at = utcnow()
    return row


def add_event(
    session: Session,
    workspace: int,
    task: str,
    action: str,
    model_id: int | None,
    created_by: str,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        DeploymentEvent(
            workspace_id=workspace,
            task=task,
            action=action,
            model_id=model_id,
            detail=detail or {},
            created_by=created_by,
        )
    )


def events(session: Session, workspace: int, task: str) -> list[DeploymentEvent]:
    query = (
        select(DeploymentEvent)
        .where(DeploymentEvent.workspace_id == workspace, DeploymentEvent.task == task)
        .order_by(DeploymentEvent.id)
    )
    return list(session.scalars(query))


def record_predictions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert predictions; an (image, model) pair already recorded keeps its first prediction (the model is
    immutable, so a second one would be identical apart from the arm that served it)."""
    if not rows:
        return
    pairs = {(r["image_id"], r["model_id"]) for r in rows}
    image_ids = sorted({p[0] for p in pairs})
    query = select(ModelPrediction.image_id, ModelPrediction.model_id).where(
        ModelPrediction.image_id.in_(image_ids)
    )
    existing = {(str(i), int(m)) for i, m in session.execute(query)}
    for row in rows:
        key = (row["image_id"], row["model_id"])
        if key not in existing:
            session.add(ModelPrediction(**row))
            existing.add(key)
    session.flush()


def predictions_of(session: Session, image_id: str) -> list[ModelPrediction]:
    query = select(ModelPrediction).where(ModelPrediction.image_id == image_id).order_by(ModelPrediction.id)
    return list(session.scalars(query))


def live_rows(session: Session, workspace: int, model_ids: Sequence[int]) -> list[tuple[Any, ...]]:
    """(model id, image id, predicted label, served, label category, label positive) for every recorded
    prediction of `model_ids` whose image carries at least one label."""
    query = (
        select(
            ModelPrediction.model_id,
            ModelPrediction.image_id,
            ModelPrediction.label,
            ModelPrediction.served,
            CategoryLabel.category,
            CategoryLabel.positive,
        )
        .join(CategoryLabel, CategoryLabel.image_id == ModelPrediction.image_id)
        .where(ModelPrediction.workspace_id == workspace, ModelPrediction.model_id.in_(list(model_ids)))
    )
    return [tuple(r) for r in session.execute(query)]


def prediction_counts(
    session: Session, workspace: int, model_ids: Sequence[int]
) -> dict[tuple[int, bool], int]:
    """(model id, served) -> number of recorded predictions."""
    query = (
        select(ModelPrediction.model_id, ModelPrediction.served, func.count())
        .where(ModelPrediction.workspace_id == workspace, ModelPrediction.model_id.in_(list(model_ids)))
        .group_by(ModelPrediction.model_id, ModelPrediction.served)
    )
    return {(int(m), bool(s)): int(n) for m, s, n in session.execute(query)}
