"""The labels analyzer with the real EfficientNet-Lite0 on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import TypeAdapter

from feedlens.analyzers.labels import LabelsAnalyzer
from feedlens.core.results import LabelsResult
from feedlens.images import ImageDecoder
from tests.conftest import encode

CAT_CLASSES = {"n02123045", "n02123159", "n02124075", "n02123394", "n02123597"}  # tabby, tiger, Egyptian...
COFFEE_CLASSES = {"n07920052", "n07930864", "n03063599"}  # espresso, cup, coffee mug


def _analyze(labels: LabelsAnalyzer, decoder: ImageDecoder, path: Path) -> LabelsResult:
    return labels([decoder.decode(path, min_side=labels.input_size).image])[0]


def test_cat_photo_is_a_cat_and_rolls_up_to_animal(
    labels: LabelsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    result = _analyze(labels, decoder, sample_dir / "chelsea.png")
    assert result.labels[0].wnid in CAT_CLASSES
    assert result.has_concept("cat", min_score=0.5)
    concepts = {c.name: c for c in result.concepts}
    assert concepts["animal"].score >= concepts["cat"].score >= 0.5  # roll-up sums over the subtree
    assert {"feline", "carnivore", "mammal"} <= concepts.keys()
    assert "entity" not in concepts  # too near the root to say anything


def test_coffee_photo_is_espresso_or_cup(
    labels: LabelsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    result = _analyze(labels, decoder, sample_dir / "coffee.png")
    assert result.labels[0].wnid in COFFEE_CLASSES
    assert not result.has_concept("animal")


def test_astronaut_is_not_an_animal(labels: LabelsAnalyzer, decoder: ImageDecoder, sample_dir: Path) -> None:
    result = _analyze(labels, decoder, sample_dir / "astronaut.png")
    assert not result.has_concept("animal")
    assert not any(lab.wnid in CAT_CLASSES for lab in result.labels)


def test_every_sample_gets_a_valid_result(
    labels: LabelsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    images = [decoder.decode(p, min_side=labels.input_size).image for p in sorted(sample_dir.iterdir())]
    results = labels(images)
    assert len(results) == len(images)
    validator = TypeAdapter(LabelsResult)
    for result in results:
        assert len(result.labels) == labels.settings.labels_top_k
        assert 0.0 < sum(lab.score for lab in result.labels) <= 1.0 + 1e-6
        validator.validate_python(result.to_dict() | {})  # the published schema accepts it
        assert result.to_dict()["schema"] == "feedlens.labels/1"


def test_batching_does_not_change_results(
    labels: LabelsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    paths = sorted(sample_dir.iterdir())[:5]
    images = [decoder.decode(p, min_side=labels.input_size).image for p in paths]
    batched = labels(images)
    single = [labels([im])[0] for im in images]
    for a, b in zip(batched, single, strict=True):
        assert [x.wnid for x in a.labels] == [x.wnid for x in b.labels]
        np.testing.assert_allclose([x.score for x in a.labels], [x.score for x in b.labels], atol=1e-4)


def test_exif_rotated_jpeg_gets_the_upright_labels(
    labels: LabelsAnalyzer, decoder: ImageDecoder, chelsea: Image.Image
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 CCW to view"
    rotated = encode(chelsea.transpose(Image.Transpose.ROTATE_270), "JPEG", quality=95, exif=exif.tobytes())
    upright = encode(chelsea, "JPEG", quality=95)
    a, b = (labels([decoder.decode(d, min_side=256).image])[0] for d in (rotated, upright))
    assert [x.wnid for x in a.labels[:3]] == [x.wnid for x in b.labels[:3]]
    np.testing.assert_allclose([x.score for x in a.labels[:3]], [x.score for x in b.labels[:3]], atol=0.05)


def test_odd_shapes_still_label(labels: LabelsAnalyzer) -> None:
    odd = [Image.new("RGB", (16, 4000), (0, 0, 0)), Image.new("RGB", (3000, 16), (255, 255, 255))]
    results = labels(odd)
    assert len(results) == 2 and all(len(r.labels) == labels.settings.labels_top_k for r in results)


def test_preprocess_shape_and_range(labels: LabelsAnalyzer, chelsea: Image.Image) -> None:
    batch = labels.preprocess([chelsea, chelsea.resize((300, 900))], {})
    assert batch.shape == (2, 3, 224, 224) and batch.dtype == np.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0 + 1e-6  # (x - 127) / 128


def test_version_names_code_and_artifacts(labels: LabelsAnalyzer) -> None:
    assert labels.version.startswith("labels-1+efficientnet-lite0-onnx@")


def test_json_schema_is_published() -> None:
    schema = LabelsAnalyzer.json_schema()
    assert schema["$id"] == "feedlens.labels/1"
    assert {"labels", "concepts"} <= set(schema["properties"])


@pytest.mark.parametrize("score", [float("nan"), 1.5, -0.1])
def test_result_refuses_impossible_scores(score: float) -> None:
    from feedlens.core.results import Label

    with pytest.raises(ValueError, match="score"):
        Label(name="x", wnid="n0", score=score)
