"""Reading an image from a request: multipart upload, base64 JSON, or a URL (through the safe fetcher)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.datastructures import UploadFile

from feedlens.analyzers.registry import analyzer_type
from feedlens.api.problems import Problem
from feedlens.core.nesting import NestingError, check_json
from feedlens.services.feeds import PostRecord


class ImageSource(BaseModel):
    """Exactly one of `content` (base64) or `url`."""

    model_config = ConfigDict(extra="forbid")

    content: str | None = Field(None, description="the image bytes, base64 (standard or URL-safe)")
    url: str | None = Field(None, max_length=4096, description="http(s) URL, fetched if the server allows it")

    @model_validator(mode="after")
    def _one(self) -> ImageSource:
        if (self.content is None) == (self.url is None):
            raise ValueError("give exactly one of image.content or image.url")
        return self


class AnalyzeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: ImageSource
    analyzers: list[str] | None = Field(None, description="default: every analyzer")


class ImageBody(AnalyzeBody):
    post: dict[str, Any] | None = Field(None, description="post metadata, the feed schema (docs/feeds.md)")


@dataclass(frozen=True, slots=True)
class ImageInput:
    name: str
    data: bytes | None
    url: str | None
    analyzers: list[str] | None
    post: PostRecord | None


def decode_base64(text: str) -> bytes:
    try:
        cleaned = "".join(text.split())
        return base64.b64decode(
            cleaned.replace("-", "+").replace("_", "/") + "=" * (-len(cleaned) % 4), validate=True
        )
    except (binascii.Error, ValueError) as exc:
        raise Problem(422, "invalid_base64", f"image.content is not valid base64: {exc}") from None


def parse_analyzers(value: list[str] | str | None) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in (value.split(",") if isinstance(value, str) else value) if n.strip()]
    for name in names:
        analyzer_type(name)  # UnknownAnalyzerError -> 422
    return names or None


def parse_post(value: dict[str, Any] | str | None, image_ref: str) -> PostRecord | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, str):
            check_json(value.encode(), "post")  # a form field is not covered by the body's JSON guard
        raw = json.loads(value) if isinstance(value, str) else dict(value)
        if not isinstance(raw, dict):
            raise ValueError("post must be a JSON object")
        raw.setdefault("image", image_ref)  # the uploaded image is the post's image
        return PostRecord.model_validate(raw)
    except NestingError as exc:
        raise Problem(400, exc.code, exc.message) from None
    except (ValueError, ValidationError) as exc:
        raise Problem(422, "invalid_post", f"post metadata is invalid: {exc}") from None


async def read_image_input(request: Request, allow_post: bool) -> ImageInput:
    """One image from a multipart (`file`, `analyzers`, `post`) or JSON body; query `analyzers` also works."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    query_analyzers = request.query_params.get("analyzers")
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(422, "missing_file", "multipart body needs a file field named 'file'")
        name = upload.filename or "upload"
        analyzers = form.get("analyzers")
        post_field = form.get("post") if allow_post else None
        return ImageInput(
            name=name,
            data=await upload.read(),
            url=None,
            analyzers=parse_analyzers(analyzers if isinstance(analyzers, str) else query_analyzers),
            post=parse_post(post_field if isinstance(post_field, str) else None, name),
        )
    if content_type in ("application/json", ""):
        try:
            raw = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise Problem(422, "invalid_json", "the body is not valid JSON") from None
        model = ImageBody if allow_post else AnalyzeBody
        try:
            body = model.model_validate(raw)
        except ValidationError as exc:
            errors = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
            raise Problem(
                422, "invalid_request", "the body does not match the schema", errors=errors
            ) from None
        name = body.image.url or "upload"
        post = body.post if isinstance(body, ImageBody) else None
        return ImageInput(
            name=name,
            data=decode_base64(body.image.content) if body.image.content is not None else None,
            url=body.image.url,
            analyzers=parse_analyzers(body.analyzers if body.analyzers is not None else query_analyzers),
            post=parse_post(post, name),
        )
    raise Problem(
        415, "unsupported_media_type", "send multipart/form-data (field 'file') or application/json"
    )
