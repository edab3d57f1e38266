"""Recognition for the `text` analyzer: line crops cut from the OCR copy, turned upright (PP-OCR's 0/180
degree classifier) and read by the PP-OCRv4 recogniser, batched across every line of every image.

A line's recogniser input is its crop at 48 px high, right-padded with zeros to a width that depends on the
crop alone (at least 320, as RapidOCR pads, then the next multiple of 32): the recogniser mixes the whole
row with attention, so a padding that depended on batch-mates would make a line read differently in a batch
than alone. Lines of the same padded width run as one batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from feedlens.analyzers.text_engines import SpaceAwareCTCDecode
from feedlens.runtime.sessions import InferenceSession

REC_HEIGHT = 48
REC_MIN_WIDTH = 320  # RapidOCR's `rec_img_shape` width: shorter lines are padded to it
REC_WIDTH_STEP = 32
REC_MAX_WIDTH = 4800  # 100 heights: a longer line is squeezed (bounds memory on extreme strips)
REC_BATCH_PIXELS = 16 * REC_HEIGHT * 640  # lines per batch x width: ~2 MB of input per run
CLS_SIZE = (48, 192)  # (height, width) of the direction classifier's input
CLS_BATCH = 32
CLS_THRESHOLD = 0.9  # "upside down" must be this sure before a crop is turned (RapidOCR's `cls_thresh`)


def crop_line(bgr: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The (h, w, 3) uint8 upright rectangle under a (4, 2) quad of `bgr` (H, W, 3), warped straight;
    a crop at least 1.5x taller than wide is turned 90 degrees counter-clockwise (vertical text read
    bottom to top)."""
    width = max(1, int(max(np.hypot(*(quad[0] - quad[1])), np.hypot(*(quad[2] - quad[3])))))
    height = max(1, int(max(np.hypot(*(quad[0] - quad[3])), np.hypot(*(quad[1] - quad[2])))))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(quad.astype(np.float32), target)
    crop = cv2.warpPerspective(
        bgr, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC
    )
    return np.ascontiguousarray(np.rot90(crop)) if height >= 1.5 * width else crop


def scaled_width(crop: np.ndarray, height: int, limit: int) -> int:
    """Width of `crop` (h, w, 3) scaled to `height`, at most `limit`."""
    h, w = int(crop.shape[0]), int(crop.shape[1])
    return max(1, min(limit, math.ceil(height * w / h)))


def padded_width(crop: np.ndarray) -> int:
    """The recogniser input width for one crop: its width at 48 px high, at least `REC_MIN_WIDTH`, rounded
    up to a multiple of `REC_WIDTH_STEP` (a function of the crop alone, see the module docstring)."""
    width = max(REC_MIN_WIDTH, scaled_width(crop, REC_HEIGHT, REC_MAX_WIDTH))
    return -(-width // REC_WIDTH_STEP) * REC_WIDTH_STEP


def _normalised(crop: np.ndarray, height: int, width: int, limit: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (3, height, width) float32 in [-1, 1], the crop resized to `height` (width at
    most `limit`) and zero-padded on the right."""
    resized = cv2.resize(crop, (scaled_width(crop, height, limit), height))
    out = np.zeros((3, height, width), dtype=np.float32)
    out[:, :, : resized.shape[1]] = resized.transpose(2, 0, 1) / 127.5 - 1.0
    return out


class LineReader:
    """Direction classifier + recogniser sessions and the space-aware decoder, run over many crops."""

    def __init__(self, cls: InferenceSession, rec: InferenceSession, decoder: SpaceAwareCTCDecode) -> None:
        self.cls, self.rec, self.decoder = cls, rec, decoder

    def upright(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Crops the classifier is sure are upside down, turned 180 degrees; the others as they are."""
        out = list(crops)
        h, w = CLS_SIZE
        for start in range(0, len(out), CLS_BATCH):
            chunk = out[start : start + CLS_BATCH]
            batch = np.stack([_normalised(c, h, w, w) for c in chunk])  # (n, 3, 48, 192)
            probs = self.cls.run({"x": batch})[0]  # (n, 2): 0 and 180 degrees
            for k, p in enumerate(probs):
                if p.argmax() == 1 and p[1] > CLS_THRESHOLD:
                    out[start + k] = cv2.rotate(chunk[k], cv2.ROTATE_180)
        return out

    def read(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """Upright crops -> (text, mean character probability) each, in the order given. Crops are
        grouped by padded width so that each batch holds no padding beyond its own rounding."""
        results: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        widths = [padded_width(c) for c in crops]
        for width in sorted(set(widths)):
            members = [i for i, w in enumerate(widths) if w == width]
            step = max(1, REC_BATCH_PIXELS // (REC_HEIGHT * width))
            for start in range(0, len(members), step):
                chunk = members[start : start + step]
                batch = np.stack([_normalised(crops[i], REC_HEIGHT, width, REC_MAX_WIDTH) for i in chunk])
                probs = self.rec.run({"x": batch})[0]  # (n, width / 8, classes)
                for i, p in zip(chunk, probs, strict=True):
                    results[i] = self.decoder.decode_one(p)
        return results
