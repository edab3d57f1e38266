from __future__ import annotations

import pytest

from feedlens.core.results import ImageNetClass, ImageReport, Label, LabelsResult


def test_classes_must_be_sorted_and_labels_unique() -> None:
    with pytest.raises(ValueError, match="descending"):
        LabelsResult(labels=(), classes=(ImageNetClass("a", "n1", 0.1), ImageNetClass("b", "n2", 0.5)))
    with pytest.raises(ValueError, match="once"):
        LabelsResult(labels=(Label("cat", "Cat", 0.9), Label("cat", "Cat", 0.8)))
    with pytest.raises(ValueError, match="score"):
        Label("cat", "Cat", 1.5)


def test_empty_and_serialisation() -> None:
    assert LabelsResult.empty().to_dict() == {
        "schema": "feedlens.labels/2",
        "vocabulary": "",
        "labels": [],
        "classes": [],
        "wordnet": {},
    }
    with_features = LabelsResult(labels=(), features=[0.5] * 1280)
    assert "features" not in with_features.to_dict()  # vectors live in the embeddings table, not JSON
    result = LabelsResult(
        labels=(Label("cat", "Cat", 0.9, ("pet", "mammal", "animal"), "Animals and Pets", ("classifier",)),),
        classes=(ImageNetClass("tabby", "n02123045", 0.6),),
        wordnet={"n02121620": 0.9},
    )
    assert result.to_dict()["labels"][0] == {
        "id": "cat",
        "name": "Cat",
        "score": 0.9,
        "parents": ["pet", "mammal", "animal"],
        "category": "Animals and Pets",
        "sources": ["classifier"],
        "count": None,
    }
    assert result.headline == result.label("cat") and result.names() == ["Cat"]
    assert result.names(min_score=0.95) == [] and result.label("dog") is None
    assert LabelsResult.from_dict(result.to_dict()) == result  # stored results load back typed


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
    assert good.ok and good.to_dict()["results"]["labels"]["schema"] == "feedlens.labels/2"
