"""The labels analyzer with the real EfficientNet-Lite0 and the real faces analyzer on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import TypeAdapter

from feedlens.analyzers.labels import LabelsAnalyzer
from feedlens.core.results import LabelsResult
from feedlens.core.vocabulary import FORBIDDEN_JARGON
from feedlens.images import ImageDecoder
from feedlens.services.factory import Services
from tests.conftest import encode

CAT_CLASSES = {"n02123045", "n02123159", "n02124075", "n02123394", "n02123597"}  # tabby, tiger, Egyptian...


def _analyze(labels: LabelsAnalyzer, decoder: ImageDecoder, path: Path) -> LabelsResult:
    return labels([decoder.decode(path, min_side=labels.input_size).image])[0]


def _with_people(services: Services, sample_dir: Path, name: str) -> LabelsResult:
    """Through the pipeline, so the faces the labels build on are found first."""
    report = services.pipeline(["labels"]).analyze_one(sample_dir / name)
    result = report.results["labels"]
    assert isinstance(result, LabelsResult)
    return result


def test_cat_photo_leads_with_cat_and_its_parents_follow(
    labels: LabelsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    result = _analyze(labels, decoder, sample_dir / "chelsea.png")
    names = result.names()
    assert names[0] == "Cat" and {"Pet", "Mammal", "Animal"} <= set(names[:4])
    cat = result.label("cat")
    assert cat is not None and cat.score >= 0.5 and set(cat.parents) >= {"pet", "mammal", "animal"}
    animal = result.label("animal")
    assert animal is not None and animal.score >= cat.score  # what implies a label cannot be likelier
    assert result.classes[0].wnid in CAT_CLASSES  # the raw classes stay as a detail


def test_coffee_is_coffee_and_not_an_animal(
    labels: LabelsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    result = _analyze(labels, decoder, sample_dir / "coffee.png")
    assert {"Coffee", "Espresso"} & set(result.names(3))
    assert "Drink" in result.names()
    assert result.label("animal") is None or result.label("animal").score < 0.1  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["astronaut.png", "grace_hopper.jpg", "camera.png"])
def test_people_lead_with_person(services: Services, sample_dir: Path, name: str) -> None:
    """Person is never missing where a face is found, and comes within the first three labels."""
    result = _with_people(services, sample_dir, name)
    person = result.label("person")
    assert person is not None and "Person" in result.names(3), result.names(5)
    assert "faces" in person.sources and person.count == 1
    assert result.label("face") is not None


def test_a_smile_is_a_smile(services: Services, sample_dir: Path) -> None:
    result = _with_people(services, sample_dir, "astronaut.png")
    smile = result.label("smile")
    assert smile is not None and smile.score >= 0.5 and "face" in smile.parents


@pytest.mark.parametrize(
    ("name", "expected"), [("motorcycle.png", {"Motorcycle", "Scooter"}), ("rocket.jpg", {"Rocket"})]
)
def test_vehicles_are_named_in_everyday_words(
    labels: LabelsAnalyzer, decoder: ImageDecoder, sample_dir: Path, name: str, expected: set[str]
) -> None:
    assert expected & set(_analyze(labels, decoder, sample_dir / name).names(3))


def test_every_sample_gets_a_valid_result_in_everyday_words(
    labels: LabelsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    images = [decoder.decode(p, min_side=labels.input_size).image for p in sorted(sample_dir.iterdir())]
    results = labels(images)
    assert len(results) == len(images)
    validator = TypeAdapter(LabelsResult)
    for result in results:
        assert len(result.classes) == labels.settings.labels_top_k
        assert len(result.labels) <= labels.settings.labels_max
        assert all(lab.score >= labels.settings.labels_min_score for lab in result.labels)
        assert not {lab.name.lower() for lab in result.labels} & FORBIDDEN_JARGON
        validator.validate_python(result.to_dict())  # the published schema accepts it
        assert LabelsResult.from_dict(result.to_dict()) == result
        assert result.to_dict()["schema"] == "feedlens.labels/2"
        _parents_never_lead(result, labels.settings.labels_lead_score)


def _parents_never_lead(result: LabelsResult, lead: float) -> None:
    """A confident label comes before every one of its parents."""
    position = {lab.id: k for k, lab in enumerate(result.labels)}
    for k, lab in enumerate(result.labels):
        if lab.score >= lead:
            assert all(position.get(p, len(position)) > k for p in lab.parents), (lab.id, result.names())


def test_batching_does_not_change_results(
    labels: LabelsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    paths = sorted(sample_dir.iterdir())[:5]
    images = [decoder.decode(p, min_side=labels.input_size).image for p in paths]
    batched = labels(images)
    single = [labels([im])[0] for im in images]
    for a, b in zip(batched, single, strict=True):
        assert [x.id for x in a.labels[:5]] == [x.id for x in b.labels[:5]]
        scores = [[x.score for x in r.labels[:5]] for r in (a, b)]
        np.testing.assert_allclose(scores[0], scores[1], atol=1e-3)


def test_exif_rotated_jpeg_gets_the_upright_labels(
    labels: LabelsAnalyzer, decoder: ImageDecoder, chelsea: Image.Image
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 CCW to view"
    rotated = encode(chelsea.transpose(Image.Transpose.ROTATE_270), "JPEG", quality=95, exif=exif.tobytes())
    upright = encode(chelsea, "JPEG", quality=95)
    a, b = (labels([decoder.decode(d, min_side=256).image])[0] for d in (rotated, upright))
    assert a.names(1) == b.names(1) == ["Cat"]
    np.testing.assert_allclose([x.score for x in a.classes[:3]], [x.score for x in b.classes[:3]], atol=0.05)


def test_odd_shapes_still_label(labels: LabelsAnalyzer) -> None:
    odd = [Image.new("RGB", (16, 4000), (0, 0, 0)), Image.new("RGB", (3000, 16), (255, 255, 255))]
    results = labels(odd)
    assert len(results) == 2 and all(len(r.classes) == labels.settings.labels_top_k for r in results)


def test_preprocess_shape_and_range(labels: LabelsAnalyzer, chelsea: Image.Image) -> None:
    batch = labels.preprocess([chelsea, chelsea.resize((300, 900))], {})
    assert batch.shape == (2, 3, 224, 224) and batch.dtype == np.float32
    assert batch.min() >= -1.0 and batch.max() <= 1.0 + 1e-6  # (x - 127) / 128


def test_version_names_code_artifacts_and_vocabulary(labels: LabelsAnalyzer) -> None:
    assert labels.version.startswith("labels-3+efficientnet-lite0-onnx@")
    assert "+vocabulary@" in labels.version  # a new mapping or calibration marks stored labels stale


def test_json_schema_is_published() -> None:
    schema = LabelsAnalyzer.json_schema()
    assert schema["$id"] == "feedlens.labels/2"
    assert {"labels", "classes", "wordnet"} <= set(schema["properties"])
