"""Pieces of the `text` analyzer that do not touch a runtime: the gate's input and score, and a CTC decoder
that restores the word spaces PP-OCRv4's recogniser tends to drop on Latin text.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image
from rapidocr_onnxruntime.ch_ppocr_rec.utils import CTCLabelDecode

DET_MEAN = 0.5  # PP-OCR det input: (x / 255 - 0.5) / 0.5 on BGR, as RapidOCR feeds it
DET_STD = 0.5
DB_THRESH = 0.3  # the DB post-processing's own binarisation threshold (RapidOCR config `Det.thresh`)


def gate_copy(image: Image.Image, longer_side: int) -> np.ndarray:
    """RGB image -> (h, w, 3) uint8 RGB with the longer side at `longer_side` (the gate copy).

    Small images are scaled up too: the OCR copy enlarges them as well, so the gate sees what recognition
    will, and its cost stays bounded by `longer_side` either way. Shrinking averages (area), so thin
    strokes of small text survive the way they do in the OCR copy."""
    rgb = np.asarray(image.convert("RGB"))
    h, w = rgb.shape[:2]
    scale = longer_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small: np.ndarray = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return small


def gate_tensor(small: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 RGB gate copy -> float32 (1, 3, H, W) BGR det input, H and W padded
    (edge-replicated, so the padding draws no edges) to multiples of 32 as the DB network needs; the
    image keeps its place at the top left, so map pixels [:h, :w] are its own."""
    arr = small[:, :, ::-1].astype(np.float32)  # RGB -> BGR
    pad_h = -arr.shape[0] % 32 or (32 if arr.shape[0] < 32 else 0)
    pad_w = -arr.shape[1] % 32 or (32 if arr.shape[1] < 32 else 0)
    arr = np.pad(arr, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    arr = (arr / 255.0 - DET_MEAN) / DET_STD
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[None], dtype=np.float32)


def gate_input(image: Image.Image, longer_side: int) -> np.ndarray:
    """RGB image -> float32 (1, 3, H, W) det input of its gate copy (`gate_copy`, `gate_tensor`)."""
    return gate_tensor(gate_copy(image, longer_side))


def gate_score(prob_map: np.ndarray, min_elongation: float) -> float:
    """Text evidence in a DB probability map (1, 1, H, W): how many map pixels above the DB threshold lie
    in blobs at least `min_elongation` times longer than wide.

    DB marks text as shrunk line-shaped kernels: even a short word is a bar several times longer than it
    is high. Bright round spots on photos (a reflection in coffee, a cat's pupil) also fire the detector,
    but as blobs; counting only elongated ones keeps them out. Elongation is the ratio of the principal
    axes (square root of the covariance eigenvalues' ratio), so rotated text counts too.
    """
    mask = (prob_map[0, 0] > DB_THRESH).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    total = 0.0
    for k in range(1, count):
        area = int(stats[k, cv2.CC_STAT_AREA])
        if area < 6:  # a few stray pixels: no shape to judge, and too small to be a word
            continue
        x, y, w, h = (int(v) for v in stats[k, :4])
        ys, xs = np.nonzero(labels[y : y + h, x : x + w] == k)
        cov = np.cov(np.stack([xs, ys]).astype(np.float64)) + np.eye(2) / 12.0  # + pixel extent
        small, large = np.linalg.eigvalsh(cov)
        if large >= min_elongation**2 * small:
            total += area
    return total


def deskewed_anchors(quads: list[np.ndarray]) -> list[tuple[float, float, float]]:
    """Detection quads (4, 2) px, clockwise from the top-left -> `(x, y_centre, height)` per line in a frame
    rotated so that the text runs left to right, so that slanted text groups into rows as it reads.

    The angle is the median baseline angle of the lines wider than tall (clipped to +-45 degrees). When
    most lines stand upright (taller than 1.5x their width) the text is taken as turned 90 degrees
    counter-clockwise, reading bottom to top, the common orientation of rotated captions; text turned
    clockwise then gets its lines in reverse order (each line itself is still read correctly).
    """
    wide, tall = [], 0
    for q in quads:
        top, side = float(np.hypot(*(q[1] - q[0]))), float(np.hypot(*(q[3] - q[0])))
        if top >= side:
            wide.append(float(np.arctan2(q[1][1] - q[0][1], q[1][0] - q[0][0])))
        elif side >= 1.5 * top:
            tall += 1
    if tall > len(wide):
        theta = -np.pi / 2
    else:
        theta = float(np.clip(np.median(wide), -np.pi / 4, np.pi / 4)) if wide else 0.0
    cos, sin = np.cos(-theta), np.sin(-theta)
    rotation = np.array([[cos, -sin], [sin, cos]])
    anchors = []
    for q in quads:
        r = q.astype(np.float64) @ rotation.T  # (4, 2) in the deskewed frame
        anchors.append((float(r[:, 0].min()), float(r[:, 1].mean()), float(np.ptp(r[:, 1]))))
    return anchors


def is_cjk(ch: str) -> bool:
    """Han, kana, hangul and full-width forms: scripts written without spaces between words."""
    code = ord(ch)
    return (
        0x3000 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF
        or 0x20000 <= code <= 0x2FA1F
    )


class SpaceAwareCTCDecode(CTCLabelDecode):  # type: ignore[misc]  # untyped library base class
    """Greedy CTC decoding that also reads word spaces from the probability the recogniser gives to its
    space class between two characters.

    PP-OCRv4's Chinese+Latin recogniser rarely makes the space the arg-max (it was trained mostly on text
    without spaces) but still raises its probability in the gap between words; a gap whose space
    probability reaches `space_threshold` becomes a space. Gaps next to a CJK character never do.
    """

    def __init__(self, character: list[str], space_threshold: float) -> None:
        """`character`: the recogniser's class names without CTC blank and space (the base adds both)."""
        super().__init__(character=list(character))
        self.space_threshold = space_threshold
        self.space_index = len(self.character) - 1  # the library appends " " last, "blank" first
        if self.character[self.space_index] != " ":
            raise ValueError("recogniser character list does not end with the space class")

    def __call__(
        self, preds: np.ndarray, return_word_box: bool = False, **kwargs: object
    ) -> list[tuple[str, float]]:
        """(N, T, C) per-frame class probabilities -> N (text, mean character probability)."""
        return [self.decode_one(p) for p in preds]

    def decode_one(self, probs: np.ndarray) -> tuple[str, float]:
        """(T, C) probabilities of one line -> (text, mean probability of the emitted characters)."""
        best = probs.argmax(axis=1)  # (T,)
        space_p = probs[:, self.space_index]  # (T,)
        chars: list[str] = []
        scores: list[float] = []
        prev_cls = 0
        last_frame = -1  # frame of the last emitted character
        for t, cls in enumerate(best.tolist()):
            if cls in (0, prev_cls):  # CTC: blanks and repeats emit nothing
                prev_cls = cls
                continue
            prev_cls = cls
            ch = self.character[cls]
            if ch == " ":
                if chars and chars[-1] != " ":
                    chars.append(" ")
                    scores.append(float(probs[t, cls]))
                continue
            if chars and chars[-1] != " " and t - last_frame > 1:
                gap = float(space_p[last_frame + 1 : t].max())
                if gap >= self.space_threshold and not (is_cjk(chars[-1]) or is_cjk(ch)):
                    chars.append(" ")
                    scores.append(gap)
            chars.append(ch)
            scores.append(float(probs[t, cls]))
            last_frame = t
        text = "".join(chars).strip()
        letter_scores = [s for c, s in zip(chars, scores, strict=True) if c != " "]
        return text, float(np.mean(letter_scores)) if letter_scores else 0.0
