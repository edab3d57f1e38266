"""AWS Rekognition (JSON 1.1) responses from feedlens results. Pure functions over the analyzers' typed
results; requests are validated in `rekognition_requests`, the router does the I/O.

Field-by-field choices (what is filled, approximated, left out) are in docs/compat.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import webcolors  # type: ignore[import-untyped]  # no type information shipped

from feedlens.analyzers.properties import to_lab
from feedlens.api.compat.rekognition_requests import LabelsRequest, TextRequest
from feedlens.core.results.faces import FacesResult
from feedlens.core.results.geometry import Box
from feedlens.core.results.labels import Concept, Label, LabelsResult
from feedlens.core.results.properties import PropertiesResult
from feedlens.core.results.safety import SafetyResult
from feedlens.core.results.text import TextLine, TextResult

MAX_TEXT_WORDS = 100  # DetectText returns at most 100 words
MAX_FACES = 100  # DetectFaces returns the 100 largest faces
# FER2013's seven classes onto Rekognition's emotion types; Rekognition's CONFUSED has no source (0).
EMOTION_TYPES = {
    "happy": "HAPPY", "sad": "SAD", "angry": "ANGRY", "disgust": "DISGUSTED", "surprise": "SURPRISED",
    "fear": "FEAR", "neutral": "CALM",
}  # fmt: skip
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
    x0, y0, x1, y1 = (float(v) for v in (box.x0, box.y0, box.x1, box.y1))
    return {"Width": x1 - x0, "Height": y1 - y0, "Left": x0, "Top": y0}


def percent(score: float) -> float:
    return round(100.0 * float(score), 4)


def title(name: str) -> str:
    """WordNet's lower-case names in Rekognition's style ("domestic cat" -> "Domestic Cat"); capitals
    already there (CD player) stay."""
    return " ".join(w[:1].upper() + w[1:] for w in name.split(" "))


# -- DetectLabels ---------------------------------------------------------------------------------------
class LabelHierarchy:
    """The ImageNet classes and the WordNet concepts above them (the `imagenet-hierarchy` artifact).

    A class's parents are its WordNet ancestors (from the artifact). A concept's are its WordNet hypernyms
    (`hypernyms`: concept wnid -> every synset above it, from WordNet's noun database) among the concepts;
    without them, the concepts whose roll-up covers every class below it (so a parent always scores at
    least as high as its child, but ImageNet's coverage can add a non-hypernym: every domestic animal in
    ImageNet is a carnivore). Parents are listed nearest first (fewest classes below)."""

    def __init__(
        self,
        hierarchy: Mapping[str, Any],
        min_depth: int,
        hypernyms: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        concepts, classes = hierarchy["concepts"], hierarchy["classes"]
        self._names = {c["wnid"]: c["name"] for c in concepts}
        self._depth = {c["wnid"]: int(c["depth"]) for c in concepts}
        self._shown = {c["wnid"] for c in concepts if c["depth"] >= min_depth}  # as the labels analyzer
        below: dict[str, set[str]] = {}  # concept -> classes under it
        self._above: dict[str, frozenset[str]] = {}
        for cls, indices in zip(classes, hierarchy["ancestors"], strict=True):
            wnids = frozenset(concepts[j]["wnid"] for j in indices) - {cls["wnid"]}
            self._above[cls["wnid"]] = wnids
            self._depth[cls["wnid"]] = 1 + max((self._depth[w] for w in wnids), default=0)
            for wnid in wnids:
                below.setdefault(wnid, set()).add(cls["wnid"])
        self._size = {wnid: len(members) for wnid, members in below.items()}
        known = frozenset(below)
        for wnid, members in below.items():
            if wnid in self._above:
                continue
            if hypernyms is not None and wnid in hypernyms:
                self._above[wnid] = hypernyms[wnid] & known
                continue
            # concepts covering the same classes (living thing, organism) are ordered by depth
            common = frozenset.intersection(*(self._above[m] for m in members))
            self._above[wnid] = frozenset(
                d
                for d in common
                if self._size[d] > self._size[wnid]
                or (self._size[d] == self._size[wnid] and self._depth[d] < self._depth[wnid])
            )

    def lineage(self, wnid: str) -> frozenset[str]:
        """`wnid` and every concept above it."""
        return self._above.get(wnid, frozenset()) | {wnid}

    def parents(self, wnid: str) -> list[str]:
        shown = [w for w in self._above.get(wnid, ()) if w in self._shown]
        order = sorted(shown, key=lambda w: (self._size.get(w, 1), -self._depth[w], self._names[w]))
        return [self._names[w] for w in order]

    def specificity(self, wnid: str) -> tuple[int, int]:
        """Sorts the more specific first: fewer classes below, then deeper."""
        return self._size.get(wnid, 1), -self._depth.get(wnid, 0)


@dataclass(frozen=True)
class _Candidate:
    name: str
    wnid: str
    score: float
    specificity: tuple[int, int]  # LabelHierarchy.specificity: smaller is more specific


def label_categories(lineage: frozenset[str], categories: Sequence[tuple[str, frozenset[str]]]) -> list[str]:
    """The workspace categories whose WordNet concepts cover a label (it or a concept above it);
    `categories` as (name, WordNet ids), most specific first."""
    return [name for name, wnids in categories if wnids & lineage]


def detect_labels(
    labels: LabelsResult | None,
    properties: PropertiesResult | None,
    request: LabelsRequest,
    hierarchy: LabelHierarchy,
    categories: Sequence[tuple[str, frozenset[str]]],
    colour_names: Callable[[Sequence[float]], str],
    blur_threshold: float,
    version: str,
) -> dict[str, Any]:
    """DetectLabels response from `labels` (classes + rolled-up concepts) and `properties` results (None:
    not analysed, so not reported)."""
    out: dict[str, Any] = {"Labels": [], "LabelModelVersion": version}
    if request.general and labels is not None:
        best: dict[str, _Candidate] = {}
        items: list[Label | Concept] = [*labels.labels, *labels.concepts]
        for item in items:
            wnid = item.wnid
            found = _Candidate(title(item.name), wnid, float(item.score), hierarchy.specificity(wnid))
            kept = best.get(found.name.casefold())
            if kept is None or (-found.score, found.specificity) < (-kept.score, kept.specificity):
                best[found.name.casefold()] = found
        entries = []
        for c in sorted(best.values(), key=lambda c: (-c.score, c.specificity, c.name)):
            names = label_categories(hierarchy.lineage(c.wnid), categories)
            folded = {n.casefold() for n in names}
            if (
                100.0 * c.score < request.min_confidence
                or (request.include and c.name.casefold() not in request.include)
                or c.name.casefold() in request.exclude
                or (request.include_categories and not folded & request.include_categories)
                or folded & request.exclude_categories
            ):
                continue
            parents = [title(p) for p in hierarchy.parents(c.wnid)]
            entries.append(
                {
                    "Name": c.name,
                    "Confidence": percent(c.score),
                    "Instances": [],
                    "Parents": [{"Name": p} for p in dict.fromkeys(parents) if p != c.name],
                    "Aliases": [],
                    "Categories": [{"Name": n} for n in names],
                }
            )
        out["Labels"] = entries[: request.max_labels] if request.max_labels is not None else entries
    if request.properties and properties is not None:
        out["ImageProperties"] = image_properties(
            properties, request.max_colors, colour_names, blur_threshold
        )
    return out


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


# -- DetectFaces ----------------------------------------------------------------------------------------
def detect_faces(faces: FacesResult, emotions: bool) -> dict[str, Any]:
    details = []
    for face in faces.faces[:MAX_FACES]:
        detail: dict[str, Any] = {
            "BoundingBox": bounding_box(face.box),
            "Confidence": percent(face.confidence),
            "Landmarks": [],
        }
        if emotions:
            found = {
                EMOTION_TYPES[name]: percent(p) for name, p in face.emotions.items() if name in EMOTION_TYPES
            }
            found.setdefault("CONFUSED", 0.0)
            detail["Emotions"] = [
                {"Type": kind, "Confidence": score}
                for kind, score in sorted(found.items(), key=lambda e: -e[1])
            ]
        details.append(detail)
    return {"FaceDetails": details}
