"""Text detection for the `text` analyzer: the sizes images are read at, the PP-OCRv4 DB detector's input,
and its probability map turned into line quads (in OCR-copy pixels).

Two sizes matter. The *gate copy* (longer side `text_gate_side`, 480) is what the detector sees first; the
*OCR copy* (shorter side 736, small images enlarged at most 2x, longer side at most 2000) is what lines are
cut from for recognition; the detector reads it around the gate's lines, or whole when those are too small
to trust (`SMALL_TEXT_PX`).
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image
from rapidocr_onnxruntime.ch_ppocr_det.utils import DBPostProcess

from feedlens.analyzers.text_engines import DB_THRESH, DET_MEAN, DET_STD

# The decoder size is RapidOCR's default detection size (`limit_side_len` 736 on the shorter side): a feed
# post's text is read at the size it is decoded at.
OCR_SIDE = 736
# Longest side of the OCR copy; longer images (tall screenshots) are scaled down to it, as RapidOCR does.
OCR_MAX_SIDE = 2000
# Smaller images are enlarged towards OCR_SIDE by at most this factor: RapidOCR's own rule (shorter side up
# to 736 whatever it costs) runs a 125x700 banner's detector at 736x4100 for no gain over 2x.
MAX_UPSCALE = 2.0
# RapidOCR letterboxes strips before detecting (black bands above and below): shorter than this ...
LETTERBOX_MIN_HEIGHT = 30
# ... or wider than this many heights.
LETTERBOX_RATIO = 8
# A line whose height on the gate copy is below this many pixels is "small text": the gate may have missed
# more of it elsewhere, so the whole OCR copy is detected rather than the gate's lines' surroundings.
SMALL_TEXT_PX = 9.0
MIN_BOX_SIDE = 3  # quads this thin (OCR-copy px) are specks, as RapidOCR's filter has it


def ocr_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of the OCR copy of a `width` x `height` image: shorter side towards `OCR_SIDE`,
    enlarged by at most `MAX_UPSCALE`, longer side at most `OCR_MAX_SIDE` (never below 1 px)."""
    scale = min(OCR_SIDE / min(width, height), MAX_UPSCALE, OCR_MAX_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def ocr_copy(image: Image.Image) -> np.ndarray:
    """BGR (H, W, 3) uint8 at `ocr_size`: the pixels lines are cut from (and detected on, when small)."""
    rgb = image.convert("RGB")
    size = ocr_size(*rgb.size)
    if size != rgb.size:
        enlarge = size[0] > rgb.width
        rgb = rgb.resize(size, Image.Resampling.BICUBIC if enlarge else Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])


def letterbox(bgr: np.ndarray) -> tuple[np.ndarray, int]:
    """Strips (height <= 30 px or wider than 8 heights) get black bands above and below, as RapidOCR
    gives them, so that the detector sees a page rather than a sliver -> (image, top band height)."""
    h, w = bgr.shape[:2]
    if h > LETTERBOX_MIN_HEIGHT and w <= LETTERBOX_RATIO * h:
        return bgr, 0
    pad = abs(max(w // LETTERBOX_RATIO, LETTERBOX_MIN_HEIGHT) * 2 - h) // 2
    return cv2.copyMakeBorder(bgr, pad, pad, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0)), pad


def det_tensor(bgr: np.ndarray) -> np.ndarray:
    """BGR (H, W, 3) uint8 -> float32 (1, 3, H', W') det input, H' and W' rounded to multiples of 32 by
    resizing (RapidOCR's way for the full-size pass; the gate pads instead, `text_engines.gate_input`)."""
    h, w = bgr.shape[:2]
    size = (max(32, round(w / 32) * 32), max(32, round(h / 32) * 32))
    resized = cv2.resize(bgr, size) if size != (w, h) else bgr
    x = (resized.astype(np.float32) / 255.0 - DET_MEAN) / DET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


class QuadFinder:
    """A DB probability map (H, W) -> line quads (K, 4, 2) float32, clockwise from the top-left, scaled to a
    destination size; RapidOCR's post-processing settings (box score 0.5, unclip 1.6, 2x2 dilation)."""

    def __init__(self) -> None:
        self._post = DBPostProcess(
            thresh=DB_THRESH, box_thresh=0.5, max_candidates=1000, unclip_ratio=1.6, use_dilation=True
        )

    def __call__(self, prob: np.ndarray, dest: tuple[int, int]) -> np.ndarray:
        """`prob` (H, W) covers exactly the image it was computed from; `dest` is (width, height) of the
        image the quads should refer to."""
        width, height = dest
        boxes, _ = self._post(prob[None, None].astype(np.float32, copy=False), (height, width))
        quads = [_clockwise(b.astype(np.float32)) for b in boxes]
        for q in quads:
            q[:, 0] = np.clip(np.floor(q[:, 0]), 0, width - 1)
            q[:, 1] = np.clip(np.floor(q[:, 1]), 0, height - 1)
        kept = [
            q
            for q in quads
            if np.hypot(*(q[1] - q[0])) > MIN_BOX_SIDE and np.hypot(*(q[3] - q[0])) > MIN_BOX_SIDE
        ]
        return np.stack(kept) if kept else np.zeros((0, 4, 2), np.float32)


def _clockwise(points: np.ndarray) -> np.ndarray:
    """Four (x, y) points in any order -> top-left, top-right, bottom-right, bottom-left."""
    by_x = points[np.argsort(points[:, 0], kind="stable")]
    left, right = by_x[:2], by_x[2:]
    tl, bl = left[np.argsort(left[:, 1], kind="stable")]
    tr, br = right[np.argsort(right[:, 1], kind="stable")]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def line_heights(quads: np.ndarray) -> np.ndarray:
    """(K, 4, 2) quads -> (K,) the shorter of each quad's side lengths (a line's height, whatever its
    rotation)."""
    if not len(quads):
        return np.zeros(0, np.float32)
    top = np.hypot(*(quads[:, 1] - quads[:, 0]).T)
    side = np.hypot(*(quads[:, 3] - quads[:, 0]).T)
    heights: np.ndarray = np.minimum(top, side).astype(np.float32)
    return heights
