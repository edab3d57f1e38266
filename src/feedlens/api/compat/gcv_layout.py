"""Google Cloud Vision regions from feedlens boxes: text annotations (words and symbols split out of
recognised lines) and crop hints (from faces, body regions and text). Pure functions over the typed
results, pixel vertices."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from feedlens.core.results.base import AnalyzerResult
from feedlens.core.results.faces import FacesResult
from feedlens.core.results.geometry import Box
from feedlens.core.results.regions import BodyRegionsResult
from feedlens.core.results.text import TextLine, TextResult

PixelBox = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the upright original
CROP_MARGIN = 0.1  # the best crop (no aspect ratio asked) pads the subjects by this share of their size
NO_SUBJECT_CONFIDENCE = 0.1  # a crop with no face, body or text inside is a guess


class BreakType(IntEnum):
    """google.cloud.vision.v1.TextAnnotation.DetectedBreak.BreakType (the ones feedlens writes)."""

    SPACE = 1
    LINE_BREAK = 5


class BlockType(IntEnum):
    """google.cloud.vision.v1.Block.BlockType (feedlens only finds text)."""

    TEXT = 1


@dataclass(frozen=True, slots=True)
class Frame:
    """The image's pixel size (the upright original), for vertices."""

    width: int
    height: int

    def pixels(self, box: Box) -> PixelBox:
        x0, y0, x1, y1 = box.to_pixels(self.width, self.height)
        return max(x0, 0), max(y0, 0), min(x1, self.width), min(y1, self.height)


def poly(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    """A BoundingPoly of an upright box: corners clockwise from the top left, integer pixels."""
    a, b, c, d = (round(v) for v in (x0, y0, x1, y1))
    return {"vertices": [{"x": a, "y": b}, {"x": c, "y": b}, {"x": c, "y": d}, {"x": a, "y": d}]}


def union(boxes: Sequence[PixelBox]) -> PixelBox:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def span(box: PixelBox, length: int, start: int, end: int) -> PixelBox:
    """The part of a line's box holding characters `start:end` of its `length`, each character taking an
    equal share along the line (feedlens has no character boxes); vertical when the box is taller."""
    x0, y0, x1, y1 = box
    a, b = start / length, end / length
    if x1 - x0 >= y1 - y0 or length == 1:
        return x0 + (x1 - x0) * a, y0, x0 + (x1 - x0) * b, y1
    return x0, y0 + (y1 - y0) * a, x1, y0 + (y1 - y0) * b


def rows_of(lines: Sequence[str], full_text: str) -> list[list[int]]:
    """Indices of the `lines` (their texts) grouped into the rows `full_text` was written from (a row's
    lines joined with spaces, rows with newlines); one row per line if the text does not match that shape."""
    rows: list[list[int]] = []
    i = 0
    for row_text in full_text.split("\n"):
        row: list[int] = []
        while i < len(lines) and len(" ".join(lines[k] for k in [*row, i])) <= len(row_text):
            row.append(i)
            i += 1
        if not row or " ".join(lines[k] for k in row) != row_text:
            return [[k] for k in range(len(lines))]
        rows.append(row)
    return rows if i == len(lines) else [[k] for k in range(len(lines))]


@dataclass(frozen=True, slots=True)
class _Word:
    text: str
    box: PixelBox
    symbols: tuple[tuple[str, PixelBox], ...]
    confidence: float


def _words(line: TextLine, frame: Frame) -> Iterator[_Word]:
    text = line.text
    box = frame.pixels(line.box)
    for match in re.finditer(r"\S+", text):
        symbols = tuple((text[k], span(box, len(text), k, k + 1)) for k in range(match.start(), match.end()))
        yield _Word(match.group(), span(box, len(text), match.start(), match.end()), symbols, line.confidence)


def text_annotations(text: TextResult, frame: Frame) -> dict[str, Any]:
    """`textAnnotations` (the full text, then one entry per word) and `fullTextAnnotation` (one page, a
    block and paragraph per row of text, words, symbols); nothing when no text was found."""
    lines = text.lines
    if not lines:
        return {}
    full = text.full_text + "\n"  # Google's text ends every line, the last too, with a newline
    boxes = [frame.pixels(line.box) for line in lines]
    annotations: list[dict[str, Any]] = [{"description": full, "boundingPoly": poly(*union(boxes))}]
    blocks = []
    for row in rows_of([line.text for line in lines], text.full_text):
        words = [w for k in row for w in _words(lines[k], frame)]
        annotations.extend({"description": w.text, "boundingPoly": poly(*w.box)} for w in words)
        confidence = sum(lines[k].confidence for k in row) / len(row)
        region = poly(*union([boxes[k] for k in row]))
        paragraph = {
            "boundingBox": region,
            "words": [_word(w, last=n == len(words) - 1) for n, w in enumerate(words)],
            "confidence": confidence,
        }
        blocks.append(
            {
                "boundingBox": region,
                "paragraphs": [paragraph],
                "blockType": BlockType.TEXT,
                "confidence": confidence,
            }
        )
    page = {
        "width": frame.width,
        "height": frame.height,
        "blocks": blocks,
        "confidence": sum(line.confidence for line in lines) / len(lines),
    }
    return {"textAnnotations": annotations, "fullTextAnnotation": {"pages": [page], "text": full}}


def _word(word: _Word, last: bool) -> dict[str, Any]:
    symbols: list[dict[str, Any]] = [
        {"boundingBox": poly(*box), "text": char, "confidence": word.confidence} for char, box in word.symbols
    ]
    symbols[-1]["property"] = {"detectedBreak": {"type": BreakType.LINE_BREAK if last else BreakType.SPACE}}
    return {"boundingBox": poly(*word.box), "symbols": symbols, "confidence": word.confidence}


def subjects(results: Mapping[str, AnalyzerResult], frame: Frame) -> list[tuple[PixelBox, float]]:
    """What a crop should keep, with how sure feedlens is of each: faces, body regions, text lines. A
    result that is absent (or not of its analyzer's type) adds nothing."""
    found: list[tuple[Box, float]] = []
    faces = results.get("faces")
    if isinstance(faces, FacesResult):
        found += [(f.box, f.confidence) for f in faces.faces]
    regions = results.get("body_regions")
    if isinstance(regions, BodyRegionsResult):
        found += [(r.box, r.score) for r in regions.regions]
    text = results.get("text")
    if isinstance(text, TextResult):
        found += [(line.box, line.confidence) for line in text.lines]
    return [(frame.pixels(box), float(weight)) for box, weight in found]


def _kept(box: PixelBox, crop: PixelBox) -> float:
    """The share of `box` inside `crop` (a degenerate box counts by its centre)."""
    w, h = box[2] - box[0], box[3] - box[1]
    ix = min(box[2], crop[2]) - max(box[0], crop[0])
    iy = min(box[3], crop[3]) - max(box[1], crop[1])
    if w <= 0 or h <= 0:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        return float(crop[0] <= cx <= crop[2] and crop[1] <= cy <= crop[3])
    return max(ix, 0.0) * max(iy, 0.0) / (w * h)


def _hint(crop: PixelBox, found: Sequence[tuple[PixelBox, float]], frame: Frame) -> dict[str, Any]:
    """importanceFraction: the share of the subjects' weight the crop keeps (of the image's area when
    there is no subject); confidence: the mean detection confidence of what it keeps."""
    if not found:
        area = (crop[2] - crop[0]) * (crop[3] - crop[1]) / (frame.width * frame.height)
        return {"boundingPoly": poly(*crop), "confidence": NO_SUBJECT_CONFIDENCE, "importanceFraction": area}
    kept = [(_kept(box, crop), weight) for box, weight in found]
    total = sum(weight for _, weight in found)
    inside = sum(share for share, _ in kept)
    return {
        "boundingPoly": poly(*crop),
        "confidence": sum(share * weight for share, weight in kept) / inside if inside else 0.0,
        "importanceFraction": sum(share * weight for share, weight in kept) / total if total else 0.0,
    }


def _place(size: float, limit: float, edges: Sequence[tuple[float, float, float]], centre: float) -> float:
    """Start of a window of `size` in [0, limit] keeping most weight of the 1-D `edges` (lo, hi, weight).

    Kept weight is piecewise linear in the start, so a maximum lies at a breakpoint (a window edge on a
    subject edge) or at the ends; of equal choices, the one nearest to centring the subjects wins."""
    top = limit - size
    candidates = {0.0, top, min(max(centre - size / 2, 0.0), top)}
    for lo, hi, _ in edges:
        candidates.update(min(max(p, 0.0), top) for p in (lo, hi, lo - size, hi - size))

    def kept(start: float) -> float:
        total = 0.0
        for lo, hi, weight in edges:
            if hi > lo:
                total += weight * max(0.0, min(start + size, hi) - max(start, lo)) / (hi - lo)
            else:
                total += weight * float(start <= lo <= start + size)
        return total

    target = min(max(centre - size / 2, 0.0), top)
    return max(sorted(candidates), key=lambda p: (round(kept(p), 9), -abs(p - target)))


def crop_hints(
    frame: Frame, results: Mapping[str, AnalyzerResult], aspect_ratios: Sequence[float]
) -> list[dict[str, Any]]:
    """One hint per aspect ratio (width / height): the largest crop of that shape, slid along the image to
    keep the most subject weight. No ratio: the subjects' bounding box with a margin (the whole image
    when there is no subject)."""
    found = subjects(results, frame)
    w, h = float(frame.width), float(frame.height)
    if not aspect_ratios:
        if not found:
            return [_hint((0.0, 0.0, w, h), found, frame)]
        x0, y0, x1, y1 = union([box for box, _ in found])
        mx, my = (x1 - x0) * CROP_MARGIN, (y1 - y0) * CROP_MARGIN
        crop = (max(x0 - mx, 0.0), max(y0 - my, 0.0), min(x1 + mx, w), min(y1 + my, h))
        return [_hint(crop, found, frame)]
    total = sum(weight for _, weight in found) or 1.0
    cx = sum((b[0] + b[2]) / 2 * weight for b, weight in found) / total if found else w / 2
    cy = sum((b[1] + b[3]) / 2 * weight for b, weight in found) / total if found else h / 2
    hints = []
    for ratio in aspect_ratios:
        cw, ch = (h * ratio, h) if w / h > ratio else (w, w / ratio)
        x = _place(cw, w, [(b[0], b[2], weight) for b, weight in found], cx)
        y = _place(ch, h, [(b[1], b[3], weight) for b, weight in found], cy)
        hints.append(_hint((x, y, x + cw, y + ch), found, frame))
    return hints
