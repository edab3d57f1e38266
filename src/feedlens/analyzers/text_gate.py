"""The `text` analyzer's gate: where could there be text, decided from cheap evidence first, then the DB
detector run only where it can matter.

1. Strokes (a few ms, no model): on the grey gate copy, dark and bright strokes up to ~6 px wide
   (morphological black-hat / top-hat) that form character-sized blobs. An image without any is blank
   for OCR (flat colours, smooth gradients, blur): no detector runs. Blobs side by side form word-shaped
   groups; their surroundings, aligned to the detector's 32 px grid, are the *proposals* for small text.
2. Detector, full form (the default): the DB detector reads the whole gate copy, as it always did.
3. Detector, quick form (`TextAnalyzer.QUICK_GATE`, off: it missed a large low-contrast word the full form
   finds): the detector over the whole image at half the gate size plus at the full gate size on the
   proposals only; where proposals cover most of the image the full form runs instead.

The classifier's own evidence (a web site, a menu, a street sign ... among the `labels` result's top
classes, when labels ran) skips the gate: such an image is detected once at the OCR size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from feedlens.core.results.labels import LabelsResult
from feedlens.runtime.sessions import InferenceSession

STROKE_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7))  # strokes up to 6 px wide
STROKE_CONTRAST = 40  # grey levels a stroke stands out from its surroundings (text is drawn to be read)
CHAR_MAX = 24  # a small-text character is at most this tall or wide on the gate copy (px)
WORD_LINK = 5  # characters at most this far apart (px) join one word
CONTEXT = 16  # detector context kept around each proposal (px): one cell of its 32 px grid
DENSE_COVER = 0.5  # proposals covering more than this share of the image: run the detector on all of it
GRID = 32  # the DB network's input sides are multiples of this

# ImageNet classes of things that usually carry text, by WordNet id: the classifier's own evidence.
TEXT_CLASSES = frozenset(
    {
        "n06359193",  # web site
        "n06596364",  # comic book
        "n06785654",  # crossword puzzle
        "n06794110",  # street sign
        "n07248320",  # book jacket
        "n07565083",  # menu
        "n03291819",  # envelope
        "n03871628",  # packet
        "n04149813",  # scoreboard
        "n02840245",  # binder
        "n02971356",  # carton
        "n03782006",  # monitor
        "n04152593",  # screen
        "n04404412",  # television
        "n03196217",  # digital clock
        "n02977058",  # cash machine
        "n04525305",  # vending machine
        "n04243546",  # slot
        "n03937543",  # pill bottle
        "n03690938",  # lotion
        "n04357314",  # sunscreen
        "n02823428",  # beer bottle
        "n04591713",  # wine bottle
        "n03983396",  # pop bottle
        "n03841143",  # odometer
        "n02871525",  # bookshop
        "n04443257",  # tobacco shop
        "n03595614",  # jersey
        "n03891332",  # parking meter
        "n04118776",  # rule
        "n04238763",  # slide rule
        "n03485407",  # hand-held computer
        "n02992529",  # cellular telephone
        "n03832673",  # notebook
        "n03642806",  # laptop
    }
)
TEXT_CLASS_SCORE = 0.3  # summed probability of those classes (top classes kept) that counts as text-ish


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the cheap stage saw on one gate copy: how many character-sized stroke blobs (`characters`),
    proposal rectangles `(x0, y0, x1, y1)` in padded gate-copy pixels where small text could be, the
    share of the padded image they cover, and the classifier's summed text-class probability (None when
    `labels` did not run)."""

    characters: int
    proposals: tuple[tuple[int, int, int, int], ...]
    cover: float
    text_classes: float | None = None

    @property
    def blank(self) -> bool:
        """Not one character-sized stroke: nothing a detector could read."""
        return self.characters == 0

    @property
    def text_ish(self) -> bool:
        """The classifier sees a thing that carries text (a web site, a menu, a sign ...)."""
        return self.text_classes is not None and self.text_classes >= TEXT_CLASS_SCORE

    @property
    def textured(self) -> bool:
        """Proposals cover so much that the quick detector form would cost more than the full one."""
        return self.cover > DENSE_COVER


def text_class_score(labels: LabelsResult | None) -> float | None:
    """Summed probability of the text-bearing ImageNet classes among the classifier's kept top classes."""
    if labels is None:
        return None
    return float(sum(c.score for c in labels.classes if c.wnid in TEXT_CLASSES))


def _character_mask(grey: np.ndarray) -> tuple[np.ndarray, int]:
    """(H, W) uint8 grey -> ((H, W) uint8, 1 on strokes of character-sized blobs of either polarity;
    how many such blobs)."""
    mask = np.zeros(grey.shape, np.uint8)
    found = 0
    for op in (cv2.MORPH_BLACKHAT, cv2.MORPH_TOPHAT):
        strokes = (cv2.morphologyEx(grey, op, STROKE_KERNEL) >= STROKE_CONTRAST).astype(np.uint8)
        _, labels, stats, _ = cv2.connectedComponentsWithStats(strokes, connectivity=8)
        w, h, area = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_AREA]
        fill = area / np.maximum(w * h, 1)
        keep = (h >= 3) & (h <= CHAR_MAX) & (w <= CHAR_MAX) & (np.maximum(w, h) >= 4) & (area >= 4)
        keep &= fill >= 0.12
        keep[0] = False  # the background component
        found += int(keep.sum())
        mask |= keep.astype(np.uint8)[labels]
    return mask, found


def stroke_evidence(small: np.ndarray, text_classes: float | None = None) -> Evidence:
    """(h, w, 3) uint8 RGB gate copy -> the cheap evidence; proposals for small text are groups of
    character blobs at least 1.8x wider than tall and 4-30 px tall, widened by `CONTEXT` and aligned to
    the detector's grid."""
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    chars, found = _character_mask(grey)
    words = cv2.morphologyEx(chars, cv2.MORPH_CLOSE, np.ones((3, WORD_LINK), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(words, connectivity=8)
    x, y, w, h = (stats[1:, k] for k in range(4))
    word = (h >= 4) & (h <= 30) & (w >= 1.8 * h)
    found_words = zip(x[word], y[word], w[word], h[word], strict=True)
    rects = [(int(a), int(b), int(a + c), int(b + d)) for a, b, c, d in found_words]
    proposals = grid_rects(rects, small.shape[:2])
    area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in proposals)
    cover = area / float(_ceil(small.shape[0]) * _ceil(small.shape[1]))
    return Evidence(found, tuple(proposals), cover, text_classes)


def _ceil(n: int) -> int:
    return -(-n // GRID) * GRID


def grid_rects(
    rects: Sequence[tuple[int, int, int, int]], shape: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
    """Rectangles widened by `CONTEXT`, snapped outwards to the 32 px grid within the padded (H, W)
    `shape`, and merged until none overlap (a merged pair becomes their bounding rectangle)."""
    height, width = _ceil(shape[0]), _ceil(shape[1])
    snapped = [
        (
            max(0, (x0 - CONTEXT) // GRID * GRID),
            max(0, (y0 - CONTEXT) // GRID * GRID),
            min(width, _ceil(x1 + CONTEXT)),
            min(height, _ceil(y1 + CONTEXT)),
        )
        for x0, y0, x1, y1 in rects
    ]
    merged: list[tuple[int, int, int, int]] = []
    for start in snapped:
        rect = start
        while True:
            hit = next((m for m in merged if _overlap(m, rect)), None)
            if hit is None:
                break
            merged.remove(hit)
            rect = (min(rect[0], hit[0]), min(rect[1], hit[1]), max(rect[2], hit[2]), max(rect[3], hit[3]))
        merged.append(rect)
    return merged


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def detect_regions(
    det: InferenceSession, tensor: np.ndarray, rects: Sequence[tuple[int, int, int, int]]
) -> np.ndarray:
    """DB probabilities (H, W) for a padded det input (1, 3, H, W), computed only inside grid-aligned
    `rects` (zero elsewhere); one run per rectangle."""
    prob = np.zeros(tensor.shape[2:], np.float32)
    for x0, y0, x1, y1 in rects:
        part = det.run({"x": np.ascontiguousarray(tensor[:, :, y0:y1, x0:x1])})[0][0, 0]
        np.maximum(prob[y0:y1, x0:x1], part, out=prob[y0:y1, x0:x1])
    return prob
