"""Reports as Ray rows and back (services/cluster/wire.py): typed results and embedding vectors survive
exactly; rows from a node with other analyzer versions are refused. No Ray needed."""

from __future__ import annotations

import numpy as np
import pytest

from feedlens.core.results.base import ImageReport
from feedlens.core.results.embedding import EmbeddingResult
from feedlens.core.results.labels import Label, LabelsResult
from feedlens.services.cluster.wire import ClusterVersionError, report_from_row, report_row

VERSIONS = {"labels": "labels-3", "embedding": "embedding-2"}


def _unit(size: int, seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=size).astype(np.float32)
    return vector / np.linalg.norm(vector)


def test_report_round_trips_with_its_vectors() -> None:
    labels = LabelsResult(labels=(Label("cat", "Cat", 0.91, category="Animals"),), wordnet={"n02121808": 0.9})
    embedding = EmbeddingResult(visual=_unit(1280, 1), content=_unit(384, 2), parts=("classes",))
    report = ImageReport(
        "a.jpg", "ab" * 32, 640, 480, "JPEG", results={"labels": labels, "embedding": embedding}
    )

    back = report_from_row(report_row(report, VERSIONS), VERSIONS)

    assert back.to_dict() == report.to_dict()
    assert back.results["labels"] == labels
    rebuilt = back.results["embedding"]
    assert isinstance(rebuilt, EmbeddingResult)
    assert np.array_equal(rebuilt.visual, embedding.visual)
    assert np.array_equal(rebuilt.content, embedding.content)


def test_failed_report_round_trips() -> None:
    report = ImageReport("bad.jpg", error={"code": "truncated", "message": "the file ends early"})
    assert report_from_row(report_row(report, VERSIONS), VERSIONS).to_dict() == report.to_dict()


def test_rows_from_other_analyzer_versions_are_refused() -> None:
    row = report_row(ImageReport("a.jpg", error={"code": "truncated"}), {**VERSIONS, "labels": "labels-2"})
    with pytest.raises(ClusterVersionError, match="labels"):
        report_from_row(row, VERSIONS)
