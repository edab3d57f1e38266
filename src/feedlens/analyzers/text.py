"""`text`: OCR with the PP-OCRv4 models (detector, 0/180 degree classifier, recogniser), word spaces
restored, text looked for where it can be and detected once.

Per image (docs/analyzers.md, `text`):

1. The gate (analyzers/text_gate.py) decides from cheap evidence first: stroke statistics on a small grey
   copy say whether anything could be text at all (flat graphics, blur: no detector runs); then the DB
   detector over the gate copy (longer side `text_gate_side`). Fewer than `text_gate_min_pixels` text
   pixels: `gated`, no recognition. (A quicker form, half size plus small-text proposals, is kept behind
   `QUICK_GATE`, off.)
2. The gate's lines say where to look: when all are large enough on its map (`text_detect.SMALL_TEXT_PX`)
   the detector reads the OCR copy (shorter side 736) only around them, otherwise the whole OCR copy. An
   image the classifier already sees as text-bearing (`labels`: a web site, a menu, a sign ...) skips the
   gate and is detected once on the OCR copy.
3. Lines of every image in the batch are turned upright and read together (analyzers/text_recognize.py);
   `SpaceAwareCTCDecode` reads word spaces from the recogniser's space probability. Lines are put in
   reading order on deskewed detection quads.

Word spaces: RapidOCR's own sizing enlarges every image's shorter side to 736 for detection, which on small
images (banners, screenshots) yields boxes that split and glue words ("SUMMERSALE50%OFF"); enlarging by at
most `MAX_UPSCALE` instead restores most spaces, the space-aware decoder a few more
(benchmarks/ocr_accuracy.py). Tesseract, alone or supplying spaces per line, measured worse and is not used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.analyzers.text_detect import (
    MAX_UPSCALE,
    OCR_MAX_SIDE,
    OCR_SIDE,
    SMALL_TEXT_PX,
    QuadFinder,
    det_tensor,
    letterbox,
    line_heights,
    ocr_copy,
    ocr_size,
)
from feedlens.analyzers.text_engines import (
    SpaceAwareCTCDecode,
    deskewed_anchors,
    gate_copy,
    gate_score,
    gate_tensor,
)
from feedlens.analyzers.text_gate import (
    Evidence,
    detect_regions,
    grid_rects,
    stroke_evidence,
    text_class_score,
)
from feedlens.analyzers.text_recognize import LineReader, crop_line
from feedlens.core.results.geometry import Box
from feedlens.core.results.labels import LabelsResult
from feedlens.core.results.text import TextLine, TextResult, group_rows
from feedlens.runtime.sessions import InferenceSession, open_session

__all__ = ["MAX_UPSCALE", "OCR_MAX_SIDE", "OCR_SIDE", "Stage", "TextAnalyzer", "TextRead"]

ENGINE = "ppocr-v4"


class Stage(StrEnum):
    """Which step decided an image: gated by one of the first three, read after one of the last three."""

    BLANK = "blank"  # no character-sized strokes at all: no detector ran
    QUICK = "quick"  # the half-size detector and the proposals found no text
    FULL = "full"  # the detector over the whole gate copy found no text
    GATE_LINES = "gate lines"  # detected on the OCR copy around the gate's lines only
    OCR_LINES = "ocr lines"  # the gate found small text: the whole OCR copy detected
    DIRECT = "direct"  # the classifier sees text: detected once on the OCR copy, no gate


@dataclass(frozen=True, slots=True)
class _Page:
    """One image: the decoded RGB image, its gate copy (h, w, 3) uint8 RGB (longer side
    `text_gate_side`) and the classifier's text-class probability (None without `labels`)."""

    image: Image.Image
    small: np.ndarray
    text_classes: float | None


@dataclass(frozen=True, slots=True)
class TextRead:
    """What the analyzer found for one image before results are built: the deciding `stage`, the gate's
    text-pixel score (None when no gate detector ran), the (width, height) of the OCR copy the quads refer
    to, and the lines (4x2 quad px, text, confidence), None when gated."""

    stage: Stage
    gate_score: float | None
    size: tuple[int, int]
    lines: tuple[tuple[np.ndarray, str, float], ...] | None

    @property
    def gated(self) -> bool:
        return self.lines is None


@dataclass(frozen=True, slots=True)
class _Plan:
    """The gate's verdict on one page: quads (K, 4, 2) in OCR-copy px to read, or None when gated."""

    stage: Stage
    score: float | None
    quads: np.ndarray | None


def _box(quad: np.ndarray, width: int, height: int) -> Box:
    """The upright box around a (4, 2) pixel quad, normalised: it covers rotated text entirely."""
    (x0, y0), (x1, y1) = quad.min(axis=0), quad.max(axis=0)
    return Box.from_pixels(float(x0), float(y0), float(x1), float(y1), width, height)


class TextAnalyzer(Analyzer[list[_Page], TextResult]):
    name = "text"
    code_version = "text-2"
    artifacts = ("ppocr-v4-det-onnx", "ppocr-v4-rec-onnx", "ppocr-mobile-cls-onnx")
    input_size = OCR_SIDE
    result_type = TextResult
    # The classifier's text-bearing classes are cheap evidence, when labels runs anyway (never a reason
    # to run it: a text-only request stays text-only).
    reads = ("labels",)

    GATE_MIN_ELONGATION = 2.0  # blobs rounder than this (reflections, pupils) are not text
    SPACE_THRESHOLD = 0.1  # space-class probability in a gap between characters that makes a word space
    # The quick gate form (half-size detector + proposals) missed large low-contrast words that the
    # whole-copy detector finds (white on cream in benchmarks/ocr_speed.py's clip art): off until it is
    # measured to lose nothing.
    QUICK_GATE = False

    _det: InferenceSession
    _reader: LineReader
    _quads: QuadFinder

    def _load(self) -> None:
        threads = self.settings.threads_per_worker
        rec = open_session(self.store.path("ppocr-v4-rec-onnx"), threads)
        # The recogniser's ONNX file carries its character list (the decoder adds blank and space).
        characters = _character_list(self.store.path("ppocr-v4-rec-onnx"))
        decoder = SpaceAwareCTCDecode(characters, self.SPACE_THRESHOLD)
        cls = open_session(self.store.path("ppocr-mobile-cls-onnx"), threads)
        self._det = open_session(self.store.path("ppocr-v4-det-onnx"), threads)
        self._reader = LineReader(cls, rec, decoder)
        self._quads = QuadFinder()

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> list[_Page]:
        """RGB images -> pages with their gate copies (longer side `text_gate_side`) and the classifier's
        text-class probability from `upstream["labels"]` when present."""
        labels: Sequence[LabelsResult | None] = upstream.get("labels") or [None] * len(images)
        side = self.settings.text_gate_side
        return [
            _Page(image=im, small=gate_copy(im, side), text_classes=text_class_score(lab))
            for im, lab in zip(images, labels, strict=True)
        ]

    @staticmethod
    def ocr_copy(image: Image.Image) -> np.ndarray:
        """BGR (H, W, 3) uint8 at the OCR size (`text_detect.ocr_copy`)."""
        return ocr_copy(image)

    def reads_of(self, images: Sequence[Image.Image], upstream: Upstream | None = None) -> list[TextRead]:
        """What each image went through and what was read, without building results (benchmarks, tests)."""
        self.load()
        part = {n: list((upstream or {}).get(n) or [None] * len(images)) for n in self.upstream_names}
        return self._forward(self.preprocess(images, part))

    def _forward(self, batch: list[_Page]) -> list[TextRead]:
        """Gate each page, then read the lines of every page that passed in one batched pass."""
        plans = [self._plan(page) for page in batch]
        crops: list[np.ndarray] = []
        owners: list[int] = []
        sizes: list[tuple[int, int]] = []
        for k, (page, plan) in enumerate(zip(batch, plans, strict=True)):
            sizes.append(ocr_size(*page.image.size))
            if plan.quads is None or not len(plan.quads):
                continue
            bgr = ocr_copy(page.image)
            crops.extend(crop_line(bgr, q) for q in plan.quads)
            owners.extend([k] * len(plan.quads))
        texts = self._reader.read(self._reader.upright(crops)) if crops else []
        found: list[list[tuple[np.ndarray, str, float]]] = [[] for _ in batch]
        counters = dict.fromkeys(range(len(batch)), 0)
        for k, (text, conf) in zip(owners, texts, strict=True):
            quads = plans[k].quads
            assert quads is not None  # a page with crops has quads
            quad = quads[counters[k]]
            counters[k] += 1
            if text.strip() and conf >= self.settings.text_min_confidence:
                found[k].append((quad, text, conf))
        return [
            TextRead(plan.stage, plan.score, size, None if plan.quads is None else tuple(lines))
            for plan, size, lines in zip(plans, sizes, found, strict=True)
        ]

    def _plan(self, page: _Page) -> _Plan:
        """The gate for one page (see the module docstring): gated, or the quads to read."""
        evidence = stroke_evidence(page.small, page.text_classes)
        if evidence.text_ish:
            return _Plan(Stage.DIRECT, None, self._detect_ocr(page.image))
        if evidence.blank:
            return _Plan(Stage.BLANK, None, None)
        if evidence.textured or not self.QUICK_GATE:
            return self._full_gate(page)
        return self._quick_gate(page, evidence)

    def _full_gate(self, page: _Page) -> _Plan:
        """The detector over the whole gate copy; no text there: gated (`Stage.FULL`)."""
        prob = self._det.run({"x": gate_tensor(page.small)})[0][0, 0]
        score = gate_score(prob[None, None], self.GATE_MIN_ELONGATION)
        if score < self.settings.text_gate_min_pixels:
            return _Plan(Stage.FULL, score, None)
        return self._lines(page, prob, score)

    def _quick_gate(self, page: _Page, evidence: Evidence) -> _Plan:
        """Half-size detector over the whole image plus full-size detector on the proposals; no text
        there: gated (`Stage.QUICK`)."""
        h, w = page.small.shape[:2]
        half = cv2.resize(page.small, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
        low = self._det.run({"x": gate_tensor(half)})[0][0, 0][: half.shape[0], : half.shape[1]]
        merged = detect_regions(self._det, gate_tensor(page.small), evidence.proposals)
        merged[:h, :w] = np.maximum(merged[:h, :w], cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR))
        score = gate_score(merged[None, None], self.GATE_MIN_ELONGATION)
        if score < self.settings.text_gate_min_pixels:
            return _Plan(Stage.QUICK, score, None)
        # Quads from the half-size map are too coarse to cut from (letters clipped, lines split): the
        # text-bearing page is detected over the whole gate copy, as pages with text were before.
        return self._lines(page, self._det.run({"x": gate_tensor(page.small)})[0][0, 0], score)

    def _lines(self, page: _Page, prob: np.ndarray, score: float) -> _Plan:
        """Text found; `prob` (H, W) is the detector's map over the padded gate copy. When every line on it
        is large, the detector reads the OCR copy around those lines only; otherwise (small text, which
        the gate copy may have missed elsewhere) the whole OCR copy."""
        h, w = page.small.shape[:2]
        dest = ocr_size(*page.image.size)
        quads = self._quads(prob[:h, :w], dest)
        if self._large(quads, h / dest[1]):
            return _Plan(Stage.GATE_LINES, score, self._detect_around(page.image, quads))
        return _Plan(Stage.OCR_LINES, score, self._detect_ocr(page.image))

    def _detect_around(self, image: Image.Image, quads: np.ndarray) -> np.ndarray:
        """The detector on the OCR copy only around `quads` (K, 4, 2) OCR-copy px, each widened by its
        line height on every side and snapped to the detector's grid -> quads (K', 4, 2) OCR-copy px.

        Why not cut lines straight from the gate's quads: at the gate's resolution their boxes come out
        ~30% too tall and split lines, and the recogniser then misreads capitals as small letters
        (benchmarks/ocr_speed.py measured 88% of words on promo photos against 96%)."""
        bgr = ocr_copy(image)
        if letterbox(bgr)[1]:
            return self._detect_ocr(image)
        tensor = det_tensor(bgr)
        th, tw = tensor.shape[2:]
        sx, sy = tw / bgr.shape[1], th / bgr.shape[0]
        rects = []
        for quad, height in zip(quads, line_heights(quads), strict=True):
            (x0, y0), (x1, y1) = quad.min(axis=0) - height, quad.max(axis=0) + height
            rects.append((int(x0 * sx), int(y0 * sy), int(x1 * sx) + 1, int(y1 * sy) + 1))
        prob = detect_regions(self._det, tensor, grid_rects(rects, (th, tw)))
        return self._quads(prob, (bgr.shape[1], bgr.shape[0]))

    @staticmethod
    def _large(quads: np.ndarray, scale: float) -> bool:
        """Quads (OCR-copy px) found, and every one at least `SMALL_TEXT_PX` tall on the map (`scale`:
        map px per OCR-copy px) that found it."""
        return bool(len(quads)) and bool((line_heights(quads) * scale >= SMALL_TEXT_PX).all())

    def _detect_ocr(self, image: Image.Image) -> np.ndarray:
        """One detection on the OCR copy (letterboxed when a strip) -> quads (K, 4, 2) in OCR-copy px."""
        bgr, top = letterbox(ocr_copy(image))
        prob = self._det.run({"x": det_tensor(bgr)})[0][0, 0]
        quads = self._quads(prob, (bgr.shape[1], bgr.shape[0]))
        if top:
            height = bgr.shape[0] - 2 * top
            quads[:, :, 1] = np.clip(quads[:, :, 1] - top, 0, max(0, height - 1))
        return quads

    def postprocess(
        self, outputs: list[TextRead], images: Sequence[Image.Image], upstream: Upstream
    ) -> list[TextResult]:
        results = []
        for read in outputs:
            if read.lines is None:
                results.append(TextResult.empty(gated=True))
                continue
            width, height = read.size  # normalising by the OCR copy's size makes boxes size-free
            kept = [(quad, text.strip(), conf) for quad, text, conf in read.lines]
            lines = [
                TextLine(
                    text=text,
                    confidence=round(min(max(conf, 0.0), 1.0), 4),
                    box=_box(quad, width, height),
                    engine=ENGINE,
                )
                for quad, text, conf in kept
            ]
            rows = group_rows(deskewed_anchors([quad for quad, _, _ in kept]))
            results.append(TextResult.of([[lines[i] for i in row] for row in rows]))
        return results


def _character_list(path: Path) -> list[str]:
    """The recogniser's class names, kept in its ONNX metadata (`character`, one per line)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # metadata only
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    characters: str = session.get_modelmeta().custom_metadata_map["character"]
    return characters.splitlines()
