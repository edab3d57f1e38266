"""AWS Rekognition (JSON 1.1) responses from feedlens results. Pure functions over the analyzers' typed
results; requests are validated in `rekognition_requests`, the router does the I/O.

Field-by-field choices (what is filled, approximated, left out) are in docs/compat.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import webcolors  # type: ignore[import-untyped]  # no type information shipped

from feedlens.analyzers.properties import to_lab
from feedlens.api.compat.rekognition_requests import LabelsRequest, TextRequest
from feedlens.core.results.geometry import Box
from feedlens.core.results.labels import Label, LabelsResult
from feedlens.core.results.objects import DetectedObject, ObjectsResult
from feedlens.core.results.properties import PropertiesResult
from feedlens.core.results.safety import SafetyResult
from feedlens.core.results.text import TextLine, TextResult
from feedlens.core.vocabulary import Vocabulary

MAX_TEXT_WORDS = 100  # DetectText returns at most 100 words
# NudeNet detector class -> its path in Rekognition's moderation taxonomy (v7: L1, L2, L3), as deep as
# the class says: "covered" classes are clothed regions (swimwear, underwear, tight clothes), which
# Rekognition files under Swimwear or Underwear; the gender of covered buttocks and of a belly is unknown.
EXPLICIT, NON_EXPLICIT, SWIMWEAR = (
    "Explicit",
    "Non-Explicit Nudity of Intimate parts and Kissing",
    "Swimwear or Underwear",
)
MODERATION_PATHS: Mapping[str, tuple[str, ...]] = {
    "FEMALE_GENITALIA_EXPOSED": (EXPLICIT, "Explicit Nudity", "Exposed Female Genitalia"),
    "MALE_GENITALIA_EXPOSED": (EXPLICIT, "Explicit Nudity", "Exposed Male Genitalia"),
    "ANUS_EXPOSED": (EXPLICIT, "Explicit Nudity", "Exposed Buttocks or Anus"),
    "BUTTOCKS_EXPOSED": (EXPLICIT, "Explicit Nudity", "Exposed Buttocks or Anus"),
    "FEMALE_BREAST_EXPOSED": (EXPLICIT, "Explicit Nudity", "Exposed Female Nipple"),
    "MALE_BREAST_EXPOSED": (NON_EXPLICIT, "Non-Explicit Nudity", "Exposed Male Nipple"),
    "FEMALE_BREAST_COVERED": (SWIMWEAR, "Female Swimwear or Underwear"),
    "FEMALE_GENITALIA_COVERED": (SWIMWEAR, "Female Swimwear or Underwear"),
    "BUTTOCKS_COVERED": (SWIMWEAR,),
    "ANUS_COVERED": (SWIMWEAR,),
    "BELLY_EXPOSED": (SWIMWEAR,),
}
CATEGORY_PATHS: Mapping[str, tuple[str, ...]] = {
    "explicit_nudity": (EXPLICIT,),
    "suggestive": (SWIMWEAR,),
}  # a class not listed above


# -- shared geometry ------------------------------------------------------------------------------------
def geometry(box: Box) -> dict[str, Any]:
    """A feedlens normalised box as Rekognition's BoundingBox and Polygon (ratios)."""
    x0, y0, x1, y1 = (float(v) for v in (box.x0, box.y0, box.x1, box.y1))
    return {
        "BoundingBox": bounding_box(box),
        "Polygon": [{"X": x, "Y": y} for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))],
    }


def bounding_box(box: Box) -> dict[str, float]:
    """Ratios of the image, clamped to [0, 1] (a Box may stray by its 1e-6 tolerance)."""
    x0, y0, x1, y1 = (min(max(float(v), 0.0), 1.0) for v in (box.x0, box.y0, box.x1, box.y1))
    return {"Width": x1 - x0, "Height": y1 - y0, "Left": x0, "Top": y0}


def percent(score: float) -> float:
    return round(100.0 * float(score), 4)


# -- DetectLabels ---------------------------------------------------------------------------------------
MAX_ALIASES = 3  # Rekognition lists a label's few best-known other names ("Human" for Person)


def detect_labels(
    labels: LabelsResult | None,
    properties: PropertiesResult | None,
    request: LabelsRequest,
    vocabulary: Vocabulary,
    colour_names: Callable[[Sequence[float]], str],
    blur_threshold: float,
    version: str,
    objects: ObjectsResult | None = None,
) -> dict[str, Any]:
    """DetectLabels from the everyday labels (in their display order: the most specific confident label
    first, its parents after it), `properties` (None: not analysed, so not reported) and `objects` (the
    boxes of each label's `Instances`; None: not analysed, so no instances). Parents, aliases and
    categories come from the label vocabulary; MinConfidence (default 55) applies to calibrated scores of
    labels and of instances, as Rekognition's does to its confidences."""
    out: dict[str, Any] = {"Labels": [], "LabelModelVersion": version}
    if request.general and labels is not None:
        found = objects.objects if objects is not None else ()
        entries = [
            _label(label, vocabulary, _instances(label, found, request.min_confidence))
            for label in labels.labels
            if _wanted(label, request)
        ]
        out["Labels"] = entries[: request.max_labels] if request.max_labels is not None else entries
    if request.properties and properties is not None:
        out["ImageProperties"] = image_properties(
            properties, request.max_colors, colour_names, blur_threshold
        )
    return out


def _wanted(label: Label, request: LabelsRequest) -> bool:
    category = label.category.casefold()
    return not (
        100.0 * label.score < request.min_confidence
        or (request.include and label.name.casefold() not in request.include)
        or label.name.casefold() in request.exclude
        or (request.include_categories and category not in request.include_categories)
        or category in request.exclude_categories
    )


def _instances(
    label: Label, objects: Sequence[DetectedObject], min_confidence: float
) -> list[dict[str, Any]]:
    """The boxes of the objects named as this very label (Person's people; not a parent's: Animal gets
    none for a cat, as in Rekognition), by descending confidence, at least `min_confidence`."""
    mine = sorted((o for o in objects if o.id == label.id), key=lambda o: -o.score)
    return [
        {"BoundingBox": bounding_box(o.box), "Confidence": percent(o.score)}
        for o in mine
        if 100.0 * o.score >= min_confidence
    ]


def _label(label: Label, vocabulary: Vocabulary, instances: list[dict[str, Any]]) -> dict[str, Any]:
    known = label.id in vocabulary
    aliases = [a for a in vocabulary.label(label.id).aliases if a[:1].isalpha()] if known else []
    return {
        "Name": label.name,
        "Confidence": percent(label.score),
        "Instances": instances,
        "Parents": [{"Name": vocabulary.label(p).name} for p in label.parents if p in vocabulary],
        "Aliases": [{"Name": a.title() if a.islower() else a} for a in aliases[:MAX_ALIASES]],
        "Categories": [{"Name": label.category}] if label.category else [],
    }


def image_properties(
    properties: PropertiesResult,
    max_colors: int,
    colour_names: Callable[[Sequence[float]], str],
    blur_threshold: float,
) -> dict[str, Any]:
    """Quality on Rekognition's 0-100 scales and dominant colours (see docs/compat.md for the scales)."""
    sharpness = float(properties.sharpness)
    # 50 at the blur threshold, approaching 100 as the Laplacian variance grows past it
    sharp = (
        100.0 * sharpness / (sharpness + blur_threshold) if blur_threshold > 0 else 100.0 * (sharpness > 0)
    )
    quality = {
        "Brightness": round(100.0 * float(properties.brightness), 2),
        "Sharpness": round(sharp, 2),
        # RMS contrast of L*/100 is at most 0.5 (half black, half white): doubled onto 0-100
        "Contrast": round(min(100.0, 200.0 * float(properties.contrast)), 2),
    }
    colours = []
    for colour in properties.colours[:max_colors]:
        hex_code = colour.hex
        red, green, blue = (int(hex_code[i : i + 2], 16) for i in (1, 3, 5))
        colours.append(
            {
                "Red": red,
                "Green": green,
                "Blue": blue,
                "HexCode": hex_code,
                "CSSColor": colour_names(colour.lab),
                "SimplifiedColor": colour.name,
                "PixelPercent": round(100.0 * float(colour.fraction), 2),
            }
        )
    return {"Quality": quality, "DominantColors": colours}


class CssColours:
    """Nearest CSS3 named colour to a CIELAB colour (CIE76 distance), for DominantColor.CSSColor."""

    def __init__(self) -> None:
        names = webcolors.names("css3")
        rgb = np.array([tuple(webcolors.name_to_rgb(n, "css3")) for n in names], dtype=np.uint8)
        self._names = names
        self._lab = to_lab(rgb).astype(np.float64)  # (K, 3)

    def __call__(self, lab: Sequence[float]) -> str:
        distances = np.linalg.norm(self._lab - np.asarray(lab, dtype=np.float64)[None, :], axis=1)
        return str(self._names[int(np.argmin(distances))])


# -- DetectModerationLabels -----------------------------------------------------------------------------
def detect_moderation_labels(safety: SafetyResult, min_confidence: float, version: str) -> dict[str, Any]:
    """Each safety region counts for every level of its taxonomy path; a label's confidence is its best
    region's score."""
    best: dict[tuple[str, ...], float] = {}
    for region in safety.regions:
        found = MODERATION_PATHS.get(region.detector_class) or CATEGORY_PATHS.get(region.category, ())
        for depth in range(1, len(found) + 1):
            key = found[:depth]
            best[key] = max(best.get(key, 0.0), float(region.score))
    labels = [
        {
            "Confidence": percent(score),
            "Name": path[-1],
            "ParentName": path[-2] if len(path) > 1 else "",
            "TaxonomyLevel": len(path),
        }
        for path, score in sorted(best.items(), key=lambda item: (-item[1], len(item[0]), item[0]))
        if 100.0 * score >= min_confidence
    ]
    return {"ModerationLabels": labels, "ModerationModelVersion": version, "ContentTypes": []}


# -- DetectText -----------------------------------------------------------------------------------------
def split_words(line: TextLine) -> list[tuple[str, Box]]:
    """A line's words with boxes cut from the line's box in proportion to character offsets (feedlens
    reads lines, not words: equal-width characters are assumed)."""
    text, box = line.text, line.box
    x0, x1 = float(box.x0), float(box.x1)
    step = (x1 - x0) / max(1, len(text))
    out, start = [], 0
    for word in text.split():
        begin = text.index(word, start)
        start = begin + len(word)
        out.append((word, Box(x0 + step * begin, box.y0, x0 + step * start, box.y1)))
    return out


def _in_regions(box: Box, regions: Sequence[tuple[float, float, float, float]]) -> bool:
    if not regions:
        return True
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    return any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1 in regions)


def detect_text(text: TextResult, request: TextRequest, version: str) -> dict[str, Any]:
    """LINE detections (ids 0..) then WORD detections with the ParentId of their line."""
    kept: list[tuple[TextLine, list[tuple[str, Box]]]] = []
    budget = MAX_TEXT_WORDS
    for line in text.lines:
        words = [
            (word, box)
            for word, box in split_words(line)
            if 100.0 * float(line.confidence) >= request.min_confidence
            and box.y1 - box.y0 >= request.min_height
            and box.x1 - box.x0 >= request.min_width
            and _in_regions(box, request.regions)
        ][:budget]
        if words:
            kept.append((line, words))
            budget -= len(words)
    detections: list[dict[str, Any]] = []
    for line_id, (line, words) in enumerate(kept):
        detections.append(
            {
                "DetectedText": " ".join(w for w, _ in words),
                "Type": "LINE",
                "Id": line_id,
                "Confidence": percent(line.confidence),
                # the line as far as its kept words reach
                "Geometry": geometry(replace(line.box, x0=words[0][1].x0, x1=words[-1][1].x1)),
            }
        )
    for line_id, (line, words) in enumerate(kept):
        for word, box in words:
            detections.append(
                {
                    "DetectedText": word,
                    "Type": "WORD",
                    "Id": len(detections),
                    "ParentId": line_id,
                    "Confidence": percent(line.confidence),
                    "Geometry": geometry(box),
                }
            )
    return {"TextDetections": detections, "TextModelVersion": version}
