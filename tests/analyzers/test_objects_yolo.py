"""A user-supplied YOLO detector in the `objects` analyzer (analyzers/yolo.py, FEEDLENS_OBJECTS_YOLO__*):
the letterbox and its inverse, output decoding in both layouts, class names (metadata, files) as everyday
labels, the model's checks at load, and the analyzer end to end on tiny models the tests export.

No YOLO weights exist offline, so the tests export their own with torch, with the signature of an
ultralytics yolov8 / yolo11 export: `images` (1, 3, S, S) -> `output0` (1, 4 + nc, anchors), and its
metadata (`names` as a Python dict literal, `imgsz`, `task`, `args`). Their weights are set by hand: two
1x1 convolutions turn each pure colour (red, green, blue) into a mask, and anchor c holds the box of colour
c's pixels (centre and size from the mask's moments) with score 0.9 x min(1, pixels / 16). A square that
lands on whole input pixels after the letterbox gives an exact mask, so the box that comes back through
the letterbox is checked to 1e-6.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from feedlens.analyzers.objects import ObjectsAnalyzer
from feedlens.analyzers.objects_logic import (
    Candidate,
    CropJudge,
    Sighting,
    detector_classes,
    everyday_label,
    judged,
    title,
    to_objects,
)
from feedlens.analyzers.yolo import Fit, as_rows, decode, letterbox, literal, parse_names, read_class_file
from feedlens.config import YoloSettings, load_settings
from feedlens.core.errors import ConfigError
from feedlens.core.results import Box
from feedlens.core.results.objects import CropCheck, DetectedObject, ObjectsResult
from feedlens.core.vocabulary import Vocabulary
from feedlens.services.factory import Services
from tests.support.yolo import (
    ANCHORS,
    NAMES,
    SIZE,
    SQUARE,
    export,
    scene,
    tiny_yolo,
    ultralytics_metadata,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("yolo-models")
    one = (1, 3, SIZE, SIZE)
    export(tiny_yolo(len(NAMES)), folder / "tiny-yolo.onnx", one, False, ultralytics_metadata())
    # dynamic=True layout, transposed output, names from a file instead of the metadata
    dynamic = ultralytics_metadata(names=None)
    export(tiny_yolo(len(NAMES), transposed=True), folder / "dynamic.onnx", one, True, dynamic)
    listed = "".join(f"  {k}: {v}\n" for k, v in NAMES.items())
    (folder / "names.yaml").write_text(f"path: ../data\nnames:\n{listed}")  # an ultralytics data.yaml
    # misfits
    export(tiny_yolo(3), folder / "narrow.onnx", one, False, ultralytics_metadata())  # 4 + 3 wide, 5 names
    export(tiny_yolo(len(NAMES)), folder / "nameless.onnx", one, False, ultralytics_metadata(names=None))
    export(tiny_yolo(len(NAMES)), folder / "anysize.onnx", one, True, ultralytics_metadata(imgsz=None))
    export(tiny_yolo(len(NAMES)), folder / "segment.onnx", one, False, ultralytics_metadata(task="segment"))
    nms = ultralytics_metadata(args={"nms": True, "batch": 1})
    export(tiny_yolo(len(NAMES)), folder / "nms.onnx", one, False, nms)
    export(flat_model(), folder / "flat.onnx", (1, 3, SIZE), False, ultralytics_metadata())
    (folder / "notes.onnx").write_text("not a model\n")
    return folder


def flat_model() -> Any:
    """A graph whose input has rank 3 (N, 3, S): no image at all."""
    import torch

    class FlatModel(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum(dim=2, keepdim=True).repeat(1, 3, ANCHORS)[:, : 4 + len(NAMES)]

    return FlatModel()


def analyzer(services: Services, crop_check: bool = False, **yolo: Any) -> ObjectsAnalyzer:
    settings = services.settings.model_copy(
        update={"objects_yolo": YoloSettings(**yolo), "objects_crop_check": crop_check}
    )
    found = ObjectsAnalyzer(services.store, settings)
    found.load()
    return found


# --- the letterbox and decoding (pure) ---------------------------------------------------------------------


def test_letterbox_centres_on_grey_after_resizing() -> None:
    array, fit = letterbox(scene(), SIZE, SIZE, fill=(114, 114, 114), centre=True)
    assert array.shape == (SIZE, SIZE, 3) and array.dtype == np.float32
    assert fit == Fit(2.0, 2.0, 0, 16)  # 128 x 64 -> 64 x 32, 16 rows of grey above and below
    assert np.allclose(array[:16], 114 / 255) and np.allclose(array[48:], 114 / 255)
    assert np.allclose(array[16:48, :8], 1.0)  # white image
    strip, fit = letterbox(Image.new("RGB", (16, 75000)), SIZE, SIZE, fill=(114, 114, 114), centre=True)
    assert strip.shape == (SIZE, SIZE, 3) and fit.left == (SIZE - 1) // 2  # never a 75000-px canvas
    wide, fit = letterbox(Image.new("RGB", (200, 100)), 32, 64, centre=True)  # rectangular input (H, W)
    assert wide.shape == (32, 64, 3) and fit == Fit(200 / 64, 100 / 32, 0, 0)


def test_decode_maps_boxes_back_through_the_letterbox() -> None:
    rows = np.zeros((6, 4 + len(NAMES)), np.float32)
    rows[0, :4], rows[0, 4 + 1] = [24, 32, 16, 16], 0.9  # a cat
    rows[1, :4], rows[1, 4 + 1] = [25, 32, 16, 16], 0.8  # the same cat again: suppressed
    rows[2, :4], rows[2, 4 + 4] = [24, 32, 16, 16], 0.7  # a dog in the same place: class-aware, kept
    rows[3, :4], rows[3, 4 + 2] = [8, 40, 4, 4], 0.1  # under the floor
    found = decode(rows, floor=0.25, iou=0.45, gain=(2.0, 2.0), offset=(0.0, 16.0))
    assert [(f.cls, round(f.score, 6)) for f in found] == [(1, 0.9), (4, 0.7)]
    assert (found[0].x0, found[0].y0, found[0].x1, found[0].y1) == (32, 16, 64, 48)
    assert decode(rows, 0.95, 0.45) == [] and len(decode(rows, 0.25, 0.45, limit=1)) == 1


def test_both_output_layouts_are_read() -> None:
    output = np.zeros((4 + len(NAMES), ANCHORS), np.float32)
    assert as_rows(output, 9).shape == (ANCHORS, 9) and as_rows(output.T, 9).shape == (ANCHORS, 9)
    with pytest.raises(ValueError, match="4 \\+ classes = 12"):
        as_rows(output, 12)


# --- class names --------------------------------------------------------------------------------------------


def test_names_from_metadata_files_and_mappings(tmp_path: Path) -> None:
    assert parse_names(literal(str(NAMES))) == tuple(NAMES.values())  # ultralytics writes str(dict)
    assert parse_names(["a", "b"]) == ("a", "b")
    assert parse_names({"names": {"1": "b", "0": "a"}}) == ("a", "b")
    for bad in ({0: "a", 2: "c"}, [], ["a", ""], [1.5], {"x": "a"}, "person"):
        with pytest.raises(ValueError):
            parse_names(bad)
    with pytest.raises(ValueError, match="literal"):
        literal("__import__('os').system('echo no')")  # read, never run
    (tmp_path / "n.txt").write_text("cat\n\nhard hat\n")
    (tmp_path / "n.json").write_text('{"0": "cat", "1": "hard hat"}')
    (tmp_path / "n.yaml").write_text("- cat\n- hard hat\n")
    for suffix in ("txt", "json", "yaml"):
        assert read_class_file(tmp_path / f"n.{suffix}") == ("cat", "hard hat")
    (tmp_path / "bad.yaml").write_text("names: {0: cat, 2: dog}\n")
    with pytest.raises(ConfigError, match=r"FEEDLENS_OBJECTS_YOLO__CLASSES: .*without gaps"):
        read_class_file(tmp_path / "bad.yaml")


def test_class_names_become_everyday_labels() -> None:
    vocabulary = Vocabulary.load()
    assert everyday_label("cat", vocabulary) == "cat"
    assert everyday_label("potted plant", vocabulary) == vocabulary.from_coco("potted plant")[0]  # coco.yaml
    assert everyday_label("Helmets", vocabulary) == "helmet"  # by name or alias, plurals too
    assert everyday_label("traffic_light", vocabulary) == "traffic_light"
    assert everyday_label("hard hat", vocabulary) is None
    assert title("hard_hat") == "Hard Hat" and title("PPE vest") == "PPE Vest"


def test_an_unknown_class_is_reported_under_its_own_name() -> None:
    vocabulary = Vocabulary.load()
    judge = CropJudge(vocabulary, detector_classes(list(NAMES.values()), vocabulary), "yolo:t", relabel=False)
    sighting = Sighting(
        (Candidate(2, 0.7, (0.1, 0.1, 0.5, 0.5)), Candidate(1, 0.6, (0.5, 0.5, 0.9, 0.9))), (None, None)
    )
    hat, cat = to_objects(judged(sighting, judge), judge, None, 0.25, 10)
    assert (hat.id, hat.name, hat.coco, hat.known) == ("hard_hat", "Hard Hat", "hard hat", False)
    assert hat.parents == ()
    assert hat.score == hat.detector_score == 0.7 and hat.detector == "yolo:t"  # its own score
    assert (cat.id, cat.known, cat.detector) == ("cat", True, "yolo:t") and "animal" in cat.parents
    result = ObjectsResult((hat, cat))
    assert ObjectsResult.from_dict(result.to_dict()) == result and result.count("animal") == 1
    with pytest.raises(ValueError, match="COCO"):
        DetectedObject("hard_hat", "Hard Hat", "hard hat", 0.7, Box(0, 0, 1, 1), 0.7)  # centernet's
    with pytest.raises(ValueError, match="parents"):
        DetectedObject(
            "x", "X", "x", 0.7, Box(0, 0, 1, 1), 0.7, parents=("animal",), detector="y", known=False
        )


def test_the_crop_check_of_a_user_model_never_relabels() -> None:
    vocabulary = Vocabulary.load()
    judge = CropJudge(vocabulary, detector_classes(list(NAMES.values()), vocabulary), "yolo:t", relabel=False)
    tabby = np.full(1000, 0.1 / 999)
    tabby[vocabulary.imagenet_wnids.index("n02123045")] = 0.9
    verdict = judge.judge(4, judge.rolled(tabby[None, :])[0])  # a "dog" whose crop is a tabby
    assert verdict.cls == 4 and verdict.check is CropCheck.DOUBTED and "Cat" in verdict.evidence
    assert judge.judge(2, judge.rolled(tabby[None, :])[0]).check is CropCheck.DOUBTED  # hard hat: unlabelled


# --- the analyzer on the tiny models ------------------------------------------------------------------------


def test_the_model_finds_each_square_where_it_was_painted(services: Services, models: Path) -> None:
    objects = analyzer(services, model=models / "tiny-yolo.onnx")
    red, green, blue = objects([scene((255, 0, 0)), scene((0, 255, 0)), scene((0, 0, 255))])
    [cat], [hat], [helmet] = red.objects, green.objects, blue.objects
    for found in (cat, hat, helmet):
        assert found.box.to_pixels(128, 64) == SQUARE.to_pixels(128, 64)
        assert np.allclose([found.box.x0, found.box.y0, found.box.x1, found.box.y1], [0.25, 0.25, 0.5, 0.75])
        assert found.score == found.detector_score == pytest.approx(0.9)  # its own score, not calibrated
        assert found.detector == "yolo:tiny-yolo" and found.check is CropCheck.UNCHECKED
    assert (cat.id, cat.name, cat.coco, cat.known) == ("cat", "Cat", "cat", True) and "pet" in cat.parents
    assert (hat.id, hat.name, hat.coco, hat.known) == ("hard_hat", "Hard Hat", "hard hat", False)
    assert (helmet.id, helmet.coco, helmet.known) == ("helmet", "Helmets", True)
    assert objects([Image.new("RGB", (64, 64), (255, 255, 255))])[0].objects == ()
    [tall] = objects([scene(size=(64, 128))])  # the other orientation: padded left and right
    assert tall.objects[0].box.to_pixels(64, 128) == SQUARE.to_pixels(64, 128)


def test_version_names_the_model_by_its_sha256(services: Services, models: Path) -> None:
    objects = analyzer(services, model=models / "tiny-yolo.onnx", name="mine")
    digest = hashlib.sha256((models / "tiny-yolo.onnx").read_bytes()).hexdigest()[:12]
    assert objects.version.startswith(f"objects-1+yolo:mine@{digest}+efficientnet-lite0-onnx@")
    assert "centernet" not in objects.version and "calibration" not in objects.version
    assert objects.decode_side() == 512  # at least centernet's: the crops want detail
    assert objects([scene()])[0].objects[0].detector == "yolo:mine"


def test_a_dynamic_transposed_model_with_a_class_file_batches(services: Services, models: Path) -> None:
    objects = analyzer(services, model=models / "dynamic.onnx", classes=models / "names.yaml")
    images = [scene((255, 0, 0)), scene((0, 0, 255), (96, 96)), scene((0, 255, 0), (50, 300))]
    batched = objects(images)
    assert batched == [objects([im])[0] for im in images]
    assert [r.objects[0].coco for r in batched] == ["cat", "Helmets", "hard hat"]
    assert "+classes@" in objects.version
    assert analyzer(services, model=models / "dynamic.onnx", classes=models / "names.yaml", image_size=96)(
        images[:1]
    )[0].objects[0].box.to_pixels(128, 64) == SQUARE.to_pixels(128, 64)


def test_the_crop_check_reports_but_leaves_the_score(services: Services, models: Path) -> None:
    objects = analyzer(services, crop_check=True, model=models / "tiny-yolo.onnx", name="checked")
    big = scene(size=(512, 256))
    [result] = objects([big])
    [cat] = result.objects
    assert cat.check in (CropCheck.AGREED, CropCheck.DOUBTED, CropCheck.UNSURE) and cat.evidence
    assert cat.score == cat.detector_score and cat.coco == "cat"  # never relabelled, never rescored
    [strip] = objects([big.resize((16, 2000))])  # an extreme strip still analyses
    assert ObjectsResult.from_dict(strip.to_dict()) == strip


@pytest.mark.parametrize(
    ("model", "extra", "message"),
    [
        ("narrow.onnx", {}, "gives (1, 7, 16) per image, not (1, 4 + classes, anchors) with 4 + 5 classes"),
        ("flat.onnx", {}, "is not a YOLO detector: it takes images tensor(float) (1, 3, 64)"),
        ("notes.onnx", {}, "ONNX Runtime cannot load"),
        ("nameless.onnx", {}, "names no classes in its metadata: set FEEDLENS_OBJECTS_YOLO__CLASSES"),
        (
            "anysize.onnx",
            {},
            "takes images of any size and names none: set FEEDLENS_OBJECTS_YOLO__IMAGE_SIZE",
        ),
        ("tiny-yolo.onnx", {"image_size": 640}, "takes 64 x 64 images, not 640: unset"),
        ("segment.onnx", {}, "is an ultralytics 'segment' model, not a detector"),
        ("nms.onnx", {}, "exported with nms=True"),
    ],
)
def test_a_model_that_does_not_fit_is_one_line_naming_the_setting(
    services: Services, models: Path, model: str, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        analyzer(services, model=models / model, **extra)
    text = refused.value.message
    assert text.startswith("FEEDLENS_OBJECTS_YOLO__MODEL: ") and message in text and "\n" not in text, text


def test_settings_name_the_missing_file(tmp_path: Path, models: Path) -> None:
    with pytest.raises(ConfigError, match="FEEDLENS_OBJECTS_YOLO__MODEL: no such file"):
        load_settings(objects_yolo={"model": tmp_path / "gone.onnx"})
    with pytest.raises(ConfigError, match=r"FEEDLENS_OBJECTS_YOLO__CLASSES: .* is not \.txt"):
        load_settings(objects_yolo={"model": models / "tiny-yolo.onnx", "classes": models / "tiny-yolo.onnx"})
    with pytest.raises(ConfigError, match="__CLASSES is set but FEEDLENS_OBJECTS_YOLO__MODEL is not"):
        load_settings(objects_yolo={"classes": models / "names.yaml"})
    assert not load_settings().objects_yolo.enabled
