"""JSON Schemas of the cloud wire bodies, for the served OpenAPI document (/docs, /redoc, /openapi.json).

The compat routes read their bodies by hand (each protocol has its own error shapes), so FastAPI cannot
derive these; they are written from Google's and AWS's published request shapes, limited to the fields
feedlens reads. Validation stays in gcv.py and rekognition_requests.py: a body that breaks these schemas
is still answered in the protocol's own error shape, never a 422.
"""

from __future__ import annotations

from typing import Any

from feedlens.api.compat.gcv import MAX_IMAGES, FeatureType

_FEATURE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {
            "description": "the feature, by name or by its enum number",
            "anyOf": [{"enum": [t.name for t in FeatureType]}, {"enum": [int(t) for t in FeatureType]}],
        },
        "maxResults": {"type": "integer", "description": "0 or unset: Google's default of 10"},
        "model": {"type": "string", "description": "accepted and ignored"},
    },
}

_GCV_IMAGE: dict[str, Any] = {
    "type": "object",
    "description": "exactly one of content (base64) or source",
    "properties": {
        "content": {"type": "string", "format": "byte"},
        "source": {
            "type": "object",
            "properties": {
                "imageUri": {"type": "string", "description": "http(s) only where URL fetching is on"},
                "gcsImageUri": {"type": "string", "description": "refused: no Cloud Storage here"},
            },
        },
    },
}

GCV_REQUEST: dict[str, Any] = {
    "title": "BatchAnnotateImagesRequest",
    "type": "object",
    "required": ["requests"],
    "properties": {
        "requests": {
            "type": "array",
            "maxItems": MAX_IMAGES,
            "items": {
                "title": "AnnotateImageRequest",
                "type": "object",
                "required": ["image", "features"],
                "properties": {
                    "image": _GCV_IMAGE,
                    "features": {"type": "array", "items": _FEATURE},
                    "imageContext": {
                        "type": "object",
                        "properties": {
                            "cropHintsParams": {
                                "type": "object",
                                "properties": {
                                    "aspectRatios": {"type": "array", "items": {"type": "number"}}
                                },
                            },
                            "languageHints": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
        },
        "parent": {"type": "string", "description": "accepted and ignored"},
    },
}

_REKOGNITION_IMAGE: dict[str, Any] = {
    "type": "object",
    "required": ["Bytes"],
    "properties": {
        "Bytes": {"type": "string", "format": "byte", "description": "the image, base64 (S3Object refused)"}
    },
}

REKOGNITION_REQUEST: dict[str, Any] = {
    "title": "RekognitionRequest",
    "description": (
        "the body of the operation named by X-Amz-Target (RekognitionService.<Operation>); signed with "
        "AWS SigV4, so generate it with an AWS SDK rather than by hand (docs/compat.md)"
    ),
    "type": "object",
    "properties": {
        "Image": _REKOGNITION_IMAGE,
        "SourceImage": _REKOGNITION_IMAGE,
        "TargetImage": _REKOGNITION_IMAGE,
        "MaxLabels": {"type": "integer", "minimum": 1},
        "MinConfidence": {"type": "number", "minimum": 0, "maximum": 100},
        "Attributes": {"type": "array", "items": {"type": "string"}},
        "Features": {"type": "array", "items": {"type": "string"}},
        "Filters": {"type": "object"},
        "Settings": {"type": "object"},
    },
}
