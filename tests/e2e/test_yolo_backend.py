"""A user's YOLO detector in a real server: `feedlens serve` with FEEDLENS_OBJECTS_YOLO__MODEL pointing at a
tiny ultralytics-style export, then POST /v1/analyze with analyzers=objects finds the object where it was
painted, named in everyday words (or by its own name when the vocabulary has none), with the model's own
score and its SHA-256 in the version; `labels` draws on those objects. A model that does not fit is one
line and exit code 2.

No YOLO weights exist offline, so the module exports its own with torch, with an ultralytics yolov8 /
yolo11 export's signature (`images` (1, 3, 64, 64) -> `output0` (1, 4 + 5, 16)) and metadata (`names` as a
dict literal, `imgsz`). Two 1x1 convolutions with hand-set weights turn a pure red or green area into a
mask; anchor 0 holds the red mask's box (class `cat`), anchor 1 the green one's (`hard hat`, no label in
the vocabulary), with score 0.9 (tests/analyzers/test_objects_yolo.py has the unit tests). The module
runs a server of its own, switched to `labels,objects` (nothing else is needed: it starts faster).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e.server import FEEDLENS, RELAXED_LIMITS, Server, free_port
from tests.support.api import auth
from tests.support.config_errors import assert_one_line_error
from tests.support.yolo import SIZE, export, tiny_yolo

pytestmark = pytest.mark.slow

# the support detector's red square is a cat, its green one a hard hat (a class no label has)
NAMES = {0: "person", 1: "cat", 2: "hard hat", 3: "dog", 4: "bicycle"}
WORKSPACE = "yolo-backend"


def _export(path: Path, classes: int) -> Path:
    """The tiny detector, `classes` score rows wide (5 fits NAMES), with ultralytics' metadata."""
    metadata = {"task": "detect", "imgsz": [SIZE, SIZE], "names": NAMES, "stride": 32}
    return export(tiny_yolo(classes), path, (1, 3, SIZE, SIZE), dynamic=False, metadata=metadata)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("yolo-models")
    _export(folder / "tiny-yolo.onnx", len(NAMES))
    _export(folder / "narrow.onnx", 3)  # 4 + 3 wide, while its metadata names 5 classes
    return folder


def yolo_env(model: Path) -> dict[str, str]:
    return {"FEEDLENS_OBJECTS_YOLO__MODEL": str(model), "FEEDLENS_ANALYZERS": "labels,objects"}


@pytest.fixture(scope="module")
def server(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {**RELAXED_LIMITS, **yolo_env(models / "tiny-yolo.onnx")}
    process = Server(tmp_path_factory.mktemp("yolo-server"), env)
    yield process.start(timeout=300)
    process.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as http:
        yield http


@pytest.fixture(scope="module")
def key(server: Server) -> str:
    return server.key(WORKSPACE, "read")


def _png(colour: tuple[int, int, int]) -> bytes:
    """256 x 128 white, one square at x 64-128, y 32-96 (x 0.25-0.5, y 0.25-0.75) in `colour`."""
    image = Image.new("RGB", (256, 128), (255, 255, 255))
    image.paste(colour, (64, 32, 128, 96))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _analyze(client: httpx.Client, key: str, data: bytes, analyzers: str) -> dict[str, Any]:
    response = client.post(
        "/v1/analyze", headers=auth(key), files={"file": ("x.png", data)}, data={"analyzers": analyzers}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_user_model_finds_the_object_where_it_was_painted(
    client: httpx.Client, key: str, models: Path
) -> None:
    body = _analyze(client, key, _png((255, 0, 0)), "objects")
    result = body["results"]["objects"]
    assert result["schema"] == "feedlens.objects/2"
    [cat] = result["objects"]
    assert (cat["id"], cat["name"], cat["coco"], cat["known"]) == ("cat", "Cat", "cat", True)
    assert cat["detector"] == "yolo:tiny-yolo" and "animal" in cat["parents"]
    box = [cat["box"][k] for k in ("x0", "y0", "x1", "y1")]
    assert box == pytest.approx([0.25, 0.25, 0.5, 0.75], abs=1e-5)  # through the letterbox and back
    assert cat["score"] == cat["detector_score"] == pytest.approx(0.9)  # the model's own score
    digest = hashlib.sha256((models / "tiny-yolo.onnx").read_bytes()).hexdigest()[:12]
    assert f"+yolo:tiny-yolo@{digest}+" in body["versions"]["objects"]
    assert "centernet" not in body["versions"]["objects"]


def test_a_class_the_vocabulary_lacks_keeps_its_own_name(client: httpx.Client, key: str) -> None:
    [hat] = _analyze(client, key, _png((0, 255, 0)), "objects")["results"]["objects"]["objects"]
    assert (hat["id"], hat["name"], hat["coco"], hat["known"], hat["parents"]) == (
        "hard_hat",
        "Hard Hat",
        "hard hat",
        False,
        [],
    )


def test_labels_draw_on_the_user_models_objects(client: httpx.Client, key: str) -> None:
    results = _analyze(client, key, _png((255, 0, 0)), "labels,objects")["results"]
    labels = {label["id"]: label for label in results["labels"]["labels"]}
    assert "objects" in labels["cat"]["sources"] and labels["cat"]["score"] >= 0.9
    hat = _analyze(client, key, _png((0, 255, 0)), "labels,objects")["results"]
    assert "hard_hat" not in {label["id"] for label in hat["labels"]["labels"]}  # no such everyday label


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FEEDLENS, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_missing_model_stops_serve(models: Path, tmp_path: Path) -> None:
    env = {"FEEDLENS_DATA_DIR": str(tmp_path), **yolo_env(models / "gone.onnx")}
    assert_one_line_error(
        _run(env, "serve", "--port", str(free_port())), "FEEDLENS_OBJECTS_YOLO__MODEL: no such file"
    )


def test_a_model_of_the_wrong_width_stops_analyze(models: Path, tmp_path: Path) -> None:
    image = tmp_path / "red.png"
    image.write_bytes(_png((255, 0, 0)))
    env = {"FEEDLENS_DATA_DIR": str(tmp_path), **yolo_env(models / "narrow.onnx")}
    result = _run(env, "analyze", str(image), "--analyzers", "objects")
    assert_one_line_error(result, "FEEDLENS_OBJECTS_YOLO__MODEL: ")
    assert "with 4 + 5 classes (its `names` metadata) = 9" in result.stderr


def test_a_model_of_the_wrong_width_stops_serve(models: Path, tmp_path: Path) -> None:
    env = {"FEEDLENS_DATA_DIR": str(tmp_path), **yolo_env(models / "narrow.onnx")}
    assert_one_line_error(_run(env, "serve", "--port", str(free_port())), "FEEDLENS_OBJECTS_YOLO__MODEL: ")
