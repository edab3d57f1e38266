"""Visual clusters of a workspace: HDBSCAN over the visual embeddings, each cluster named from its
members' labels and WordNet concepts, with the images that fit no cluster listed as outliers.

HDBSCAN rather than k-means: a library has no natural k, and outliers (one-off images) should stay out
rather than be forced into the nearest group.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
from sklearn.cluster import HDBSCAN

from feedlens.core.results import LabelsResult
from feedlens.storage import embeddings as vectors
from feedlens.storage import repositories as repo
from feedlens.storage.database import Database


def name_cluster(results: list[LabelsResult]) -> tuple[str, list[str]]:
    """The everyday label with the highest summed score over the members, and the runners-up. Each
    member's labels count in display order, so the specific ones it leads with weigh more ("Cat" over
    "Animal", which every animal cluster shares)."""
    scores: dict[str, float] = {}
    for labels in results:
        for rank, label in enumerate(labels.labels[:6]):
            scores[label.name] = scores.get(label.name, 0.0) + label.score / (1 + rank)
    top = sorted(scores, key=lambda name: -scores[name])[:4]
    return (top[0] if top else "unnamed"), top[1:]


def find_clusters(
    database: Database, workspace: int, min_cluster_size: int = 3, exclude: Collection[str] = ()
) -> dict[str, Any]:
    with database.session() as session:
        found = vectors.of_workspace(session, workspace, "visual", exclude)  # exclude: hidden until reviewed
        ids = list(found)
        analyses = repo.current_analyses(session, ids)
    if len(ids) < max(2, min_cluster_size):
        return {"clusters": [], "outliers": ids}
    matrix = np.stack([found[i] for i in ids]).astype(np.float64)
    # cosine distance on unit vectors == euclidean / sqrt(2): euclidean keeps HDBSCAN's fast tree path
    labels = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=1, copy=True).fit_predict(matrix)
    clusters: list[dict[str, Any]] = []
    for label in sorted(set(labels) - {-1}):
        members = [i for i, lab in zip(ids, labels, strict=True) if lab == label]
        centre = matrix[[ids.index(m) for m in members]].mean(axis=0)
        order = sorted(members, key=lambda m: -float(matrix[ids.index(m)] @ centre))
        loaded = [analyses[m]["labels"].loaded for m in members if "labels" in analyses[m]]
        name, also = name_cluster([r for r in loaded if isinstance(r, LabelsResult)])
        clusters.append({"name": name, "also": also, "size": len(members), "images": order})
    clusters.sort(key=lambda c: -int(c["size"]))
    outliers = [i for i, lab in zip(ids, labels, strict=True) if lab == -1]
    return {"clusters": clusters, "outliers": outliers}
