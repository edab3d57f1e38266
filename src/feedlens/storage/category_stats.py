"""Each workspace's running statistics of its zero-shot category scores (services/categories/normalise.py).

One row per (workspace, taxonomy version, score component, category): images counted `n`, sum `total` and
sum of squares `total_sq` of the raw score, and `refreshed`, the image count at the last full recomputation.
Adding a batch is one `UPDATE ... SET n = n + :n` per row, so concurrent ingests never lose each other's
images; a full recomputation replaces the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from feedlens.storage.tables import Base, utcnow


class CategoryStat(Base):
    """Running sums of one category's raw zero-shot score component over a workspace's images."""

    __tablename__ = "category_stats"
    __table_args__ = (
        UniqueConstraint(
            "workspace_id", "taxonomy_version", "component", "category", name="uq_category_stats_key"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    taxonomy_version: Mapped[int] = mapped_column(Integer)
    component: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(64))
    n: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[float] = mapped_column(Float, default=0.0)
    total_sq: Mapped[float] = mapped_column(Float, default=0.0)
    refreshed: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


def read(
    session: Session,
    workspace: int,
    taxonomy_version: int,
    components: Sequence[str],
    categories: Sequence[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(n, total, total_sq) as (K, C) arrays in the given order (zeros where nothing is stored) and the
    image count at the last full recomputation (0 if none)."""
    shape = (len(components), len(categories))
    n, total, total_sq = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    row_of = {c: k for k, c in enumerate(components)}
    column_of = {c: j for j, c in enumerate(categories)}
    refreshed = 0
    rows = session.scalars(
        select(CategoryStat).where(
            CategoryStat.workspace_id == workspace, CategoryStat.taxonomy_version == taxonomy_version
        )
    )
    for row in rows:
        k, j = row_of.get(row.component), column_of.get(row.category)
        if k is None or j is None:
            continue
        n[k, j], total[k, j], total_sq[k, j] = row.n, row.total, row.total_sq
        refreshed = max(refreshed, row.refreshed)
    return n, total, total_sq, refreshed


def add(
    session: Session,
    workspace: int,
    taxonomy_version: int,
    components: Sequence[str],
    categories: Sequence[str],
    sums: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Add a batch's (n, total, total_sq), each (K, C), to the stored sums (rows are made as needed)."""
    n, total, total_sq = sums
    _ensure_rows(session, workspace, taxonomy_version, components, categories)
    for k, component in enumerate(components):
        for j, category in enumerate(categories):
            if not n[k, j]:
                continue
            session.execute(
                update(CategoryStat)
                .where(
                    CategoryStat.workspace_id == workspace,
                    CategoryStat.taxonomy_version == taxonomy_version,
                    CategoryStat.component == component,
                    CategoryStat.category == category,
                )
                .values(
                    n=CategoryStat.n + int(n[k, j]),
                    total=CategoryStat.total + float(total[k, j]),
                    total_sq=CategoryStat.total_sq + float(total_sq[k, j]),
                    updated_at=utcnow(),
                )
            )


def replace(
    session: Session,
    workspace: int,
    taxonomy_version: int,
    components: Sequence[str],
    categories: Sequence[str],
    sums: tuple[np.ndarray, np.ndarray, np.ndarray],
    images: int,
) -> None:
    """Replace the stored sums of this taxonomy version (a full recomputation over `images` images) and
    drop those of older versions, which no result uses any more."""
    session.execute(delete(CategoryStat).where(CategoryStat.workspace_id == workspace))
    n, total, total_sq = sums
    for k, component in enumerate(components):
        for j, category in enumerate(categories):
            session.add(
                CategoryStat(
                    workspace_id=workspace,
                    taxonomy_version=taxonomy_version,
                    component=component,
                    category=category,
                    n=int(n[k, j]),
                    total=float(total[k, j]),
                    total_sq=float(total_sq[k, j]),
                    refreshed=images,
                )
            )
    session.flush()


def _ensure_rows(
    session: Session,
    workspace: int,
    taxonomy_version: int,
    components: Sequence[str],
    categories: Sequence[str],
) -> None:
    have = {
        (row.component, row.category)
        for row in session.scalars(
            select(CategoryStat).where(
                CategoryStat.workspace_id == workspace, CategoryStat.taxonomy_version == taxonomy_version
            )
        )
    }
    missing = [(k, c) for k in components for c in categories if (k, c) not in have]
    if not missing:
        return
    try:
        with session.begin_nested():  # another ingest may make the same rows at the same moment
            for component, category in missing:
                session.add(
                    CategoryStat(
                        workspace_id=workspace,
                        taxonomy_version=taxonomy_version,
                        component=component,
                        category=category,
                    )
                )
    except IntegrityError:
        pass  # they exist now: the updates that follow add to them
