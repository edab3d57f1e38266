"""A workspace's side of zero-shot normalisation: its stored running statistics (storage/category_stats.py),
when to recompute them, and per-category thresholds from its labels.

Counting. An image's raw scores are added to the statistics the first time it is categorised with a
taxonomy version (an image categorised again, for a new caption, is not counted twice; its raw score
components do not depend on captions). Deleted images stay counted until the next full recomputation.

Recomputing. Images categorised early were read against few images. After an ingest, while the workspace
has at most REFRESH_UP_TO images, whenever it has grown to REFRESH_GROWTH times the count of the last full
recomputation, every image is recategorised against fresh statistics: at most about twice the work of
categorising each image once. `feedlens recategorize` and a taxonomy change always recompute.

Labels. A category with at least two labelled images on each side gets the threshold that best separates
its labelled images' zero-shot scores (normalise.label_thresholds), and how far those scores separate them
says how much zero-shot counts beside a trained model (normalise.zero_shot_trust); both cached until labels
or statistics move.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from feedlens.services.categories.categoriser import Categoriser
from feedlens.services.categories.fusion import COMPONENTS
from feedlens.services.categories.normalise import (
    MIN_LABELS,
    Moments,
    label_matrices,
    label_thresholds,
    zero_shot_trust,
)
from feedlens.services.categories.zero_shot import CompiledTaxonomy, Evidence
from feedlens.storage import categories as cats
from feedlens.storage import category_stats as stats
from feedlens.storage.tables import Analysis

REFRESH_UP_TO = 2000  # beyond this a library's statistics barely move with a batch; recategorize on demand
REFRESH_GROWTH = 2.0
MAX_LABELLED = 2000  # labelled images read for thresholds (the most recent ones beyond this are enough)


def counted(session: Session, compiled: CompiledTaxonomy, image_ids: Sequence[str]) -> set[str]:
    """The images already categorised with this taxonomy version (and so already in the statistics)."""
    if not image_ids:
        return set()
    prefix = f"{compiled.taxonomy.name}@{compiled.version}/"
    rows = session.execute(
        select(Analysis.image_id, Analysis.version).where(
            Analysis.image_id.in_(list(image_ids)), Analysis.analyzer == cats.ANALYZER
        )
    )
    return {image_id for image_id, version in rows if version.startswith(prefix)}


def read(session: Session, workspace: int, compiled: CompiledTaxonomy) -> tuple[Moments, int]:
    """The workspace's statistics for this taxonomy version and the image count of its last recomputation."""
    n, total, total_sq, refreshed = stats.read(
        session, workspace, compiled.version, COMPONENTS, compiled.names
    )
    return Moments(n, total, total_sq), refreshed


def add(
    session: Session, workspace: int, compiled: CompiledTaxonomy, image_ids: Sequence[str], raw: np.ndarray
) -> Moments:
    """Count the images of a batch (raw (N, K, C), in `image_ids` order) not counted yet; returns the
    workspace's statistics with them."""
    done = counted(session, compiled, image_ids)
    new = [k for k, image_id in enumerate(image_ids) if image_id not in done]
    if new:
        m = Moments.of(raw[new])
        stats.add(
            session, workspace, compiled.version, COMPONENTS, compiled.names, (m.n, m.total, m.total_sq)
        )
    return read(session, workspace, compiled)[0]


def replace(
    session: Session, workspace: int, compiled: CompiledTaxonomy, moments: Moments, images: int
) -> None:
    stats.replace(
        session,
        workspace,
        compiled.version,
        COMPONENTS,
        compiled.names,
        (moments.n, moments.total, moments.total_sq),
        images,
    )


def needs_refresh(moments: Moments, refreshed: int) -> bool:
    images = moments.images
    return 0 < images <= REFRESH_UP_TO and images >= REFRESH_GROWTH * refreshed and images > refreshed


class LabelFit(NamedTuple):
    """What a workspace's labels say about zero-shot: thresholds (C,) and trust (C,) in [0, 1]."""

    thresholds: np.ndarray
    trust: np.ndarray


class LabelThresholds:
    """Per-category thresholds and zero-shot trust from a workspace's labels, cached by (workspace, taxonomy
    version, labels, statistics at the last recomputation)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int, int, int], LabelFit | None] = {}
        self._lock = threading.Lock()

    def get(
        self,
        session: Session,
        workspace: int,
        categoriser: Categoriser,
        refreshed: int,
        evidence_of: Callable[[Session, list[str]], Mapping[str, Evidence]],
    ) -> LabelFit | None:
        """The labels' fit, or None when no category has enough labels."""
        labelled = cats.workspace_labels(session, workspace)
        compiled = categoriser.compiled
        key = (workspace, compiled.version, sum(len(p) + len(n) for p, n in labelled.values()), refreshed)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        ids = sorted(labelled)[-MAX_LABELLED:]
        pos, neg = label_matrices(compiled.names, labelled, ids)
        found: LabelFit | None = None
        if ((pos.sum(axis=0) >= MIN_LABELS) & (neg.sum(axis=0) >= MIN_LABELS)).any():
            evidence = evidence_of(session, ids)
            keep = [k for k, image_id in enumerate(ids) if image_id in evidence]
            zero = categoriser.scores([evidence[ids[k]] for k in keep]).zero
            found = LabelFit(
                label_thresholds(zero, pos[keep], neg[keep], categoriser.zero_shot_thresholds()),
                zero_shot_trust(zero, pos[keep], neg[keep]),
            )
        with self._lock:
            self._cache[key] = found
        return found
