"""The served OpenAPI document is whole: every $ref resolves, and the bodies read by hand (analyze, images,
batches, brands, Google Cloud Vision, Rekognition) carry their schemas, so /docs, /redoc and generators
such as schemathesis can build requests from it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from feedlens.api.app import create_app
from feedlens.config import Settings


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _document(tmp_path: Path) -> dict[str, Any]:
    return create_app(Settings(data_dir=tmp_path)).openapi()  # no lifespan: nothing loads


def test_every_reference_resolves(tmp_path: Path) -> None:
    document = _document(tmp_path)
    schemas = document["components"]["schemas"]
    refs = set(_refs(document))
    assert "#/components/schemas/AnalyzeBody" in refs and "#/components/schemas/BatchBody" in refs
    dangling = {r for r in refs if r.removeprefix("#/components/schemas/") not in schemas}
    assert not dangling, dangling


def test_hand_read_bodies_have_schemas(tmp_path: Path) -> None:
    paths = _document(tmp_path)["paths"]
    for path in ("/v1/analyze", "/v1/images", "/v1/batches", "/v1/images:annotate", "/"):
        content = paths[path]["post"]["requestBody"]["content"]
        assert any(media.get("schema") not in (None, {}, {"type": "object"}) for media in content.values()), (
            path
        )
    gcv = paths["/v1/images:annotate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    item = gcv["properties"]["requests"]["items"]
    assert item["required"] == ["image", "features"]
    assert (
        "LABEL_DETECTION" in item["properties"]["features"]["items"]["properties"]["type"]["anyOf"][0]["enum"]
    )
    aws = paths["/"]["post"]
    assert "Image" in aws["requestBody"]["content"]["application/x-amz-json-1.1"]["schema"]["properties"]
    assert {p["name"] for p in aws["parameters"]} >= {"X-Amz-Target", "Authorization"}
    assert set(paths["/v1/batches"]["post"]["requestBody"]["content"]) == {
        "application/json",
        "multipart/form-data",
    }
