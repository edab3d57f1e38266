"""Reading and writing image vectors (float32 bytes) in the embeddings table.

Every written row gets a `seq` that only grows, so an index that remembers the bound it has read up to
loads just the newer rows (services/search.py), also rows another process or replica wrote:

- PostgreSQL: the writing transaction's 64-bit id. Transactions may commit out of order, so a reader's
  bound is the oldest transaction still running when it reads (`pg_snapshot_xmin`): every row below the
  bound is committed and was read; rows at or above it are read (again) next time.
- SQLite: max(seq) + 1, taken under its single writer lock, so commit order is seq order; never below the
  clock in microseconds, so a number freed by deleting the newest row (a vector rewritten, an image erased)
  is not handed out again below a bound a reader already passed.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence

import numpy as np
from sqlalchemy import ColumnElement, delete, func, literal_column, select
from sqlalchemy.orm import Session

from feedlens.storage.tables import Embedding, Image, utcnow

# xid8 has no cast to bigint; its text form is the number (monotonic for the cluster's life, no wraparound)
_PG_XACT = "pg_current_xact_id()::text::bigint"
_PG_XMIN = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _next_seq(session: Session) -> ColumnElement[int]:
    if _is_postgres(session):
        return literal_column(_PG_XACT)
    # deleting first (put) already holds SQLite's write lock, so no other writer can take the same number
    now = int(time.time() * 1_000_000)
    return select(func.max(func.coalesce(func.max(Embedding.seq), 0) + 1, now)).scalar_subquery()


def sequence_bound(session: Session) -> int:
    """Rows with seq below this are committed, and visible to a read that starts after this call."""
    if _is_postgres(session):
        return int(session.execute(select(literal_column(_PG_XMIN))).scalar_one())
    return int(session.scalar(select(func.coalesce(func.max(Embedding.seq), 0) + 1)) or 1)


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
            seq=_next_seq(session),
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


def changed_from(session: Session, workspace: int, kind: str, bound: int | None) -> list[str]:
    """Images whose `kind` vector has seq >= `bound` (all of them for None): an index range scan."""
    query = (
        select(Embedding.image_id)
        .join(Image, Image.id == Embedding.image_id)
        .where(Image.workspace_id == workspace, Embedding.kind == kind)
    )
    if bound is not None:
        query = query.where(Embedding.seq >= bound)
    return list(session.scalars(query))


def count(session: Session, workspace: int, kind: str) -> int:
    """How many `kind` vectors the workspace has."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Embedding)
            .join(Image, Image.id == Embedding.image_id)
            .where(Image.workspace_id == workspace, Embedding.kind == kind)
        )
        or 0
    )


def missing(session: Session, workspace: int, kind: str, having: str) -> list[str]:
    """Images of the workspace with a `having` vector but no `kind` vector."""
    have = select(Embedding.image_id).where(Embedding.kind == kind)
    rows = session.scalars(
        select(Embedding.image_id)
        .join(Image, Image.id == Embedding.image_id)
        .where(Image.workspace_id == workspace, Embedding.kind == having, Embedding.image_id.not_in(have))
    )
    return list(rows)
