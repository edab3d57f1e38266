"""The objects analyzer with the real centernet and EfficientNet-Lite0 on real photos, plus its pure logic."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import TypeAdapter

from feedlens.analyzers.objects import ObjectsAnalyzer
from feedlens.analyzers.objects_logic import (
    CHECK_FLOOR,
    MIN_CROP,
    Candidate,
    CropJudge,
    ObjectCalibration,
    Sighting,
    Verdict,
    crop_region,
    decode,
    features,
    judged,
    nms,
    to_objects,
)
from feedlens.core.results import Box
from feedlens.core.results.objects import COCO_CLASSES, CropCheck, DetectedObject, ObjectsResult
from feedlens.core.vocabulary import Vocabulary
from feedlens.images import ImageDecoder
from feedlens.services.factory import Services
from tests.support import corpus, tuxpaint

ASTRONAUT_PERSON = Box(0.05, 0.02, 0.71, 1.0)  # hand box, tests/support/corpus_data/scikit-image.yaml
COFFEE_CUP = Box(0.29, 0.03, 0.7, 0.77)
TABBY = "n02123045"
GOLDEN_RETRIEVER = "n02099601"


@pytest.fixture(scope="module")
def objects(services: Services) -> ObjectsAnalyzer:
    analyzer = ObjectsAnalyzer(services.store, services.settings)
    analyzer.load()
    return analyzer


@pytest.fixture(scope="module")
def judge() -> CropJudge:
    return CropJudge(Vocabulary.load())


def load(decoder: ImageDecoder, path: Path) -> Image.Image:
    return decoder.decode(path, min_side=ObjectsAnalyzer.input_size).image


# --- the real models on real photos ---------------------------------------------------------------------


def test_astronaut_is_a_person_covering_most_of_her(
    objects: ObjectsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    [result] = objects([load(decoder, sample_dir / "astronaut.png")])
    people = [o for o in result.objects if o.id == "person"]
    assert people and people[0] is result.objects[0]
    assert people[0].box.iou(ASTRONAUT_PERSON) >= 0.7
    assert people[0].name == "Person" and people[0].coco == "person"
    assert people[0].check is CropCheck.UNCHECKED  # the classifier cannot name a person: not held against it
    assert result.count("person") == 1


def test_coffee_has_a_cup(objects: ObjectsAnalyzer, decoder: ImageDecoder, sample_dir: Path) -> None:
    [result] = objects([load(decoder, sample_dir / "coffee.png")])
    cups = [o for o in result.objects if o.id == "cup"]
    assert cups and cups[0].box.iou(COFFEE_CUP) >= 0.5
    assert cups[0].score >= objects.min_score
    assert not result.count("animal")


def test_chelsea_is_never_a_dog(objects: ObjectsAnalyzer, decoder: ImageDecoder, sample_dir: Path) -> None:
    # centernet alone calls this tabby a dog (0.47); the crop check sees a cat
    [result] = objects([load(decoder, sample_dir / "chelsea.png")])
    assert result.count("dog") == 0
    assert {o.id for o in result.objects} <= {"cat"}
    for cat in result.objects:
        assert cat.verified  # the crop saw a cat (agreed, or relabelled the detector's dog)


def _composite_or_skip(n: int, seed: int) -> list[tuple[Image.Image, tuple[corpus.Box, ...]]]:
    try:
        return corpus.composites(n, seed)
    except corpus.CorpusError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"corpus unavailable: {exc}")
        pytest.skip(f"corpus unavailable: {exc}")


def test_a_pasted_object_is_found_where_it_was_pasted(objects: ObjectsAnalyzer) -> None:
    # An exact box: a Tux Paint zebra pasted onto an object-free corpus photo (alpha gives the box).
    spec = corpus.read_composite_spec()
    root = tuxpaint.stamps_or_skip()
    zebra = next(c for c in spec["cutouts"] if c["label"] == "zebra")
    background = next(i for i in _backgrounds(spec) if i.id == "mate/greenmeadow")
    member = root / str(zebra["member"]).removeprefix("usr/share/tuxpaint/stamps/")
    with Image.open(member) as stamp, Image.open(background.path) as photo:
        image, boxes = corpus.compose(photo, [("zebra", stamp.convert("RGBA"))], random.Random(7))
    [truth] = boxes
    [result] = objects([image])
    found = [o for o in result.objects if o.coco == "zebra"]
    assert found and max(o.box.iou(Box(truth.x0, truth.y0, truth.x1, truth.y1)) for o in found) >= 0.5


def _backgrounds(spec: dict[str, object]) -> list[corpus.CorpusImage]:
    names = spec["backgrounds"]
    assert isinstance(names, list)
    try:
        return [i for i in corpus.load_corpus(["mate-backgrounds"]) if i.id in names]
    except corpus.CorpusError as exc:
        pytest.skip(f"corpus unavailable: {exc}")


def test_held_out_composites_are_mostly_found(objects: ObjectsAnalyzer) -> None:
    pairs = _composite_or_skip(6, seed=1)
    results = objects([image for image, _ in pairs])
    wanted = found = 0
    for (_, boxes), result in zip(pairs, results, strict=True):
        for truth in boxes:
            wanted += 1
            box = Box(truth.x0, truth.y0, truth.x1, truth.y1)
            found += any(o.coco == truth.label and o.box.iou(box) >= 0.5 for o in result.objects)
    assert found >= wanted // 2, f"{found} of {wanted} pasted objects found"


@pytest.mark.parametrize(
    "size", [(1, 1), (4, 4), (16, 2000), (2000, 16), (640, 480)], ids=["1px", "4px", "tall", "wide", "black"]
)
def test_bad_inputs_give_a_valid_result(objects: ObjectsAnalyzer, size: tuple[int, int]) -> None:
    [result] = objects([Image.new("RGB", size)])
    assert isinstance(result, ObjectsResult)
    assert ObjectsResult.from_dict(result.to_dict()) == result
    assert all(o.check is not CropCheck.AGREED for o in result.objects)  # nothing to agree with in black


def test_extreme_aspect_ratio_of_a_real_photo(
    objects: ObjectsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    strip = load(decoder, sample_dir / "chelsea.png").resize((2000, 16))
    for result in objects([strip, strip.transpose(Image.Transpose.ROTATE_90)]):
        for obj in result.objects:  # boxes stay inside the image; crops too small are simply not checked
            assert 0.0 <= obj.box.x0 <= obj.box.x1 <= 1.0 and 0.0 <= obj.box.y0 <= obj.box.y1 <= 1.0


def test_results_round_trip_and_batching_changes_nothing(
    objects: ObjectsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    images = [load(decoder, sample_dir / n) for n in ("astronaut.png", "coffee.png", "chelsea.png")]
    batched = objects(images)
    single = [objects([im])[0] for im in images]
    assert batched == single
    for result in batched:
        data = json.loads(json.dumps(result.to_dict()))
        assert data["schema"] == "feedlens.objects/2"
        assert ObjectsResult.from_dict(data) == result
        TypeAdapter(ObjectsResult).validate_python(result)
        # stored before `detector` and `known` existed (schema 1, centernet only): reads back the same
        old = [{k: v for k, v in o.items() if k not in ("detector", "known")} for o in data["objects"]]
        assert ObjectsResult.from_dict({**data, "schema": "feedlens.objects/1", "objects": old}) == result
    assert ObjectsAnalyzer.json_schema()["$id"] == "feedlens.objects/2"


def test_version_names_models_vocabulary_and_calibration(objects: ObjectsAnalyzer) -> None:
    version = objects.version
    assert version.startswith("objects-") and "centernet-onnx@" in version
    assert "efficientnet-lite0-onnx@" in version and "+calibration@" in version


# --- pure logic -----------------------------------------------------------------------------------------


def _raw(rows: list[list[float]]) -> np.ndarray:
    out = np.zeros((100, 6), dtype=np.float32)
    out[: len(rows)] = rows
    return out


def test_decode_is_class_wise_nms_with_normalised_clipped_boxes() -> None:
    person, dog, cat = (COCO_CLASSES.index(n) for n in ("person", "dog", "cat"))
    raw = _raw(
        [
            [-10, 0, 256, 512, 0.9, person],  # off the left edge: clipped
            [0, 0, 250, 500, 0.8, person],  # the same person again: suppressed
            [0, 0, 250, 500, 0.5, dog],  # same place, other class: kept (class-wise)
            [300, 300, 400, 400, 0.4, cat],
            [10, 10, 10, 50, 0.9, cat],  # zero width: dropped
            [np.nan, 0, 1, 1, 0.9, cat],  # broken row: dropped
            [0, 0, 50, 50, 0.9, 80],  # no such class: dropped
            [0, 0, 50, 50, 0.05, cat],  # under the floor
        ]
    )
    found = decode(raw)
    assert [(COCO_CLASSES[c.cls], round(c.score, 2)) for c in found] == [
        ("person", 0.9),
        ("dog", 0.5),
        ("cat", 0.4),
    ]
    assert found[0].box == (0.0, 0.0, 0.5, 1.0)
    assert decode(np.zeros((1, 100, 6))) == []


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 1, 1], [0, 0, 0.9, 1], [0.5, 0.5, 1, 1], [0, 0, 0.1, 0.1]], dtype=float)
    assert nms(boxes, np.array([0.5, 0.9, 0.4, 0.3])) == [1, 2, 3]


def test_small_crops_are_not_checked() -> None:
    assert crop_region((0.0, 0.0, 0.01, 0.5), 1000, 1000) is None  # 10 px wide
    assert crop_region((0.4, 0.4, 0.6, 0.6), 100, 100) is None  # 20 px + margin < 32
    region = crop_region((0.25, 0.25, 0.75, 0.75), 400, 200)
    assert region == (80, 40, 320, 160)  # 10% margin each side
    assert region is not None and min(region[2] - region[0], region[3] - region[1]) >= MIN_CROP
    assert crop_region((0.0, 0.0, 1.0, 1.0), 64, 64) == (0, 0, 64, 64)  # clipped to the image


def _probabilities(wnid: str, p: float, vocabulary: Vocabulary) -> np.ndarray:
    out = np.full(1000, (1 - p) / 999)
    out[vocabulary.imagenet_wnids.index(wnid)] = p
    return out


def test_a_dog_whose_crop_is_a_tabby_becomes_a_cat(judge: CropJudge) -> None:
    dog, cat = COCO_CLASSES.index("dog"), COCO_CLASSES.index("cat")
    rolled = judge.rolled(_probabilities(TABBY, 0.9, judge.vocabulary)[None, :])[0]
    verdict = judge.judge(dog, rolled)
    assert verdict.check is CropCheck.RELABELLED and verdict.cls == cat and "Cat" in verdict.evidence
    assert judge.judge(cat, rolled).check is CropCheck.AGREED


def test_an_unrelated_confident_crop_is_doubted_and_a_person_is_never_checked(judge: CropJudge) -> None:
    rolled = judge.rolled(_probabilities(GOLDEN_RETRIEVER, 0.9, judge.vocabulary)[None, :])[0]
    bottle = COCO_CLASSES.index("bottle")
    assert judge.judge(bottle, rolled).check is CropCheck.DOUBTED  # a dog is no kind of bottle
    assert judge.judge(COCO_CLASSES.index("person"), rolled).check is CropCheck.DOUBTED
    weak = judge.rolled(_probabilities(GOLDEN_RETRIEVER, 0.3, judge.vocabulary)[None, :])[0]
    assert judge.judge(COCO_CLASSES.index("person"), weak).check is CropCheck.UNCHECKED
    assert judge.judge(bottle, weak).check is CropCheck.UNSURE


def test_calibration_ranks_agreement_above_doubt_and_the_check_floor_is_consistent() -> None:
    calibration = ObjectCalibration.load()
    cls = COCO_CLASSES.index("dog")
    agreed = calibration.score(features(0.4, Verdict(cls, CropCheck.AGREED, support=0.9)))
    doubted = calibration.score(features(0.4, Verdict(cls, CropCheck.DOUBTED, rival=0.9)))
    blind = calibration.score(features(0.4, Verdict(cls, CropCheck.UNCHECKED)))
    assert agreed > blind > doubted
    floor = calibration.check_floor(calibration.min_score)
    best = calibration.score(features(floor * 0.99, Verdict(cls, CropCheck.AGREED, support=1.0)))
    assert (
        best
        < calibration.min_score
        <= calibration.score(features(floor * 1.01, Verdict(cls, CropCheck.AGREED, support=1.0)))
    )
    assert CHECK_FLOOR > 0 and calibration.provenance.get("fitted_by")


def test_to_objects_relabels_then_keeps_one_box_per_object(judge: CropJudge) -> None:
    dog, cat = COCO_CLASSES.index("dog"), COCO_CLASSES.index("cat")
    crop = _probabilities(TABBY, 0.9, judge.vocabulary)
    sighting = Sighting(
        (Candidate(dog, 0.5, (0.1, 0.1, 0.9, 0.9)), Candidate(cat, 0.3, (0.1, 0.1, 0.88, 0.9))),
        (crop, crop),
    )
    found = to_objects(judged(sighting, judge), judge, ObjectCalibration.load(), 0.0, 10)
    assert [o.id for o in found] == ["cat"]  # the relabelled dog and the cat are one cat
    assert found[0].parents[:1] == ("pet",) or "animal" in found[0].parents


def test_result_validation_and_counts() -> None:
    def obj(label: str, score: float, coco: str) -> DetectedObject:
        return DetectedObject(label, label.title(), coco, score, Box(0, 0, 1, 1), score, parents=("animal",))

    result = ObjectsResult((obj("cat", 0.9, "cat"), obj("dog", 0.5, "dog"), obj("dog", 0.3, "dog")))
    assert result.count("dog") == 2 and result.count("animal") == 3 and result.count("dog", 0.4) == 1
    assert result.counts() == {"dog": 2, "cat": 1}
    assert ObjectsResult.empty().objects == ()
    with pytest.raises(ValueError, match="sorted"):
        ObjectsResult((obj("dog", 0.3, "dog"), obj("cat", 0.9, "cat")))
    with pytest.raises(ValueError, match="COCO"):
        obj("cat", 0.9, "kitten")
    with pytest.raises(ValueError, match="verified"):
        DetectedObject("cat", "Cat", "cat", 0.9, Box(0, 0, 1, 1), 0.9, CropCheck.DOUBTED, verified=True)
    with pytest.raises(ValueError, match="score"):
        obj("cat", 1.5, "cat")
