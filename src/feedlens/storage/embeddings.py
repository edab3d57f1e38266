"""Reading and writing image vectors (float32 bytes) in the embeddings table."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from feedlens.storage.tables import Embedding, Image, utcnow


def put(session: Session, image_id: str, kind: str, model: str, vector: np.ndarray) -> None:
    vector = np.ascontiguousarray(vector, dtype="<f4").reshape(-1)
    session.execute(delete(Embedding).where(Embedding.image_id == image_id, Embedding.kind == kind))
    session.add(
        Embedding(
            image_id=image_id,
            kind=kind,
            model=model,
            dim=int(vector.shape[0]),
            vector=vector.tobytes(),
            created_at=utcnow(),
        )
    )


def drop(session: Session, image_id: str, kind: str) -> None:
    session.execute(delete(Embedding).where(Embedding.image_id == image_id, Embedding.kind == kind))


def get(
    session: Session, image_ids: Sequence[str], kind: str, model: str | None = None
) -> dict[str, np.ndarray]:
    """Vectors of `kind` by image id; with `model`, only those that model made (others count as missing,
    so a caller re-embeds them after a model change)."""
    if not image_ids:
        return {}
    query = select(Embedding.image_id, Embedding.vector).where(
        Embedding.kind == kind, Embedding.image_id.in_(list(image_ids))
    )
    if model is not None:
        query = query.where(Embedding.model == model)
    rows = session.execute(query)
    return {image_id: np.frombuffer(blob, dtype="<f4") for image_id, blob in rows}


def ids(session: Session, workspace: int, kind: str) -> set[str]:
    rows = session.scalars(
        select(Embedding.image_id)
        .join(Image, Image.id == Embedding.image_id)
        .where(Image.workspace_id == workspace, Embedding.kind == kind)
    )
    return set(rows)


def of_workspace(
    session: Session, workspace: int, kind: str, exclude: Collection[str] = ()
) -> dict[str, np.ndarray]:
    """The workspace's vectors of `kind`, by image id in id order, leaving out `exclude` (e.g. images
    hidden until reviewed)."""
    wanted = sorted(ids(session, workspace, kind) - set(exclude))
    found = get(session, wanted, kind)
    return {i: found[i] for i in wanted if i in found}


def changed_since(session: Session, workspace: int, kind: str, since: datetime | None) -> list[str]:
    """Images whose `kind` vector was written after `since` (all of them for None)."""
    query = (
        select(Embedding.image_id)
        .join(Image, Image.id == Embedding.image_id)
        .where(Image.workspace_id == workspace, Embedding.kind == kind)
    )
    if since is not None:
        query = query.where(Embedding.created_at > since)
    return list(session.scalars(query))


def watermark(session: Session, workspace: int, kind: str) -> tuple[int, datetime | None]:
    """(count, newest created_at) of a workspace's vectors of one kind: changes whenever they change."""
    row = session.execute(
        select(func.count(), func.max(Embedding.created_at))
        .join(Image, Image.id == Embedding.image_id)
        .where(Image.workspace_id == workspace, Embedding.kind == kind)
    ).one()
    return int(row[0]), row[1]


def missing(session: Session, workspace: int, kind: str, having: str) -> list[str]:
    """Images of the workspace with a `having` vector but no `kind` vector."""
    have = select(Embedding.image_id).where(Embedding.kind == kind)
    rows = session.scalars(
        select(Embedding.image_id)
        .join(Image, Image.id == Embedding.image_id)
        .where(Image.workspace_id == workspace, Embedding.kind == having, Embedding.image_id.not_in(have))
    )
    return list(rows)
