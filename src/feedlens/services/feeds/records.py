"""Feed records: the post schema (PostRecord), its normalisers and aliases, and the feed error codes.

The schema, the accepted key aliases and the error codes are documented in docs/feeds.md; keep them in step.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from feedlens.core.errors import FeedlensError

FeedFormat = Literal["jsonl", "csv"]

JSONL_SUFFIXES: Final = frozenset({".jsonl", ".ndjson", ".json-lines"})
CSV_SUFFIXES: Final = frozenset({".csv"})

MAX_ID_CHARS: Final = 128
MAX_PLATFORM_CHARS: Final = 32
MAX_CAPTION_CHARS: Final = 10_000
MAX_AUTHOR_CHARS: Final = 256
MAX_URL_CHARS: Final = 2048
MAX_IMAGE_REF_CHARS: Final = 4096
MAX_COUNT: Final = 2**63 - 1  # what a BIGINT column holds

# Accepted keys per field, canonical name first; the first one present with a non-blank value wins.
# Keys are matched after `_norm_key` (case, spaces and dashes do not matter). Documented in docs/feeds.md.
FIELD_KEYS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "id": ("id", "post_id"),
        "platform": ("platform", "network"),
        "image": ("image", "image_url", "image_path", "media_url", "display_url"),
        "images": ("images", "image_urls", "media_urls", "carousel"),
        "caption": ("caption", "text", "description"),
        "author": ("author", "username", "user", "handle"),
        "created_at": ("created_at", "timestamp", "date", "posted_at", "taken_at"),
        "hashtags": ("hashtags", "tags"),
        "likes": ("likes", "like_count", "likes_count", "favorite_count"),
        "comments": ("comments", "comment_count", "comments_count", "reply_count"),
        "shares": ("shares", "share_count", "shares_count", "retweets", "retweet_count"),
        "url": ("url", "permalink", "post_url", "link"),
    }
)

_UTF8_BOM: Final = b"\xef\xbb\xbf"
_UTF16_BOMS: Final = (b"\xff\xfe", b"\xfe\xff")  # UTF-32 LE starts like UTF-16 LE
_SKIP_CHUNK: Final = 64 * 1024  # how much of an over-long line is read at a time while skipping it
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_PLAIN_COUNT: Final = re.compile(r"[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+")
_SUFFIXED_COUNT: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kKmMbB])")
_UNIX_SECONDS: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_TAG_SEPARATORS: Final = re.compile(r"[\s,#]+")
_MULTIPLIERS: Final[Mapping[str, int]] = MappingProxyType({"k": 10**3, "m": 10**6, "b": 10**9})


class FeedErrorCode(StrEnum):
    """Why a feed, or one line of it, was refused. Stable strings: never rename one."""

    # The whole feed (raised as FeedError).
    UNREADABLE = "feed_unreadable"
    UNSUPPORTED_FORMAT = "feed_unsupported_format"
    INVALID_HEADER = "feed_invalid_header"
    # One line or row (reported as FeedRow.error); INVALID_ENCODING is also raised for a UTF-16 feed.
    INVALID_ENCODING = "feed_invalid_encoding"
    LINE_TOO_LONG = "feed_line_too_long"
    INVALID_JSON = "feed_invalid_json"
    INVALID_RECORD = "feed_invalid_record"
    NO_IMAGE = "feed_no_image"
    BAD_IMAGE_REF = "feed_bad_image_ref"


class FeedError(FeedlensError):
    """The feed as a whole cannot be read; also raised by `resolve_image` for a refused reference."""

    http_status = 422

    def __init__(self, code: FeedErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code.value
        self.feed_code = code


@dataclass(frozen=True, slots=True)
class FeedRowError:
    """Why one line or row was refused; `message` starts with the line number and names the field(s)."""

    code: FeedErrorCode
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message": self.message}


def _norm_key(key: str) -> str:
    return re.sub(r"[\s-]+", "_", key.strip().lower())


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _encodable(text: str) -> bool:
    """False for lone surrogates (JSON "\\ud800" escapes, undecodable CSV bytes): no store can keep them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _canonical(data: Mapping[Any, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Map aliases to field names: (values by field, the original key each value came from)."""
    found: dict[str, Any] = {}
    original: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str) or _blank(value):
            continue  # blank means absent: a CSV empty cell, "" or null
        name = _norm_key(key)
        if name not in found:
            found[name] = value
            original[name] = key
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for field, names in FIELD_KEYS.items():
        for name in names:
            if name in found:
                values[field] = found[name]
                sources[field] = original[name]
                break
    return values, sources


def _text(value: object) -> object:
    """Strip a string and refuse characters no store keeps; other types are left for pydantic to refuse."""
    if not isinstance(value, str):
        return value
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    if not _encodable(value):
        raise ValueError("contains an unpaired surrogate (not valid Unicode)")
    return value.strip()


def _http_url_problem(url: str) -> str | None:
    """Why `url` is not a usable http(s) URL, or None when it is."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return f"only http and https URLs are accepted, not {parts.scheme.lower() or 'no scheme'}"
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return "has an invalid port"
    if not parts.hostname:
        return "has no host"
    return None


def check_image_ref(ref: str) -> str:
    """The stripped reference if it is an http(s) URL or a file path; ValueError says why not."""
    ref = ref.strip()
    if not ref:
        raise ValueError("is empty")
    if len(ref) > MAX_IMAGE_REF_CHARS:
        raise ValueError(f"is longer than {MAX_IMAGE_REF_CHARS} characters")
    if "\x00" in ref:
        raise ValueError("contains a NUL character")
    if ref.startswith("//"):
        # A protocol-relative URL or a POSIX path: ambiguous, so neither guess is made.
        raise ValueError("starts with '//': write https://... for a URL or a single / for a path")
    if _SCHEME.match(ref):
        problem = _http_url_problem(ref)
        if problem is not None:
            raise ValueError(f"{ref[:80]!r}: {problem}")
    return ref


def _image_ref(ref: str, where: str) -> str:
    try:
        return check_image_ref(ref)
    except ValueError as exc:
        raise PydanticCustomError(
            "feed_bad_image_ref", "{where} {reason}", {"where": where, "reason": str(exc)}
        ) from None


def _count(value: object) -> object:
    """Counts as exported: 1234, 1234.0, "1234", "1,234", "1.2k", "3M" (suffixed values are rounded)."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true/false")
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise ValueError("must be a whole number")
    if not isinstance(value, str):
        return value
    text = value.strip()
    sign = -1 if text.startswith("-") else 1  # kept so the message says "greater than or equal to 0"
    body = text.removeprefix("-").strip()
    if _PLAIN_COUNT.fullmatch(body):
        return sign * int(body.replace(",", ""))
    if match := _SUFFIXED_COUNT.fullmatch(body):
        scaled = Decimal(match.group(1)) * _MULTIPLIERS[match.group(2).lower()]
        return sign * int(scaled.to_integral_value(rounding=ROUND_HALF_UP))
    raise ValueError(f"not a count: {text[:40]!r} (use 1234, 1,234, 1.2k or 3M)")


def _from_unix(seconds: float) -> datetime:
    if not math.isfinite(seconds):
        raise ValueError("is not a finite number")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError("is out of range (unix seconds expected; milliseconds are not accepted)") from None


def _timestamp(value: object) -> object:
    """ISO 8601 text or unix seconds (number or digits) to an aware UTC datetime; naive means UTC."""
    if isinstance(value, bool):
        raise ValueError("must be an ISO 8601 date-time or unix seconds, not true/false")
    if isinstance(value, int | float):
        return _from_unix(value)
    if isinstance(value, str):
        text = value.strip()
        if _UNIX_SECONDS.fullmatch(text):
            return _from_unix(float(text))
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO 8601 date-time or unix seconds: {text[:40]!r}") from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _is_tag_char(ch: str) -> bool:
    # Letters, digits, underscore, and combining marks (so Devanagari or Thai words are not cut short).
    return ch.isalnum() or ch == "_" or unicodedata.category(ch).startswith("M")


def caption_hashtags(caption: str) -> list[str]:
    """Hashtags written in a caption, lower-cased, in order, with repeats.

    A tag is '#' plus letters/digits/_ (Unicode). It must start the text or follow a character that is not
    a tag character, '&' or '/' (so "a#b", "&#39;" and "page/#anchor" are not tags), or directly follow
    another tag ("#sun#sea" is two). All-digit tags ("#1") are not tags, as on the platforms.
    """
    tags: list[str] = []
    last_end = -1
    start = caption.find("#")
    while start >= 0:
        end = start + 1
        prev = caption[start - 1] if start else ""
        if start == last_end or not prev or not (_is_tag_char(prev) or prev in "&/"):
            while end < len(caption) and _is_tag_char(caption[end]):
                end += 1
            tag = caption[start + 1 : end]
            if tag and not tag.isdigit():
                tags.append(tag.lower())
                last_end = end
        start = caption.find("#", end)
    return tags


def _tags(value: object) -> object:
    """Hashtags as a list or a string; items split on spaces, commas and '#', lower-cased, blanks dropped."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return value
    tags: list[str] = []
    for item in value:
        text = _text(item)
        if not isinstance(text, str):
            raise ValueError("must be a list of strings or a string")
        tags.extend(part.lower() for part in _TAG_SEPARATORS.split(text) if part)
    return tags


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


class PostRecord(BaseModel):
    """One post of a feed export, validated and normalised. Unknown keys are ignored (see docs/feeds.md).

    After validation `images` holds every image (`image` first, de-duplicated) and `image` is its first
    entry, so a consumer can use either; `hashtags` includes the caption's.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    platform: str = Field(default="", max_length=MAX_PLATFORM_CHARS)
    image: str | None = None
    images: list[str] = Field(default_factory=list)
    caption: str | None = Field(default=None, max_length=MAX_CAPTION_CHARS)
    author: str | None = Field(default=None, max_length=MAX_AUTHOR_CHARS)
    created_at: datetime | None = None
    hashtags: list[str] = Field(default_factory=list)
    likes: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    comments: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    shares: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    url: str | None = Field(default=None, max_length=MAX_URL_CHARS)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        return _canonical(data)[0] if isinstance(data, Mapping) else data

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # platforms' numeric ids arrive as JSON numbers
        return _text(value)

    @field_validator("platform", mode="before")
    @classmethod
    def _platform(cls, value: object) -> object:
        value = _text(value)
        return value.lower() if isinstance(value, str) else value

    @field_validator("caption", "url", mode="before")
    @classmethod
    def _plain_text(cls, value: object) -> object:
        return _text(value)

    @field_validator("image", mode="before")
    @classmethod
    def _image_before(cls, value: object) -> object:
        return _text(value)

    @field_validator("image")
    @classmethod
    def _image_ref(cls, value: str | None) -> str | None:
        return None if value is None else _image_ref(value, "image")

    @field_validator("images", mode="before")
    @classmethod
    def _images_before(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.split()  # CSV: references separated by spaces or newlines
        if isinstance(value, list):
            value = [_text(item) for item in value]
            return [item for item in value if item != ""]
        return value

    @field_validator("images")
    @classmethod
    def _image_refs(cls, value: list[str]) -> list[str]:
        return [_image_ref(ref, f"images[{i}]") for i, ref in enumerate(value)]

    @field_validator("author", mode="before")
    @classmethod
    def _author(cls, value: object) -> object:
        value = _text(value)
        if isinstance(value, str):
            value = value.removeprefix("@").strip()
            return value or None
        return value

    @field_validator("created_at", mode="before")
    @classmethod
    def _created_at(cls, value: object) -> object:
        return _timestamp(value)

    @field_validator("hashtags", mode="before")
    @classmethod
    def _hashtags(cls, value: object) -> object:
        return _tags(value)

    @field_validator("likes", "comments", "shares", mode="before")
    @classmethod
    def _counts(cls, value: object) -> object:
        return _count(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and (problem := _http_url_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _merge(self) -> PostRecord:
        images = _dedupe(([self.image] if self.image else []) + self.images)
        if not images:
            keys = ", ".join(FIELD_KEYS["image"] + FIELD_KEYS["images"])
            raise PydanticCustomError("feed_no_image", "no image: give one of {keys}", {"keys": keys})
        hashtags = _dedupe(self.hashtags + caption_hashtags(self.caption or ""))
        # The model is frozen to its users; these two fields are completed here, during validation.
        object.__setattr__(self, "image", images[0])
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "hashtags", hashtags)
        return self
