"""`text`: OCR with PP-OCRv4 (RapidOCR), word spaces restored, behind a cheap text-presence gate.

Per image: the gate runs the DB text detector alone on a small copy (longer side
`FEEDLENS_TEXT_GATE_SIDE`) and counts pixels the detector believes are text; below
`FEEDLENS_TEXT_GATE_MIN_PIXELS` the image is reported `gated` and recognition is skipped. Otherwise
RapidOCR detects lines on the OCR copy (shorter side `OCR_SIDE`), classifies 0/180 degrees and
recognises them; `SpaceAwareCTCDecode` reads word spaces from the recogniser's space probability. Lines
are put in reading order on deskewed detection quads.

Word spaces: RapidOCR's own sizing enlarges every image's shorter side to 736 for detection, which on small
images (banners, screenshots) yields boxes that split and glue words ("SUMMERSALE50%OFF"); enlarging by at
most `MAX_UPSCALE` instead restores most spaces, the space-aware decoder a few more
(benchmarks/ocr_accuracy.py). Tesseract, alone or supplying spaces per line, measured worse and is not used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.analyzers.text_engines import SpaceAwareCTCDecode, deskewed_anchors, gate_input, gate_score
from feedlens.core.results.geometry import Box
from feedlens.core.results.text import TextLine, TextResult, group_rows
from feedlens.runtime.sessions import InferenceSession, open_session

ENGINE = "ppocr-v4"
# The decoder size is RapidOCR's default detection size (`limit_side_len` 736 on the shorter side): a feed
# post's text is detected at the size it is decoded at, and a larger decode would cost every image when OCR
# is on. Detection and recognition both run on this copy.
OCR_SIDE = 736
# Longest side fed to RapidOCR; longer images (tall screenshots) are scaled down to it, as RapidOCR does.
OCR_MAX_SIDE = 2000
# Smaller images are enlarged towards OCR_SIDE by at most this factor: RapidOCR's own rule (shorter side up
# to 736 whatever it costs) runs a 125x700 banner's detector at 736x4100 for no gain over 2x.
MAX_UPSCALE = 2.0


@dataclass(frozen=True, slots=True)
class _Page:
    """One image: the decoded RGB image and the gate's (1, 3, h, w) input. The OCR-size copy is made only
    for images that pass the gate, so photos without text do not pay for it."""

    image: Image.Image
    gate: np.ndarray


@dataclass(frozen=True, slots=True)
class _Read:
    """What `_forward` found for one page: the gate's score and RapidOCR's lines (None when gated)."""

    gate_score: float
    size: tuple[int, int]  # (width, height) of the OCR-size copy the quads refer to
    lines: list[tuple[np.ndarray, str, float]] | None  # (4x2 quad px, text, confidence)


def _box(quad: np.ndarray, width: int, height: int) -> Box:
    """The upright box around a (4, 2) pixel quad, normalised: it covers rotated text entirely."""
    (x0, y0), (x1, y1) = quad.min(axis=0), quad.max(axis=0)
    return Box.from_pixels(float(x0), float(y0), float(x1), float(y1), width, height)


class TextAnalyzer(Analyzer[list[_Page], TextResult]):
    name = "text"
    code_version = "text-1"
    artifacts = ("ppocr-v4-det-onnx", "ppocr-v4-rec-onnx", "ppocr-mobile-cls-onnx")
    input_size = OCR_SIDE
    result_type = TextResult

    # Proposed settings (class constants until wired into config.py):
    GATE_MIN_ELONGATION = 2.0  # blobs rounder than this (reflections, pupils) are not text
    SPACE_THRESHOLD = 0.1  # space-class probability in a gap between characters that makes a word space

    _gate: InferenceSession
    _ocr: Any  # rapidocr_onnxruntime.RapidOCR (untyped)

    def _load(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        threads = self.settings.threads_per_worker
        det = self.store.path("ppocr-v4-det-onnx")
        self._gate = open_session(det, threads)
        self._ocr = RapidOCR(
            det_model_path=str(det),
            rec_model_path=str(self.store.path("ppocr-v4-rec-onnx")),
            cls_model_path=str(self.store.path("ppocr-mobile-cls-onnx")),
            intra_op_num_threads=threads,
            inter_op_num_threads=1,
            text_score=self.settings.text_min_confidence,
            max_side_len=OCR_MAX_SIDE,
            # preprocess() sets the detection size; "max" at OCR_MAX_SIDE keeps RapidOCR from rescaling.
            det_limit_type="max",
            det_limit_side_len=OCR_MAX_SIDE,
        )
        rec = self._ocr.text_rec
        # The recogniser's ONNX file carries its character list (RapidOCR adds blank and space around it).
        rec.postprocess_op = SpaceAwareCTCDecode(rec.session.get_character_list(), self.SPACE_THRESHOLD)

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> list[_Page]:
        """RGB images -> pages with the gate input (1, 3, h, w) float32, longer side at `text_gate_side`."""
        return [
            _Page(image=im, gate=gate_input(im.convert("RGB"), self.settings.text_gate_side)) for im in images
        ]

    @staticmethod
    def ocr_copy(image: Image.Image) -> np.ndarray:
        """BGR (H, W, 3) uint8 with the shorter side at `OCR_SIDE` (smaller images enlarged by at most
        `MAX_UPSCALE`, the longer side kept within `OCR_MAX_SIDE`): the size the recogniser expects."""
        rgb = image.convert("RGB")
        scale = min(OCR_SIDE / min(rgb.size), MAX_UPSCALE, max(1.0, OCR_MAX_SIDE / max(rgb.size)))
        if scale != 1.0:
            size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
            rgb = rgb.resize(size, Image.Resampling.BICUBIC if scale > 1 else Image.Resampling.BILINEAR)
        return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])  # RapidOCR takes arrays as BGR

    def _forward(self, batch: list[_Page]) -> list[_Read]:
        """Gate every page (one det pass each, sizes differ), then OCR the pages that pass, one at a time:
        RapidOCR batches the lines of one image, not images."""
        reads = []
        for page in batch:
            score = gate_score(self._gate.run({"x": page.gate})[0], self.GATE_MIN_ELONGATION)
            if score < self.settings.text_gate_min_pixels:
                reads.append(_Read(score, page.image.size, None))
                continue
            bgr = self.ocr_copy(page.image)
            found, _ = self._ocr(bgr)
            lines = [(np.asarray(q, dtype=np.float32), str(t), float(c)) for q, t, c in found or ()]
            reads.append(_Read(score, (bgr.shape[1], bgr.shape[0]), lines))
        return reads

    def postprocess(
        self, outputs: list[_Read], images: Sequence[Image.Image], upstream: Upstream
    ) -> list[TextResult]:
        results = []
        for read in outputs:
            if read.lines is None:
                results.append(TextResult.empty(gated=True))
                continue
            width, height = read.size  # normalising by the OCR copy's size makes boxes size-free
            kept = [(quad, text.strip(), conf) for quad, text, conf in read.lines if text.strip()]
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
