"""The pipeline over real files with the real model, plus fast fault-isolation checks with a fake analyzer."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.core.errors import ModelStoreError
from feedlens.core.results import LabelsResult
from feedlens.services.factory import Services
from feedlens.services.pipeline import Pipeline, iter_image_files
from tests.conftest import encode


@pytest.fixture()
def mixed_dir(sample_dir: Path, tmp_path: Path) -> Path:
    """A folder of good photos (one nested) and bad files of every kind."""
    root = tmp_path / "mixed"
    (root / "nested").mkdir(parents=True)
    shutil.copy(sample_dir / "chelsea.png", root / "cat.png")
    shutil.copy(sample_dir / "coffee.png", root / "nested" / "coffee.png")
    shutil.copy(sample_dir / "grace_hopper.jpg", root / "hopper.jpg")
    (root / "empty.jpg").write_bytes(b"")
    (root / "random.jpg").write_bytes(bytes(range(256)) * 20)
    jpeg = (sample_dir / "grace_hopper.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (root / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    (root / "tiny.png").write_bytes(encode(Image.new("RGB", (2, 2)), "PNG"))
    (root / ".hidden.jpg").write_bytes(b"skipped")
    return root


EXPECTED_ERRORS = {
    "empty.jpg": "empty",
    "random.jpg": "unsupported_format",
    "truncated.jpg": "truncated",
    "drawing.svg": "unsupported_format",
    "tiny.png": "too_small",
}


def test_mixed_folder_analyses_every_good_file(services: Services, mixed_dir: Path) -> None:
    pipeline = services.pipeline(["labels"])
    files = list(iter_image_files([mixed_dir]))
    assert not any(f.name.startswith(".") for f in files)
    reports = list(pipeline.analyze_paths(files, batch_size=3))  # batches mix good and bad files
    assert [r.path for r in reports] == [str(f) for f in files]
    by_name = {Path(r.path).name: r for r in reports}
    for name, code in EXPECTED_ERRORS.items():
        assert by_name[name].error is not None and by_name[name].error["code"] == code, name
    for name in ("cat.png", "coffee.png", "hopper.jpg"):
        report = by_name[name]
        assert report.ok and isinstance(report.results["labels"], LabelsResult)
        assert report.sha256 and report.width and report.height
    cat = by_name["cat.png"].results["labels"].label("cat")  # type: ignore[attr-defined]
    assert cat is not None and cat.score >= 0.5
    assert pipeline.stats.images == len(files) and pipeline.stats.failed == len(EXPECTED_ERRORS)


def test_analyze_one_from_bytes(services: Services, sample_dir: Path) -> None:
    report = services.pipeline(["labels"]).analyze_one(
        (sample_dir / "coffee.png").read_bytes(), name="upload"
    )
    assert report.ok and report.path == "upload" and report.format == "png"


class _Flaky(Analyzer[list[Image.Image], LabelsResult]):
    """Fails on any all-black image; used to check that one bad image cannot sink its batch."""

    name = "flaky"
    code_version = "0"
    artifacts = ()
    input_size = 32
    result_type = LabelsResult
    error: type[Exception] = RuntimeError

    def _load(self) -> None:
        pass

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> list[Image.Image]:
        return list(images)

    def _forward(self, batch: list[Image.Image]) -> list[Image.Image]:
        if any(im.getextrema() == ((0, 0), (0, 0), (0, 0)) for im in batch):
            raise self.error("black image")
        return batch

    def postprocess(
        self, outputs: Any, images: Sequence[Image.Image], upstream: Upstream
    ) -> list[LabelsResult]:
        return [LabelsResult.empty() for _ in images]


def test_analyzer_failure_is_isolated_to_its_image(services: Services, tmp_path: Path) -> None:
    pipeline = Pipeline(services.decoder, [_Flaky(services.store, services.settings)], threads=1)
    files = []
    for i, colour in enumerate([(9, 9, 9), (0, 0, 0), (200, 0, 0)]):
        files.append(tmp_path / f"{i}.png")
        files[-1].write_bytes(encode(Image.new("RGB", (64, 64), colour), "PNG"))
    one_batch = list(pipeline.analyze_paths(files, batch_size=3))
    assert [r.ok for r in one_batch] == [True, False, True]
    assert one_batch[1].error == {"code": "analyzer_failed", "message": "flaky: black image"}


def test_model_store_errors_are_not_swallowed(services: Services) -> None:
    class Broken(_Flaky):
        error = ModelStoreError

    pipeline = Pipeline(services.decoder, [Broken(services.store, services.settings)], threads=1)
    with pytest.raises(ModelStoreError):
        pipeline.analyze_one(encode(Image.new("RGB", (64, 64)), "PNG"))


class _Count(_Flaky):
    """An internal stage: the number of distinct colours, as a fake 'detector' others build on."""

    name = "count"
    internal = True

    def _forward(self, batch: list[Image.Image]) -> list[Image.Image]:
        return batch

    def postprocess(
        self, outputs: Any, images: Sequence[Image.Image], upstream: Upstream
    ) -> list[LabelsResult]:
        from feedlens.core.results import Label

        return [
            LabelsResult(labels=(Label("colours", "Colours", 1 / len(im.getcolors(10**6) or [1])),))
            for im in images
        ]


class _UsesCount(_Flaky):
    name = "uses_count"
    depends_on = ("count",)
    seen: ClassVar[list[float]] = []

    def postprocess(
        self, outputs: Any, images: Sequence[Image.Image], upstream: Upstream
    ) -> list[LabelsResult]:
        self.seen.extend(r.labels[0].score for r in upstream["count"])
        return [LabelsResult.empty() for _ in images]


def test_dependencies_get_upstream_results_and_internal_stages_stay_hidden(
    services: Services, tmp_path: Path
) -> None:
    analyzers = [_Count(services.store, services.settings), _UsesCount(services.store, services.settings)]
    pipeline = Pipeline(services.decoder, analyzers, threads=1)
    one = tmp_path / "one.png"
    one.write_bytes(encode(Image.new("RGB", (64, 64), (5, 5, 5)), "PNG"))
    two = tmp_path / "two.png"
    image = Image.new("RGB", (64, 64), (5, 5, 5))
    image.paste((200, 0, 0), (0, 0, 32, 64))
    two.write_bytes(encode(image, "PNG"))
    reports = list(pipeline.analyze_paths([one, two], batch_size=2))
    assert _UsesCount.seen == [1.0, 0.5]  # each image got its own upstream result, in order
    assert all(set(r.results) == {"uses_count"} for r in reports)  # the internal stage is not reported
    with pytest.raises(ValueError, match="needs results of"):
        analyzers[1]([image])  # a dependent called without its upstream fails loudly


def test_every_analyzer_copes_with_degenerate_images(services: Services, tmp_path: Path) -> None:
    cases = {
        "1x1.png": Image.new("RGB", (1, 1)),
        "5x500.png": Image.new("RGB", (5, 500), (255, 255, 255)),
        "black.jpg": Image.new("RGB", (640, 480)),
        "white.png": Image.new("RGB", (640, 480), (255, 255, 255)),
        "tall.png": Image.new("RGB", (20, 500), (120, 30, 200)),  # 25:1, the default limit
        "wide.jpg": Image.new("RGB", (400, 16), (10, 200, 10)),
        "strip.png": Image.new("RGB", (16, 3000), (10, 200, 10)),
    }
    files = []
    for name, image in cases.items():
        files.append(tmp_path / name)
        files[-1].write_bytes(encode(image, "JPEG" if name.endswith("jpg") else "PNG"))
    pipeline = services.pipeline()  # every default analyzer
    by_name = {Path(r.path).name: r for r in pipeline.analyze_paths(files, batch_size=4)}
    assert by_name["1x1.png"].error is not None and by_name["1x1.png"].error["code"] == "too_small"
    assert by_name["5x500.png"].error is not None and by_name["5x500.png"].error["code"] == "too_small"
    strip = by_name["strip.png"].error
    assert strip is not None and strip["code"] == "extreme_aspect_ratio"
    for name in ("black.jpg", "white.png", "tall.png", "wide.jpg"):
        report = by_name[name]
        assert report.ok, (name, report.error)
        assert set(report.results) == set(pipeline.report)
        assert report.results["safety"].verdict.value == "safe"
        assert report.results["faces"].count == 0
        assert report.results["text"].full_text == ""
