"""Google Cloud Vision `images:annotate` on the wire: enums, errors and request parsing, no I/O.

`parse_body` turns a `BatchAnnotateImagesRequest` JSON body into `ImageRequest`s (request-level problems
raise `GcvError`; a bad item becomes that item's own `error`), and `encode_enums` writes enums as names or
as integers (what the official client asks for with `$alt=json;enum-encoding=int`). Results are mapped in
`gcv_annotate` and `gcv_layout`. Field-by-field notes: docs/compat.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from enum import IntEnum
from types import MappingProxyType
from typing import Any

from feedlens.api.compat.base64_head import HEAD_BYTES, decode_base64
from feedlens.core.errors import ImageError

HeaderCheck = Callable[[bytes], None]  # ImageDecoder.check_header: raises ImageError or returns

MAX_IMAGES = 16  # Google's limit of images per request
MAX_ASPECT_RATIOS = 16  # Google ignores aspect ratios after the 16th
DEFAULT_MAX_RESULTS = 10  # what Google returns for labels, objects, faces, colours when maxResults is unset


class Code(IntEnum):
    """google.rpc.Code."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class FeatureType(IntEnum):
    """google.cloud.vision.v1.Feature.Type."""

    TYPE_UNSPECIFIED = 0
    FACE_DETECTION = 1
    LANDMARK_DETECTION = 2
    LOGO_DETECTION = 3
    LABEL_DETECTION = 4
    TEXT_DETECTION = 5
    SAFE_SEARCH_DETECTION = 6
    IMAGE_PROPERTIES = 7
    CROP_HINTS = 9
    WEB_DETECTION = 10
    DOCUMENT_TEXT_DETECTION = 11
    PRODUCT_SEARCH = 12
    OBJECT_LOCALIZATION = 19


class Likelihood(IntEnum):
    UNKNOWN = 0
    VERY_UNLIKELY = 1
    UNLIKELY = 2
    POSSIBLE = 3
    LIKELY = 4
    VERY_LIKELY = 5


# The analyzers each supported feature needs; nothing else runs.
FEATURE_ANALYZERS: Mapping[FeatureType, tuple[str, ...]] = MappingProxyType(
    {
        FeatureType.LABEL_DETECTION: ("labels",),
        FeatureType.SAFE_SEARCH_DETECTION: ("safety",),
        FeatureType.TEXT_DETECTION: ("text",),
        FeatureType.DOCUMENT_TEXT_DETECTION: ("text",),
        FeatureType.FACE_DETECTION: ("faces",),
        FeatureType.IMAGE_PROPERTIES: ("properties",),
        FeatureType.CROP_HINTS: ("faces", "body_regions", "text"),
        FeatureType.LOGO_DETECTION: ("text",),  # logos from the workspace's brands; names read in the image
        FeatureType.OBJECT_LOCALIZATION: ("objects",),
    }
)
SWITCHED_OFF = "switched off on this server (FEEDLENS_ANALYZERS)"
UNSUPPORTED: Mapping[FeatureType, str] = MappingProxyType(
    {
        FeatureType.LANDMARK_DETECTION: "feedlens has no landmark recogniser",
        FeatureType.WEB_DETECTION: "web detection needs Google's web index",
        FeatureType.PRODUCT_SEARCH: "feedlens has no product sets",
    }
)


class GcvError(Exception):
    """A request-level problem, answered with HTTP `status` and Google's error JSON."""

    def __init__(
        self,
        status: int,
        code: Code,
        message: str,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason  # google.rpc.ErrorInfo reason, e.g. API_KEY_INVALID
        self.headers = headers or {}


def error_body(status: int, code: Code, message: str, reason: str | None = None) -> dict[str, Any]:
    """Google's HTTP error JSON; `reason` goes into a google.rpc.ErrorInfo detail, as Google sends it."""
    error: dict[str, Any] = {"code": status, "message": message, "status": code.name}
    if reason is not None:
        error["details"] = [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "feedlens"}
        ]
    return {"error": error}


@dataclass(frozen=True, slots=True)
class Failure:
    """One image's `error` (a google.rpc.Status)."""

    code: Code
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": int(self.code), "message": self.message}


@dataclass(frozen=True, slots=True)
class Feature:
    type: FeatureType
    max_results: int  # 0: the default


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """One AnnotateImageRequest: its image as `content` or `uri` (exactly one, unless `failure`)."""

    content: bytes | None = None
    uri: str | None = None
    features: tuple[Feature, ...] = ()
    aspect_ratios: tuple[float, ...] = ()
    failure: Failure | None = None  # the item itself is invalid: nothing runs
    # Features whose analyzers the operator switched off (FEEDLENS_ANALYZERS): answered like unsupported
    # ones, so the other features of the request still run (`within`).
    off: tuple[FeatureType, ...] = ()

    @property
    def served(self) -> frozenset[FeatureType]:
        """The features asked for that feedlens answers here."""
        return frozenset(
            f.type for f in self.features if f.type in FEATURE_ANALYZERS and f.type not in self.off
        )

    @property
    def analyzers(self) -> tuple[str, ...]:
        names = {n for t in self.served for n in FEATURE_ANALYZERS[t]}
        return tuple(sorted(names))

    @property
    def unsupported(self) -> Failure | None:
        types = list(
            dict.fromkeys(f.type for f in self.features if f.type in UNSUPPORTED or f.type in self.off)
        )
        if not types:
            return None
        reasons = "; ".join(f"{t.name}: {UNSUPPORTED.get(t, SWITCHED_OFF)}" for t in types)
        return Failure(Code.UNIMPLEMENTED, f"not supported by feedlens: {reasons}")

    def max_results(self, kind: FeatureType) -> int:
        asked = [f.max_results for f in self.features if f.type is kind]
        return max(asked) if asked and max(asked) > 0 else DEFAULT_MAX_RESULTS


def within(request: ImageRequest, enabled: Collection[str]) -> ImageRequest:
    """`request` with the features that need an analyzer not in `enabled` (the analyzers this server
    runs) marked `off`."""
    off = tuple(
        dict.fromkeys(
            f.type
            for f in request.features
            if any(n not in enabled for n in FEATURE_ANALYZERS.get(f.type, ()))
        )
    )
    return replace(request, off=off) if off else request


def wants_int_enums(alt: str | None) -> bool:
    """`$alt=json;enum-encoding=int` (the official client) asks for enums as numbers."""
    return alt is not None and "enum-encoding=int" in alt.replace(" ", "").lower()


def parse_body(raw: bytes, check: HeaderCheck | None = None) -> list[ImageRequest]:
    """A BatchAnnotateImagesRequest body. Raises GcvError (400) when the request as a whole is unusable."""
    try:
        body = json.loads(raw)
    except RecursionError:  # the app's depth guard sees every body first; this is the last line
        raise GcvError(
            400, Code.INVALID_ARGUMENT, "Invalid JSON payload received: nested too deeply."
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise GcvError(400, Code.INVALID_ARGUMENT, f"Invalid JSON payload received. {exc}") from None
    if not isinstance(body, dict):
        raise GcvError(400, Code.INVALID_ARGUMENT, "Invalid JSON payload received: expected an object.")
    items = body.get("requests")
    if not isinstance(items, list) or not items:
        raise GcvError(400, Code.INVALID_ARGUMENT, "'requests' must be a non-empty list of image requests.")
    if len(items) > MAX_IMAGES:
        raise GcvError(
            400, Code.INVALID_ARGUMENT, f"Too many images per request: {len(items)}, at most {MAX_IMAGES}."
        )
    return [parse_request(item, i, check) for i, item in enumerate(items)]


def _get(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    # proto3 JSON parsers accept the lowerCamel and the original field name
    return obj.get(camel, obj.get(snake))


def _invalid(where: str, message: str) -> ImageRequest:
    return ImageRequest(failure=Failure(Code.INVALID_ARGUMENT, f"Invalid value at '{where}': {message}"))


def parse_request(item: Any, index: int, check: HeaderCheck | None = None) -> ImageRequest:
    """One AnnotateImageRequest; anything wrong with it becomes its INVALID_ARGUMENT failure. `check`
    (the decoder's header check) sees the content's first bytes and may refuse it at once."""
    where = f"requests[{index}]"
    if not isinstance(item, dict):
        return _invalid(where, "expected an object")
    image = item.get("image")
    if not isinstance(image, dict):
        return _invalid(f"{where}.image", "an image with 'content' or 'source' is required")
    content: bytes | None = None
    uri: str | None = None
    if image.get("content"):  # content takes precedence over source, as in Google's API
        text = image["content"]
        if not isinstance(text, str):
            return _invalid(f"{where}.image.content", "expected a base64 string")
        try:
            if check is not None:  # refuse a bomb by its header before decoding megabytes of base64
                check(decode_base64(text, head=HEAD_BYTES))
            content = decode_base64(text)
        except ValueError as exc:
            return _invalid(f"{where}.image.content", f"Base64 decoding failed ({exc})")
        except ImageError as exc:
            return ImageRequest(failure=image_failure(exc.code, exc.message))
    else:
        source = image.get("source")
        if not isinstance(source, dict):
            return _invalid(f"{where}.image", "either 'content' or 'source' is required")
        uri = _get(source, "imageUri", "image_uri") or _get(source, "gcsImageUri", "gcs_image_uri")
        if not isinstance(uri, str) or not uri:
            return _invalid(f"{where}.image.source", "'imageUri' is required")
        if uri.lower().startswith("gs://"):
            return ImageRequest(
                failure=Failure(Code.UNIMPLEMENTED, "gs:// URIs are not supported by feedlens")
            )
    features = item.get("features")
    if not isinstance(features, list) or not features:
        return _invalid(f"{where}.features", "at least one feature is required")
    parsed: list[Feature] = []
    for k, raw in enumerate(features):
        feature = _feature(raw)
        if isinstance(feature, str):
            return _invalid(f"{where}.features[{k}]", feature)
        parsed.append(feature)
    ratios = _aspect_ratios(_get(item, "imageContext", "image_context"))
    if isinstance(ratios, str):
        return _invalid(f"{where}.imageContext.cropHintsParams.aspectRatios", ratios)
    return ImageRequest(content=content, uri=uri, features=tuple(parsed), aspect_ratios=ratios)


def _feature(raw: Any) -> Feature | str:
    if not isinstance(raw, dict):
        return "expected an object"
    value = raw.get("type", 0)
    try:
        kind = FeatureType[value] if isinstance(value, str) else FeatureType(value)
    except (KeyError, ValueError):
        return f"unknown feature type {value!r}"
    if kind is FeatureType.TYPE_UNSPECIFIED:
        return "the feature type is required"
    limit = _get(raw, "maxResults", "max_results") or 0
    try:
        max_results = int(limit)  # int32 in proto3 JSON may come as a number or a decimal string
    except (TypeError, ValueError):
        return f"maxResults must be an integer, got {limit!r}"
    return Feature(kind, max(max_results, 0))


def _aspect_ratios(context: Any) -> tuple[float, ...] | str:
    if not isinstance(context, dict):
        return ()
    params = _get(context, "cropHintsParams", "crop_hints_params")
    if not isinstance(params, dict):
        return ()
    values = _get(params, "aspectRatios", "aspect_ratios") or []
    if not isinstance(values, list):
        return "expected a list of numbers"
    try:
        ratios = tuple(float(v) for v in values[:MAX_ASPECT_RATIOS])
    except (TypeError, ValueError):
        return "expected a list of numbers"
    if not all(math.isfinite(r) and r > 0 for r in ratios):
        return "aspect ratios must be positive"
    return ratios


def encode_enums(value: Any, as_int: bool) -> Any:
    """`value` with every IntEnum as its name (Google's default JSON) or its number."""
    if isinstance(value, IntEnum):
        return int(value) if as_int else value.name
    if isinstance(value, dict):
        return {k: encode_enums(v, as_int) for k, v in value.items()}
    if isinstance(value, list):
        return [encode_enums(v, as_int) for v in value]
    return value


def failure_response(failure: Failure) -> dict[str, Any]:
    return {"error": failure.to_dict()}


def image_failure(code: str, message: str) -> Failure:
    """A feedlens per-image error (decoder or analyzer) as a google.rpc status."""
    if code == "analyzer_failed":
        return Failure(Code.INTERNAL, f"the image could not be analysed: {message}")
    return Failure(Code.INVALID_ARGUMENT, f"Bad image data ({code}): {message}")


def fetch_failure(code: str, message: str) -> Failure:
    """A SafeFetcher refusal or failure (its FetchErrorCode value) as a google.rpc status."""
    match code:
        case "fetch_disabled" | "address_refused" | "url_scheme_refused":
            status = Code.PERMISSION_DENIED  # like Google's "not allowed to access the URL on your behalf"
        case "url_invalid" | "fetch_too_large":
            status = Code.INVALID_ARGUMENT
        case "fetch_timeout":
            status = Code.DEADLINE_EXCEEDED
        case _:
            status = Code.UNAVAILABLE
    return Failure(status, f"The URL could not be fetched ({code}): {message}")
