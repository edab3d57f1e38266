"""feedlens results -> Google Cloud Vision `AnnotateImageResponse` (pure): labels, objects, safe search,
faces, dominant colours and logos here; text and crop hints in `gcv_layout`. Every mapper takes its analyzer's
typed result. Enums are IntEnums (`gcv.encode_enums`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from feedlens.api.compat.gcv import FeatureType, ImageRequest, Likelihood
from feedlens.api.compat.gcv_faces import face_annotations
from feedlens.api.compat.gcv_layout import Frame, crop_hints, text_annotations
from feedlens.core.results.base import AnalyzerResult, required_result
from feedlens.core.results.brands import BrandsResult
from feedlens.core.results.faces import FacesResult
from feedlens.core.results.geometry import Box
from feedlens.core.results.labels import LabelsResult
from feedlens.core.results.objects import ObjectsResult
from feedlens.core.results.properties import PropertiesResult
from feedlens.core.results.safety import SafetyResult
from feedlens.core.results.text import TextResult

MID_PREFIX = "/feedlens/"  # label mids are the vocabulary's stable ids, not Knowledge Graph ids


@dataclass(frozen=True, slots=True)
class SafetyLevels:
    """The safety analyzer's configured levels: region floor and verdict thresholds."""

    floor: float  # regions below are not reported
    explicit: float  # explicit verdict at or above
    suggestive: float  # suggestive verdict at or above


def annotate(
    request: ImageRequest,
    width: int,
    height: int,
    results: Mapping[str, AnalyzerResult],
    levels: SafetyLevels,
) -> dict[str, Any]:
    """One AnnotateImageResponse from the feedlens `results` (typed, by analyzer name) of one image of
    `width` x `height` pixels; an unsupported (or switched-off) feature also sets `error`, next to what
    could be filled."""
    asked = request.served
    frame = Frame(width, height)
    out: dict[str, Any] = {}
    if FeatureType.LABEL_DETECTION in asked:
        labels = label_annotations(
            required_result(results, "labels", LabelsResult), request.max_results(FeatureType.LABEL_DETECTION)
        )
        if labels:
            out["labelAnnotations"] = labels
    if FeatureType.OBJECT_LOCALIZATION in asked:
        objects = object_annotations(
            required_result(results, "objects", ObjectsResult),
            request.max_results(FeatureType.OBJECT_LOCALIZATION),
        )
        if objects:  # Google leaves the field out when it found nothing
            out["localizedObjectAnnotations"] = objects
    if FeatureType.SAFE_SEARCH_DETECTION in asked:
        out["safeSearchAnnotation"] = safe_search(required_result(results, "safety", SafetyResult), levels)
    if asked & {FeatureType.TEXT_DETECTION, FeatureType.DOCUMENT_TEXT_DETECTION}:
        out.update(text_annotations(required_result(results, "text", TextResult), frame))
    if FeatureType.FACE_DETECTION in asked:
        faces = face_annotations(
            required_result(results, "faces", FacesResult),
            frame,
            request.max_results(FeatureType.FACE_DETECTION),
        )
        if faces:
            out["faceAnnotations"] = faces
    if FeatureType.IMAGE_PROPERTIES in asked:
        colours = dominant_colors(
            required_result(results, "properties", PropertiesResult),
            request.max_results(FeatureType.IMAGE_PROPERTIES),
        )
        out["imagePropertiesAnnotation"] = {"dominantColors": {"colors": colours}}
    if FeatureType.CROP_HINTS in asked:
        out["cropHintsAnnotation"] = {"cropHints": crop_hints(frame, results, request.aspect_ratios)}
    if FeatureType.LOGO_DETECTION in asked:
        # absent where nobody looked for the workspace's brands: then there are no logos to report
        brands = results.get("brands")
        logos = logo_annotations(
            brands if isinstance(brands, BrandsResult) else None,
            frame,
            request.max_results(FeatureType.LOGO_DETECTION),
        )
        if logos:
            out["logoAnnotations"] = logos
    unsupported = request.unsupported
    if unsupported is not None:
        out["error"] = unsupported.to_dict()
    return out


def label_annotations(labels: LabelsResult, max_results: int) -> list[dict[str, Any]]:
    """The everyday labels in their display order (the most specific confident label first, its parents
    after it), each with a stable mid (`/feedlens/<label id>`) and its calibrated score as both `score` and
    `topicality`."""
    return [
        {
            "mid": MID_PREFIX + label.id,
            "description": label.name,
            "score": label.score,
            "topicality": label.score,
        }
        for label in labels.labels[:max_results]
    ]


def normalized_poly(box: Box) -> dict[str, Any]:
    """A BoundingPoly of a normalised box: `normalizedVertices` (0..1 of the width and height) clockwise
    from the top left. Zero coordinates are written out, as in the pixel polys; Google leaves them out
    (proto3 JSON), which every proto parser reads as the same 0."""
    x0, y0, x1, y1 = (min(max(float(v), 0.0), 1.0) for v in (box.x0, box.y0, box.x1, box.y1))
    corners = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
    return {"normalizedVertices": [{"x": x, "y": y} for x, y in corners]}


def object_annotations(objects: ObjectsResult, max_results: int) -> list[dict[str, Any]]:
    """LocalizedObjectAnnotations by descending score, the first `max_results`: each object's everyday
    label as `mid` (`/feedlens/<label id>`, the labelAnnotations' scheme) and `name` (`Person`, `Cup`),
    its calibrated score and its box. No `languageCode`: Google does not send one either."""
    ranked = sorted(objects.objects, key=lambda o: -o.score)  # stable: ties keep the analyzer's order
    return [
        {
            "mid": MID_PREFIX + found.id,
            "name": found.name,
            "score": float(found.score),
            "boundingPoly": normalized_poly(found.box),
        }
        for found in ranked[:max_results]
    ]


def likelihood(score: float, floor: float, threshold: float) -> Likelihood:
    """A detector score as a Likelihood, anchored on feedlens's levels: below the reporting floor nothing
    was found (VERY_UNLIKELY); the floor-threshold band splits into UNLIKELY and POSSIBLE; at the verdict
    threshold it is LIKELY, and VERY_LIKELY past halfway from there to 1."""
    if score >= threshold:
        return Likelihood.VERY_LIKELY if score >= (threshold + 1.0) / 2 else Likelihood.LIKELY
    if score < floor or score <= 0.0:
        return Likelihood.VERY_UNLIKELY
    return Likelihood.POSSIBLE if score >= (floor + threshold) / 2 else Likelihood.UNLIKELY


def safe_search(safety: SafetyResult, levels: SafetyLevels) -> dict[str, Any]:
    """adult from explicit nudity; racy from suggestive regions and from explicit ones (explicit content
    is racy too); spoof, medical and violence have no feedlens model, so they are UNKNOWN."""
    scores = safety.scores
    explicit = float(scores.get("explicit_nudity", 0.0))
    suggestive = float(scores.get("suggestive", 0.0))
    adult = likelihood(explicit, levels.floor, levels.explicit)
    racy = max(adult, likelihood(suggestive, levels.floor, levels.suggestive))
    return {
        "adult": adult,
        "spoof": Likelihood.UNKNOWN,
        "medical": Likelihood.UNKNOWN,
        "violence": Likelihood.UNKNOWN,
        "racy": racy,
    }


def dominant_colors(properties: PropertiesResult, max_results: int) -> list[dict[str, Any]]:
    out = []
    for colour in properties.colours[:max_results]:
        hex_ = re.fullmatch(r"#([0-9a-fA-F]{2})([0-9a-fA-F]{2})([0-9a-fA-F]{2})", colour.hex)
        if hex_ is None:
            continue
        red, green, blue = (int(g, 16) for g in hex_.groups())
        fraction = float(colour.fraction)
        out.append(
            {
                "color": {"red": red, "green": green, "blue": blue},
                "score": fraction,
                "pixelFraction": fraction,
            }
        )
    return out


def logo_annotations(brands: BrandsResult | None, frame: Frame, max_results: int) -> list[dict[str, Any]]:
    """Logos of the workspace's registered brands found in the image (feedlens `brands` result, None when
    brands were not looked for): one annotation per logo instance, its quadrilateral in pixels. Brands only
    named in the image's text are not logos and are left out (they are in feedlens's own `brands` result)."""
    found: list[dict[str, Any]] = []
    for mention in brands.mentions if brands is not None else ():
        for evidence in mention.evidence:
            if evidence.kind != "logo" or not evidence.quad:
                continue
            vertices = [{"x": round(x * frame.width), "y": round(y * frame.height)} for x, y in evidence.quad]
            found.append(
                {
                    "mid": f"/feedlens/brand/{mention.brand}",
                    "description": mention.brand,
                    "score": float(evidence.score),
                    "boundingPoly": {"vertices": vertices},
                }
            )
    return sorted(found, key=lambda a: -a["score"])[:max_results]
