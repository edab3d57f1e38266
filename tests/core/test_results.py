from __future__ import annotations

import pytest

from feedlens.core.results import Concept, ImageReport, Label, LabelsResult


def test_labels_must_be_sorted() -> None:
    with pytest.raises(ValueError, match="descending"):
        LabelsResult(labels=(Label("a", "n1", 0.1), Label("b", "n2", 0.5)), concepts=())


def test_empty_and_serialisation() -> None:
    assert LabelsResult.empty().to_dict() == {"schema": "feedlens.labels/1", "labels": [], "concepts": []}
    with_features = LabelsResult(labels=(), concepts=(), features=[0.5] * 1280)
    assert "features" not in with_features.to_dict()  # vectors live in the embeddings table, not JSON
    result = LabelsResult(
        labels=(Label("tabby", "n02123045", 0.6),), concepts=(Concept("cat", "n1", 0.9, 13),)
    )
    assert result.to_dict()["concepts"][0] == {"name": "cat", "wnid": "n1", "score": 0.9, "depth": 13}
    assert result.has_concept("cat", 0.5) and not result.has_concept("cat", 0.95)
    assert result.has_concept("n02123045")


def test_report_carries_either_results_or_error() -> None:
    bad = ImageReport(path="x.jpg", error={"code": "corrupt", "message": "m"})
    assert not bad.ok and "results" not in bad.to_dict() and bad.to_dict()["error"]["code"] == "corrupt"
    good = ImageReport(
        path="y.jpg",
        sha256="0" * 64,
        width=1,
        height=2,
        format="png",
        results={"labels": LabelsResult.empty()},
    )
    assert good.ok and good.to_dict()["results"]["labels"]["schema"] == "feedlens.labels/1"
