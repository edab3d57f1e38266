"""AWS Rekognition (JSON 1.1) requests: validation of an operation's parameters and the errors, in
Rekognition's JSON shape, that a bad request gets. Pure; the router does the I/O."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from feedlens.api.compat.base64_head import HEAD_BYTES, decode_base64
from feedlens.core.errors import ImageError

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "RekognitionService."
OPERATIONS = ("DetectLabels", "DetectModerationLabels", "DetectText", "DetectFaces")
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # AWS's limit on Image.Bytes (raw, before base64)
# base64 of the largest image plus room for the other parameters (label filters are the longest)
MAX_BODY_BYTES = 4 * math.ceil(MAX_IMAGE_BYTES / 3) + 256 * 1024
FACE_ATTRIBUTES = (
    "DEFAULT", "ALL", "AGE_RANGE", "BEARD", "EMOTIONS", "EYE_DIRECTION", "EYEGLASSES", "EYES_OPEN",
    "GENDER", "MOUTH_OPEN", "MUSTACHE", "FACE_OCCLUDED", "SMILE", "SUNGLASSES",
)  # fmt: skip


class RekognitionError(Exception):
    """An error in Rekognition's JSON shape: `{"__type": code, "Message": ...}` with an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after

    def body(self) -> dict[str, str]:
        return {"__type": self.code, "Code": self.code, "Message": self.message}


def invalid(message: str) -> RekognitionError:
    return RekognitionError("InvalidParameterException", message)


# feedlens image error code -> Rekognition error type
IMAGE_ERRORS = {
    "too_large": "ImageTooLargeException",
    "too_many_pixels": "ImageTooLargeException",
    "empty": "InvalidParameterException",
    "too_small": "InvalidParameterException",
    "extreme_aspect_ratio": "InvalidParameterException",
}


def image_error(code: str, message: str) -> RekognitionError:
    """A feedlens image error (or a failed analysis) as Rekognition's; unreadable data of any kind is
    InvalidImageFormatException."""
    return RekognitionError(IMAGE_ERRORS.get(code, "InvalidImageFormatException"), message)


# -- requests -------------------------------------------------------------------------------------------
def parse_body(body: bytes) -> dict[str, Any]:
    try:
        params = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        raise invalid("the request body is not valid JSON") from None
    if not isinstance(params, dict):
        raise invalid("the request body must be a JSON object")
    return params


def read_image(params: Mapping[str, Any], check: Callable[[bytes], None] | None = None) -> bytes:
    """The image of `Image.Bytes` (base64). S3 objects cannot be reached from here. `check` (the
    decoder's header check) sees the first bytes first: a bomb is refused before the rest is decoded."""
    image = params.get("Image")
    if not isinstance(image, dict):
        raise invalid("Image is required, as {'Bytes': <base64 image>}")
    if "S3Object" in image:
        raise invalid(
            "Image.S3Object is not supported by feedlens (no S3 here): send the image as Image.Bytes"
        )
    data = image.get("Bytes")
    if not isinstance(data, str):
        raise invalid("Image.Bytes must be a base64-encoded string")
    if len(data) > 4 * math.ceil(MAX_IMAGE_BYTES / 3) + 4:
        raise RekognitionError("ImageTooLargeException", f"Image.Bytes is over {MAX_IMAGE_BYTES} bytes")
    try:
        if check is not None:
            check(decode_base64(data, head=HEAD_BYTES))
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Image.Bytes is not valid base64") from None
    except ImageError as exc:
        raise image_error(exc.code, exc.message) from None
    if not raw:
        raise invalid("Image.Bytes must not be empty")
    if len(raw) > MAX_IMAGE_BYTES:
        raise RekognitionError("ImageTooLargeException", f"Image.Bytes is over {MAX_IMAGE_BYTES} bytes")
    return raw


def number(params: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise invalid(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


def integer(
    params: Mapping[str, Any], name: str, default: int | None, low: int, high: int | None
) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        upper = f" to {high}" if high is not None else " or more"
        raise invalid(f"{name} must be an integer from {low}{upper}, got {value!r}")
    return value


def _names(params: Mapping[str, Any], name: str, allowed: Sequence[str] | None, most: int) -> list[str]:
    value = params.get(name, [])
    if not isinstance(value, list) or len(value) > most or not all(isinstance(v, str) for v in value):
        raise invalid(f"{name} must be a list of at most {most} strings")
    unknown = [v for v in value if allowed is not None and v not in allowed]
    if unknown:
        raise invalid(f"{name}: unknown value {unknown[0]!r} (known: {', '.join(allowed or ())})")
    return list(value)


def _object(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"{name} must be an object")
    return value


@dataclass(frozen=True)
class LabelsRequest:
    max_labels: int | None
    min_confidence: float
    general: bool
    properties: bool
    max_colors: int
    include: frozenset[str]
    exclude: frozenset[str]
    include_categories: frozenset[str]
    exclude_categories: frozenset[str]

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> LabelsRequest:
        features = _names(params, "Features", ("GENERAL_LABELS", "IMAGE_PROPERTIES"), 2) or ["GENERAL_LABELS"]
        settings = _object(params, "Settings")
        general, colours = _object(settings, "GeneralLabels"), _object(settings, "ImageProperties")
        folded = {
            key: frozenset(v.casefold() for v in _names(general, key, None, 100))
            for key in ("LabelInclusionFilters", "LabelExclusionFilters", "LabelCategoryInclusionFilters",
                        "LabelCategoryExclusionFilters")
        }  # fmt: skip
        return cls(
            max_labels=integer(params, "MaxLabels", None, 0, None),
            min_confidence=number(params, "MinConfidence", 55.0, 0.0, 100.0),
            general="GENERAL_LABELS" in features,
            properties="IMAGE_PROPERTIES" in features,
            max_colors=integer(colours, "MaxDominantColors", 10, 0, 20) or 0,
            include=folded["LabelInclusionFilters"],
            exclude=folded["LabelExclusionFilters"],
            include_categories=folded["LabelCategoryInclusionFilters"],
            exclude_categories=folded["LabelCategoryExclusionFilters"],
        )


@dataclass(frozen=True)
class TextRequest:
    min_confidence: float
    min_height: float
    min_width: float
    regions: tuple[tuple[float, float, float, float], ...]  # (x0, y0, x1, y1), normalised

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> TextRequest:
        filters = _object(params, "Filters")
        words = _object(filters, "WordFilter")
        rois = filters.get("RegionsOfInterest", [])
        if not isinstance(rois, list) or len(rois) > 10:
            raise invalid("Filters.RegionsOfInterest must be a list of at most 10 regions")
        return cls(
            min_confidence=number(words, "MinConfidence", 0.0, 0.0, 100.0),
            min_height=number(words, "MinBoundingBoxHeight", 0.0, 0.0, 1.0),
            min_width=number(words, "MinBoundingBoxWidth", 0.0, 0.0, 1.0),
            regions=tuple(_region(r) for r in rois),
        )


def _region(region: Any) -> tuple[float, float, float, float]:
    """A region of interest (BoundingBox, or the box around a Polygon) as (x0, y0, x1, y1)."""
    if isinstance(region, dict) and isinstance(region.get("BoundingBox"), dict):
        box = region["BoundingBox"]
        left, top = number(box, "Left", 0.0, -1.0, 2.0), number(box, "Top", 0.0, -1.0, 2.0)
        width, height = number(box, "Width", 1.0, 0.0, 2.0), number(box, "Height", 1.0, 0.0, 2.0)
        return left, top, left + width, top + height
    points = region.get("Polygon") if isinstance(region, dict) else None
    if not isinstance(points, list) or len(points) < 3 or not all(isinstance(p, dict) for p in points):
        raise invalid("each region of interest needs a BoundingBox or a Polygon of at least 3 points")
    xs = [number(p, "X", 0.0, -1.0, 2.0) for p in points]
    ys = [number(p, "Y", 0.0, -1.0, 2.0) for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def face_attributes(params: Mapping[str, Any]) -> frozenset[str]:
    """DetectFaces `Attributes`, validated: the names asked for, {"DEFAULT"} when none."""
    return frozenset(_names(params, "Attributes", FACE_ATTRIBUTES, len(FACE_ATTRIBUTES)) or ["DEFAULT"])
