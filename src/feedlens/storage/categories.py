"""Queries for taxonomies, category labels, trained category models and per-day category counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from feedlens.storage.tables import (
    CategoryLabel,
    CategoryModel,
    Facet,
    Image,
    Post,
    PostImage,
    TaxonomyVersion,
)

ANALYZER = "categories"  # the analyses/facets name under which category results are stored


def current_taxonomy(session: Session, workspace: int) -> TaxonomyVersion | None:
    return session.scalars(
        select(TaxonomyVersion)
        .where(TaxonomyVersion.workspace_id == workspace)
        .order_by(TaxonomyVersion.version.desc())
        .limit(1)
    ).first()


def taxonomy_versions(session: Session, workspace: int) -> list[TaxonomyVersion]:
    return list(
        session.scalars(
            select(TaxonomyVersion)
            .where(TaxonomyVersion.workspace_id == workspace)
            .order_by(TaxonomyVersion.version.desc())
        )
    )


def add_taxonomy(session: Session, workspace: int, definition: dict[str, Any]) -> int:
    """Store a new current version; returns its number (1 for the first)."""
    latest = session.scalar(
        select(func.max(TaxonomyVersion.version)).where(TaxonomyVersion.workspace_id == workspace)
    )
    version = int(latest or 0) + 1
    session.add(TaxonomyVersion(workspace_id=workspace, version=version, definition=definition))
    session.flush()
    return version


def set_labels(
    session: Session,
    workspace: int,
    image_id: str,
    positive: Sequence[str],
    negative: Sequence[str] = (),
    source: str = "api",
    created_by: str = "",
) -> None:
    """Record that the image shows `positive` and not `negative` categories (replacing earlier statements
    about the same categories)."""
    names = [*positive, *negative]
    session.execute(
        delete(CategoryLabel).where(CategoryLabel.image_id == image_id, CategoryLabel.category.in_(names))
    )
    session.add_all(
        CategoryLabel(
            workspace_id=workspace,
            image_id=image_id,
            category=name,
            positive=name in positive,
            source=source,
            created_by=created_by,
        )
        for name in dict.fromkeys(names)
    )


def labels_of_image(session: Session, image_id: str) -> list[CategoryLabel]:
    return list(
        session.scalars(
            select(CategoryLabel).where(CategoryLabel.image_id == image_id).order_by(CategoryLabel.category)
        )
    )


def workspace_labels(session: Session, workspace: int) -> dict[str, tuple[set[str], set[str]]]:
    """image id -> (categories it shows, categories it does not show)."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    rows = session.execute(
        select(CategoryLabel.image_id, CategoryLabel.category, CategoryLabel.positive).where(
            CategoryLabel.workspace_id == workspace
        )
    )
    for image_id, category, positive in rows:
        pos, neg = out.setdefault(image_id, (set(), set()))
        (pos if positive else neg).add(category)
    return out


def add_model(
    session: Session,
    workspace: int,
    taxonomy_version: int,
    weights: bytes,
    params: dict[str, Any],
    metrics: dict[str, Any],
) -> int:
    latest = session.scalar(
        select(func.max(CategoryModel.version)).where(CategoryModel.workspace_id == workspace)
    )
    version = int(latest or 0) + 1
    session.add(
        CategoryModel(
            workspace_id=workspace,
            version=version,
            taxonomy_version=taxonomy_version,
            weights=weights,
            params=params,
            metrics=metrics,
        )
    )
    session.flush()
    return version


def current_model(session: Session, workspace: int) -> CategoryModel | None:
    return session.scalars(
        select(CategoryModel)
        .where(CategoryModel.workspace_id == workspace)
        .order_by(CategoryModel.version.desc())
        .limit(1)
    ).first()


def models(session: Session, workspace: int) -> list[CategoryModel]:
    return list(
        session.scalars(
            select(CategoryModel)
            .where(CategoryModel.workspace_id == workspace)
            .order_by(CategoryModel.version.desc())
        )
    )


def category_counts(
    session: Session, workspace: int, since: datetime | None = None, until: datetime | None = None
) -> list[tuple[date, str, int]]:
    """(UTC day, category, images) for the images' current category results."""
    return facet_counts(session, workspace, ANALYZER, "category", since, until)


def facet_counts(
    session: Session,
    workspace: int,
    analyzer: str,
    kind: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[tuple[date, str, int]]:
    """(UTC day, facet value, images) of one analyzer's facets of one kind, each image dated by its post's
    time (the earliest post showing it) or, for images without a post, by ingest time."""
    posted = (
        select(PostImage.image_id, func.min(Post.created_at).label("posted"))
        .join(Post, Post.id == PostImage.post_pk)
        .group_by(PostImage.image_id)
        .subquery()
    )
    rows = session.execute(
        select(Facet.value, Image.created_at, posted.c.posted)
        .join(Image, Image.id == Facet.image_id)
        .outerjoin(posted, posted.c.image_id == Image.id)
        .where(Image.workspace_id == workspace, Facet.analyzer == analyzer, Facet.kind == kind)
    )
    counts: Counter[tuple[date, str]] = Counter()
    for category, created, posted_at in rows:
        when = posted_at or created
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        if (since is not None and when < since) or (until is not None and when >= until):
            continue
        counts[(when.date(), category)] += 1
    return sorted((day, category, n) for (day, category), n in counts.items())


def assigned_counts(session: Session, workspace: int) -> dict[str, int]:
    """Lower-cased category name -> images of the workspace currently assigned it (`other` included)."""
    rows = session.execute(
        select(Facet.value, func.count(func.distinct(Facet.image_id)))
        .join(Image, Image.id == Facet.image_id)
        .where(Image.workspace_id == workspace, Facet.analyzer == ANALYZER, Facet.kind == "category")
        .group_by(Facet.value)
    )
    return {str(value): int(n) for value, n in rows}
