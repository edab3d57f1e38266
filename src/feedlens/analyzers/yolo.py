"""YOLO detectors in the ultralytics yolov8 / yolo11 layout: the letterbox, the output decoding (shared by
`body_regions`, whose NudeNet is a YOLOv8n, and the `objects` analyzer) and a user-supplied ONNX export.

Layout. Input (N, 3, H, W) float32 RGB in 0..1: the image resized so it fits H x W (aspect kept), then
padded. Output (N, 4 + nc, A): per anchor `cx, cy, w, h` in input pixels, then nc class scores (already
probabilities); some exporters give it transposed, (N, A, 4 + nc). There is no NMS in the graph.

A user's model (FEEDLENS_OBJECTS_YOLO__*, config.YoloSettings, docs/models.md) is checked when it loads
and a misfit is a one-line ConfigError naming the setting: an unreadable file, an input that is not one
float32 (N, 3, H, W), no size or class names to be found, an output that is not 4 + nc wide. Class names
come from FEEDLENS_OBJECTS_YOLO__CLASSES or from the `names` metadata ultralytics writes into its ONNX
exports (a Python dict literal, read with ast.literal_eval); the size from the input shape, else the
`imgsz` metadata, else FEEDLENS_OBJECTS_YOLO__IMAGE_SIZE. Pre-processing follows ultralytics: longer side
to fit (bilinear), centred on 114 grey.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from PIL import Image

from feedlens.config import YoloSettings
from feedlens.core.errors import ConfigError

GREY = (114, 114, 114)  # ultralytics' letterbox padding
MAX_CANDIDATES = 3000  # boxes over the floor fed to NMS at most, best first (a bound on a noisy model)
MAX_CLASSES = 10_000
MAX_TEXT = 1 << 20  # longest class file or metadata value read, characters
MODEL = "FEEDLENS_OBJECTS_YOLO__MODEL"
CLASSES = "FEEDLENS_OBJECTS_YOLO__CLASSES"
IMAGE_SIZE = "FEEDLENS_OBJECTS_YOLO__IMAGE_SIZE"


@dataclass(frozen=True, slots=True)
class Fit:
    """Where a letterboxed image sits in the model input: image px = (input px - left/top) x gain."""

    gain_x: float
    gain_y: float
    left: int
    top: int


def letterbox(
    image: Image.Image,
    height: int,
    width: int,
    fill: tuple[int, int, int] = (0, 0, 0),
    centre: bool = False,
) -> tuple[np.ndarray, Fit]:
    """Resize so the image fits height x width (aspect kept), then pad with `fill`: centred (ultralytics)
    or right and bottom (NudeNet). Resizing first keeps memory at the model input's whatever the shape: a
    16x75000 strip never becomes a 75000-wide canvas. Returns ((height, width, 3) float32 in 0..1, fit)."""
    scale = min(height / image.height, width / image.width)
    fitted_w = min(width, max(1, round(image.width * scale)))
    fitted_h = min(height, max(1, round(image.height * scale)))
    fitted = image.resize((fitted_w, fitted_h), Image.Resampling.BILINEAR)
    if fitted.mode != "RGB":  # converted after the resize: the small copy, not the whole image
        fitted = fitted.convert("RGB")
    left, top = ((width - fitted_w) // 2, (height - fitted_h) // 2) if centre else (0, 0)
    canvas = Image.new("RGB", (width, height), fill)
    canvas.paste(fitted, (left, top))
    fit = Fit(image.width / fitted_w, image.height / fitted_h, left, top)
    return np.asarray(canvas, dtype=np.float32) / 255.0, fit


def as_rows(output: np.ndarray, width: int) -> np.ndarray:
    """One image's output (4 + nc, A), or transposed (A, 4 + nc), -> (A, 4 + nc) rows (a view)."""
    if output.ndim != 2 or width not in output.shape:
        raise ValueError(f"a YOLO output of {tuple(output.shape)} has no side of 4 + classes = {width}")
    return output.T if output.shape[0] == width else output


@dataclass(frozen=True, slots=True)
class YoloBox:
    """A detection after NMS: class index, score, corners in image pixels (not clipped)."""

    cls: int
    score: float
    x0: float
    y0: float
    x1: float
    y1: float


def decode(
    rows: np.ndarray,
    floor: float,
    iou: float,
    gain: tuple[float, float] = (1.0, 1.0),
    offset: tuple[float, float] = (0.0, 0.0),
    limit: int | None = None,
) -> list[YoloBox]:
    """(A, 4 + nc) rows (`as_rows`) -> class-aware NMS'd boxes in image pixels, in NMS order (best first
    per class). Each anchor is its best class; anchors under `floor` are dropped; boxes map back through
    the letterbox as (input px - offset) x gain. `limit`: at most this many anchors go to NMS."""
    scores = rows[:, 4:]
    classes = scores.argmax(axis=1)
    best = scores[np.arange(len(rows)), classes]
    keep = best >= floor
    if limit is not None and keep.sum() > limit:
        keep = np.zeros(len(rows), dtype=bool)
        keep[np.argsort(-best, kind="stable")[:limit]] = True
    if not keep.any():
        return []
    cx, cy = (rows[keep, 0] - offset[0]) * gain[0], (rows[keep, 1] - offset[1]) * gain[1]
    w, h = rows[keep, 2] * gain[0], rows[keep, 3] * gain[1]
    boxes = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
    kept = cv2.dnn.NMSBoxesBatched(boxes.tolist(), best[keep].tolist(), classes[keep].tolist(), floor, iou)
    found = []
    for k in np.asarray(kept, dtype=int).reshape(-1):
        x, y, bw, bh = boxes[k]
        found.append(YoloBox(int(classes[keep][k]), float(best[keep][k]), x, y, x + bw, y + bh))
    return found


# -- class names ------------------------------------------------------------------------------------------
def parse_names(value: object) -> tuple[str, ...]:
    """Class names from a list, or a dict of 0-based index -> name ({0: 'person', 1: 'bicycle'}), or a
    mapping holding either under `names` (an ultralytics data.yaml). ValueError says what is wrong."""
    if isinstance(value, Mapping) and "names" in value:
        value = value["names"]
    if isinstance(value, Mapping):
        try:
            index = {int(k): v for k, v in value.items()}
        except (TypeError, ValueError):
            raise ValueError("class indices must be integers") from None
        if sorted(index) != list(range(len(index))):
            raise ValueError("class indices must run 0, 1, 2, ... without gaps")
        value = [index[i] for i in range(len(index))]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("expected a list of class names or a {index: name} mapping")
    if len(value) > MAX_CLASSES:
        raise ValueError(f"{len(value)} classes: at most {MAX_CLASSES}")
    if any(isinstance(v, bool) or not isinstance(v, str | int) for v in value):
        raise ValueError("every class name must be text")
    names = tuple(str(v).strip() for v in value)
    if not all(names):
        raise ValueError("every class name must be non-empty")
    return names


def literal(text: str) -> Any:
    """A Python literal from model metadata (ultralytics writes str(dict)); never evaluated as code."""
    if len(text) > MAX_TEXT:
        raise ValueError(f"{len(text)} characters: too long")
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError("not a Python literal") from None


def read_class_file(path: Path) -> tuple[str, ...]:
    """Names from a .txt (one per line), .yaml/.yml or .json file (a list, {index: name} or `names:`)."""
    try:
        if path.stat().st_size > MAX_TEXT:
            raise ConfigError(f"{CLASSES}: {path} is over {MAX_TEXT} bytes: not a list of class names")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{CLASSES}: cannot read {path}: {exc}") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".txt":
            return parse_names([line for line in text.splitlines() if line.strip()])
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
        return parse_names(data)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{CLASSES}: {path}: {problem}") from None


@functools.cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """The file's SHA-256, computed once per file version (size and mtime) in a process."""
    try:
        stat = path.stat()
        return _sha256(path, stat.st_size, stat.st_mtime_ns)
    except OSError as exc:
        raise ConfigError(f"{MODEL}: cannot read {path}: {exc.strerror}") from None


def _shape(arg: Any) -> str:
    return "(" + ", ".join(str(d) for d in arg.shape) + ")"


def _fixed(dim: object) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- a user's model -----------------------------------------------------------------------------------------
class YoloDetector:
    """A user-supplied YOLO ONNX export, loaded and checked on first use (thread-safe). `yolo_detector()`
    shares one per process and settings (the analyzer's version, decode size and runs use the same)."""

    session: Any  # onnxruntime.InferenceSession
    names: tuple[str, ...]
    size: tuple[int, int]  # input (height, width)
    batch: int | None  # the graph's fixed batch, None when any batch goes

    def __init__(self, settings: YoloSettings, threads: int = 1) -> None:
        if settings.model is None:
            raise ValueError(f"no YOLO model is configured ({MODEL})")
        self.settings = settings
        self.path = settings.model
        self.threads = threads
        self.name = settings.name or self.path.stem
        self._loaded = False
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        """`yolo:<name>@<first 12 hex digits of the model file's SHA-256>` (+ the class file's, if any)."""
        version = f"yolo:{self.name}@{sha256_of(self.path)[:12]}"
        if self.settings.classes is not None:
            version += f"+classes@{sha256_of(self.settings.classes)[:12]}"
        return version

    def load(self) -> None:
        """Open and check the model once; a misfit is a ConfigError naming the setting to change."""
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self.session = self._open()
                metadata = dict(self.session.get_modelmeta().custom_metadata_map)
                self._check_metadata(metadata)
                self.names = self._names(metadata)
                self.size, self.batch = self._input(metadata)
                self._transposed = self._probe()
                self._loaded = True

    def _open(self) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_cpu_mem_arena = False  # as the other models: no arena kept at the largest batch
        try:
            return ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises untyped errors for files that are not ONNX graphs
            raise ConfigError(f"{MODEL}: ONNX Runtime cannot load {self.path}: {_first_line(exc)}") from None

    def _check_metadata(self, metadata: Mapping[str, str]) -> None:
        task = metadata.get("task", "detect")
        if task != "detect":
            raise ConfigError(
                f"{MODEL}: {self.path} is an ultralytics '{task}' model, not a detector ('detect')"
            )
        try:
            args = literal(metadata.get("args", "{}"))
        except ValueError:
            args = {}
        if isinstance(args, dict) and args.get("nms"):
            raise ConfigError(
                f"{MODEL}: {self.path} was exported with nms=True; export it without (format=onnx alone)"
            )

    def _names(self, metadata: Mapping[str, str]) -> tuple[str, ...]:
        if self.settings.classes is not None:
            return read_class_file(self.settings.classes)
        if "names" not in metadata:
            raise ConfigError(f"{MODEL}: {self.path} names no classes in its metadata: set {CLASSES}")
        try:
            return parse_names(literal(metadata["names"]))
        except ValueError as exc:
            raise ConfigError(f"{MODEL}: {self.path}: its `names` metadata: {exc}; set {CLASSES}") from None

    def _input(self, metadata: Mapping[str, str]) -> tuple[tuple[int, int], int | None]:
        """(height, width) and the fixed batch of the one float32 (N, 3, H, W) input."""
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].type != "tensor(float)" or len(inputs[0].shape) != 4:
            found = ", ".join(f"{i.name} {i.type} {_shape(i)}" for i in inputs)
            raise ConfigError(
                f"{MODEL}: {self.path} is not a YOLO detector: it takes {found}, not one float32 (N, 3, H, W)"
            )
        batch, channels, height, width = (_fixed(d) for d in inputs[0].shape)
        if channels not in (3, None):
            raise ConfigError(f"{MODEL}: {self.path} takes {channels} colour channels, not 3 (RGB)")
        wanted = self.settings.image_size
        if height is not None and width is not None:
            if wanted is not None and (height, width) != (wanted, wanted):
                raise ConfigError(
                    f"{MODEL}: {self.path} takes {height} x {width} images, not {wanted}: unset {IMAGE_SIZE}"
                )
            return (height, width), batch
        if wanted is not None:
            return (wanted, wanted), batch
        try:
            size = literal(metadata["imgsz"])
            pair = (size, size) if isinstance(size, int) else tuple(size)
            if len(pair) != 2 or not all(isinstance(s, int) and 16 <= s <= 8192 for s in pair):
                raise ValueError
        except (KeyError, ValueError, TypeError):
            raise ConfigError(
                f"{MODEL}: {self.path} takes images of any size and names none: set {IMAGE_SIZE}"
            ) from None
        return (pair[0], pair[1]), batch

    def _probe(self) -> bool:
        """Run one blank image; the output must be (1, 4 + nc, A) or (1, A, 4 + nc). True: transposed."""
        width = 4 + len(self.names)
        try:
            out = np.asarray(self._run(np.zeros((1, 3, *self.size), np.float32)))
        except Exception as exc:  # a graph that loads but cannot run on the input it declares
            raise ConfigError(f"{MODEL}: {self.path} fails on a blank image: {_first_line(exc)}") from None
        if out.ndim != 3 or out.shape[0] != 1 or width not in out.shape[1:]:
            source = CLASSES if self.settings.classes is not None else "its `names` metadata"
            raise ConfigError(
                f"{MODEL}: {self.path} gives {tuple(out.shape)} per image, not (1, 4 + classes, anchors) "
                f"with 4 + {len(self.names)} classes ({source}) = {width}"
            )
        return bool(out.shape[1] != width)

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) -> the first output for those N images, in chunks of the graph's fixed batch."""
        step = self.batch or len(inputs)
        name = self.session.get_inputs()[0].name
        parts = []
        for start in range(0, len(inputs), step):
            chunk = inputs[start : start + step]
            short = step - len(chunk)
            if short:  # a fixed batch larger than what is left: pad with blank images
                chunk = np.concatenate([chunk, np.zeros((short, *chunk.shape[1:]), chunk.dtype)])
            parts.append(np.asarray(self.session.run(None, {name: chunk})[0])[: step - short])
        return np.concatenate(parts)

    def prepare(self, image: Image.Image) -> tuple[np.ndarray, Fit]:
        """An RGB image -> the model's (3, H, W) float32 input, letterboxed on grey, and its fit."""
        self.load()
        array, fit = letterbox(image, *self.size, fill=GREY, centre=True)
        return np.ascontiguousarray(array.transpose(2, 0, 1)), fit

    def detect(self, inputs: np.ndarray, fits: Sequence[Fit], floor: float) -> list[list[YoloBox]]:
        """(N, 3, H, W) from `prepare` -> per image its NMS'd boxes in image pixels."""
        self.load()
        if len(inputs) == 0:
            return []
        out = self._run(inputs)
        width, iou = 4 + len(self.names), self.settings.iou
        found = []
        for raw, fit in zip(out, fits, strict=True):
            rows = raw if self._transposed else raw.T
            if rows.shape[1] != width:
                raise ValueError(f"{self.path} gave {tuple(raw.shape)} for an image, not 4 + nc = {width}")
            gain, offset = (fit.gain_x, fit.gain_y), (float(fit.left), float(fit.top))
            found.append(decode(rows, floor, iou, gain, offset, MAX_CANDIDATES))
        return found


@functools.lru_cache(maxsize=4)
def yolo_detector(settings: YoloSettings, threads: int) -> YoloDetector:
    """The process's one detector for these settings (loaded on first use)."""
    return YoloDetector(settings, threads)
