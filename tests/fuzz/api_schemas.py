"""What the API fuzzer sends beyond the app's own OpenAPI schema: the served schema steered (images that
decode, known analyzer names, Google Cloud Vision bodies loosened so wrong types are tried too), and a
hypothesis strategy of AWS Rekognition JSON 1.1 bodies, signed with botocore's SigV4 as boto3 signs them.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import strategies as st

from feedlens.analyzers.registry import DEFAULT_ANALYZERS
from feedlens.api.inputs import ImageBody
from tests.fuzz.regressions import KNOWN_SEED_BUGS
from tests.fuzz.seeds import seed_images

REKOGNITION_JSON = "application/x-amz-json-1.1"
REKOGNITION_OPERATIONS = ("DetectLabels", "DetectModerationLabels", "DetectText", "DetectFaces")
GCV_PATH = "/v1/images:annotate"
GCV_FEATURES = (
    "TYPE_UNSPECIFIED", "FACE_DETECTION", "LANDMARK_DETECTION", "LOGO_DETECTION", "LABEL_DETECTION",
    "TEXT_DETECTION", "DOCUMENT_TEXT_DETECTION", "SAFE_SEARCH_DETECTION", "IMAGE_PROPERTIES",
    "CROP_HINTS", "WEB_DETECTION", "PRODUCT_SEARCH", "OBJECT_LOCALIZATION",
)  # fmt: skip


def image_contents() -> list[str]:
    """Base64 of every seed image and of its first half (a truncated file): bodies that reach the
    decoder, which random strings almost never do."""
    out = []
    for name, data in seed_images().items():
        if name not in KNOWN_SEED_BUGS:
            out += [base64.b64encode(data).decode(), base64.b64encode(data[: len(data) // 2]).decode()]
    return out


def _content(contents: list[str]) -> dict[str, Any]:
    # Positive cases carry these images; negative ones (schemathesis's) any other value.
    return {"enum": contents}


def gcv_request_schema(contents: list[str]) -> dict[str, Any]:
    """JSON Schema of a Vision v1 BatchAnnotateImagesRequest (loose: every field may also be wrong)."""
    feature = {
        "type": "object",
        "properties": {
            "type": {"anyOf": [{"enum": list(GCV_FEATURES)}, {"type": "integer"}]},
            "maxResults": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "model": {"type": "string"},
        },
    }
    image = {
        "type": "object",
        "properties": {
            "content": _content(contents),
            "source": {
                "type": "object",
                "properties": {"imageUri": {"type": "string"}, "gcsImageUri": {"type": "string"}},
            },
        },
        "minProperties": 1,
    }
    context = {
        "type": "object",
        "properties": {
            "cropHintsParams": {
                "type": "object",
                "properties": {"aspectRatios": {"type": "array", "items": {"type": "number"}}},
            },
            "languageHints": {"type": "array", "items": {"type": "string"}},
        },
    }
    item = {
        "type": "object",
        "properties": {
            "image": image,
            "features": {"type": "array", "items": feature, "maxItems": 4},
            "imageContext": context,
        },
        "required": ["image", "features"],
    }
    return {
        "type": "object",
        "properties": {
            "requests": {"type": "array", "items": item, "maxItems": 17},
            "parent": {"type": "string"},
        },
        "required": ["requests"],
    }


def _components(contents: list[str]) -> dict[str, Any]:
    """AnalyzeBody/ImageBody/ImageSource from the app's pydantic models: the served schema refers to
    `#/components/schemas/AnalyzeBody` without defining it, so no tool could generate those bodies."""
    schema = ImageBody.model_json_schema(ref_template="#/components/schemas/{model}")
    defs: dict[str, Any] = schema.pop("$defs", {})
    defs["ImageBody"] = schema
    analyze = copy.deepcopy(schema)
    analyze["properties"].pop("post", None)
    analyze["title"] = "AnalyzeBody"
    defs["AnalyzeBody"] = analyze
    return defs


def _steer(components: dict[str, Any], contents: list[str]) -> None:
    """Positive cases that get past validation: image content that decodes, known analyzer names."""
    source = components["ImageSource"]
    source["properties"]["content"] = _content(contents)
    source["required"] = ["content"]  # exactly one of content/url; URLs are refused (fetching is off)
    source["properties"].pop("url", None)
    names = {"type": "array", "items": {"enum": list(DEFAULT_ANALYZERS)}, "minItems": 1, "maxItems": 3}
    for body in ("AnalyzeBody", "ImageBody"):
        components[body]["properties"]["analyzers"] = {"anyOf": [names, {"type": "null"}]}


def patched_openapi(served: dict[str, Any]) -> dict[str, Any]:
    """The served /openapi.json with the bodies above filled in, and without Rekognition's `POST /`
    (signed per request; `rekognition_requests` below covers it)."""
    schema = copy.deepcopy(served)
    contents = image_contents()
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, value in _components(contents).items():
        components.setdefault(name, value)
    _steer(components, contents)
    paths = schema["paths"]
    paths.pop("/", None)
    if GCV_PATH in paths:
        gcv = paths[GCV_PATH]["post"]
        served_body = gcv["requestBody"]["content"]["application/json"]["schema"]
        assert "requests" in served_body["properties"], "the served schema lost the GCV request body"
        # the served schema, loosened where a wrong type should also be tried, and steered to images
        gcv["requestBody"]["content"] = {"application/json": {"schema": gcv_request_schema(contents)}}
        # the key goes in the Authorization header: a generated ?key= would only ever be refused
        gcv["parameters"] = [p for p in gcv.get("parameters", []) if p.get("name") != "key"]
    if "BatchItemBody" in components:  # batch items that decode, a few per batch
        components["BatchItemBody"]["properties"]["content"] = _content(contents)
        components["BatchBody"]["properties"]["items"]["maxItems"] = 4
    return schema


# -- Rekognition ---------------------------------------------------------------------------------------
_NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
)
_JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
_ANY_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _names(known: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(st.sampled_from(known) | st.text(max_size=12), max_size=4), _ANY_JSON)


def _image(contents: list[str]) -> st.SearchStrategy[Any]:
    data = (
        st.sampled_from(contents)
        | st.text(max_size=40)
        | st.binary(max_size=30).map(lambda b: base64.b64encode(b).decode())
    )
    return st.one_of(
        st.fixed_dictionaries({"Bytes": data}),
        st.fixed_dictionaries({"S3Object": st.fixed_dictionaries({"Bucket": st.text(), "Name": st.text()})}),
        _ANY_JSON,
    )


def _box() -> st.SearchStrategy[Any]:
    return st.dictionaries(st.sampled_from(["Left", "Top", "Width", "Height"]), _NUMBERS, max_size=4)


def _valid_params(contents: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Parameters a real client sends: an image that decodes (or is cut short), values in range."""
    percent = st.floats(min_value=0, max_value=100)
    return st.fixed_dictionaries(
        {"Image": st.fixed_dictionaries({"Bytes": st.sampled_from(contents)})},
        optional={
            "MaxLabels": st.integers(min_value=0, max_value=1000),
            "MinConfidence": percent,
            "Features": st.lists(st.sampled_from(["GENERAL_LABELS", "IMAGE_PROPERTIES"]), max_size=2),
            "Attributes": st.lists(st.sampled_from(["DEFAULT", "ALL", "EMOTIONS"]), max_size=2),
            "Filters": st.fixed_dictionaries(
                {"WordFilter": st.fixed_dictionaries({"MinConfidence": percent})}
            ),
        },
    )


def _wild_params(contents: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Any of the four operations' parameters (and of none) with values of any type."""
    attributes = ("DEFAULT", "ALL", "EMOTIONS", "AGE_RANGE", "SMILE")
    filters = st.fixed_dictionaries(
        {},
        optional={
            "WordFilter": st.dictionaries(
                st.sampled_from(["MinConfidence", "MinBoundingBoxHeight", "MinBoundingBoxWidth"]), _NUMBERS
            ),
            "RegionsOfInterest": st.lists(
                st.fixed_dictionaries({}, optional={"BoundingBox": _box(), "Polygon": st.lists(_box())}),
                max_size=12,
            )
            | _ANY_JSON,
        },
    )
    settings = st.fixed_dictionaries(
        {},
        optional={
            "GeneralLabels": st.dictionaries(
                st.sampled_from(["LabelInclusionFilters", "LabelExclusionFilters"]), _names(("Cat", "Dog"))
            ),
            "ImageProperties": st.fixed_dictionaries({"MaxDominantColors": _NUMBERS}),
        },
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "Image": _image(contents),
            "MaxLabels": _NUMBERS,
            "MinConfidence": _NUMBERS,
            "Features": _names(("GENERAL_LABELS", "IMAGE_PROPERTIES")),
            "Settings": settings | _ANY_JSON,
            "Attributes": _names(attributes),
            "Filters": filters | _ANY_JSON,
            "ProjectVersion": st.text(max_size=10),
        },
    )


def rekognition_requests(contents: list[str]) -> st.SearchStrategy[tuple[str, bytes]]:
    """(X-Amz-Target, body): mostly JSON objects of the operations' parameters, some raw bytes."""
    header_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)
    target = st.sampled_from(REKOGNITION_OPERATIONS).map("RekognitionService.{}".format) | header_text
    params = _valid_params(contents) | _wild_params(contents)
    body = params.map(lambda p: json.dumps(p).encode()) | st.binary(max_size=64)
    return st.tuples(target, body)


def sigv4_headers(
    url: str, pair: tuple[str, str], target: str, body: bytes, content_type: str = REKOGNITION_JSON
) -> dict[str, str]:
    """The headers boto3 would send for this body: X-Amz-Target, content type and a SigV4 signature
    (over the content type too, so another type is signed here, not swapped in afterwards)."""
    headers = {"X-Amz-Target": target}
    if content_type:
        headers["Content-Type"] = content_type
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(*pair), "rekognition", "us-east-1").add_auth(request)
    return dict(request.headers.items())
