"""Social-feed exports (JSONL or CSV) read as a stream of validated posts, one result per line or row.

The schema, the accepted key aliases and the error codes are documented in docs/feeds.md; keep them in step.
Bad content never raises: each bad line becomes a `FeedRow` with an error and parsing goes on. Only a feed
that cannot be read at all (missing file, unknown suffix, unusable CSV header, UTF-16) raises `FeedError`.
"""

from __future__ import annotations

import csv
import json
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
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


@dataclass(frozen=True, slots=True)
class FeedRow:
    """One line (JSONL) or row (CSV, `line` is where it starts), 1-based: a record or an error."""

    line: int
    record: PostRecord | None
    error: FeedRowError | None

    @property
    def ok(self) -> bool:
        return self.error is None


def _failed(line: int, code: FeedErrorCode, message: str) -> FeedRow:
    return FeedRow(line, None, FeedRowError(code, f"line {line}: {message}"))


def _describe(exc: ValidationError, sources: Mapping[str, str]) -> tuple[FeedErrorCode, str]:
    """One message naming every bad field (and the key it came from), and the code that fits."""
    parts: list[str] = []
    kinds: set[str] = set()
    for err in exc.errors(include_url=False):
        kinds.add(err["type"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not err["loc"]:
            parts.append(msg)
            continue
        field = str(err["loc"][0])
        source = f" (from {sources[field]!r})" if sources.get(field, field) != field else ""
        if err["type"] == "feed_bad_image_ref":
            parts.append(f"{msg}{source}")  # the message names the field and the item
            continue
        if err["type"] == "missing":
            msg = "required (keys: " + ", ".join(FIELD_KEYS.get(field, (field,))) + ")"
        where = field + "".join(f"[{part}]" for part in err["loc"][1:])
        parts.append(f"{where}{source}: {msg}")
    if kinds == {"feed_no_image"}:
        return FeedErrorCode.NO_IMAGE, "; ".join(parts)
    if kinds == {"feed_bad_image_ref"}:
        return FeedErrorCode.BAD_IMAGE_REF, "; ".join(parts)
    return FeedErrorCode.INVALID_RECORD, "; ".join(parts)


def _record_row(line: int, data: Mapping[str, Any]) -> FeedRow:
    values, sources = _canonical(data)
    try:
        record = PostRecord.model_validate(values)
    except ValidationError as exc:
        code, message = _describe(exc, sources)
        return _failed(line, code, message)
    return FeedRow(line, record, None)


def feed_format(path: Path) -> FeedFormat | None:
    """The feed format from the file suffix (case-insensitive): .jsonl/.ndjson/.json-lines or .csv."""
    suffix = Path(path).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    return None


def resolve_image(record_image: str, feed_dir: Path) -> Path | str:
    """Where a record's image is: an http(s) URL stays a string; a relative path is joined to `feed_dir`.

    Any other scheme (file:, data:, ftp:, ...) raises FeedError `feed_bad_image_ref`: only the fetcher's
    http(s) and plain paths are fetched. Absolute paths are allowed; nothing is checked on disk here.
    """
    try:
        ref = check_image_ref(record_image)
    except ValueError as exc:
        raise FeedError(FeedErrorCode.BAD_IMAGE_REF, f"image reference {exc}") from None
    if _SCHEME.match(ref):
        return ref
    path = Path(ref)
    return path if path.is_absolute() else Path(feed_dir) / path


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    data: bytes | None  # None: longer than the limit, its bytes were skipped unread


def _open(path: Path) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise FeedError(FeedErrorCode.UNREADABLE, f"cannot open feed {path}: {exc.strerror or exc}") from None


def _lines(fh: IO[bytes], path: Path, max_line_bytes: int) -> Iterator[_Line]:
    """Physical lines split on b"\\n" with the BOM removed, never holding more than max_line_bytes + 1."""
    number = 0
    while True:
        try:
            chunk = fh.readline(max_line_bytes + 1)
            if not chunk:
                return
            number += 1
            if len(chunk) > max_line_bytes and not chunk.endswith(b"\n"):
                while chunk and not chunk.endswith(b"\n"):
                    chunk = fh.readline(_SKIP_CHUNK)
                yield _Line(number, None)
                continue
        except OSError as exc:
            raise FeedError(FeedErrorCode.UNREADABLE, f"cannot read feed {path}: {exc}") from None
        if number == 1:
            if chunk.startswith(_UTF16_BOMS):
                raise FeedError(
                    FeedErrorCode.INVALID_ENCODING, f"{path} is UTF-16 or UTF-32: save it as UTF-8"
                )
            chunk = chunk.removeprefix(_UTF8_BOM)
        yield _Line(number, chunk)


def _too_long(line: int, max_line_bytes: int) -> FeedRow:
    return _failed(line, FeedErrorCode.LINE_TOO_LONG, f"longer than {max_line_bytes} bytes, skipped")


def _iter_jsonl(path: Path, max_line_bytes: int) -> Iterator[FeedRow]:
    with _open(path) as fh:
        for line in _lines(fh, path, max_line_bytes):
            if line.data is None:
                yield _too_long(line.number, max_line_bytes)
                continue
            if not line.data.strip():
                continue
            try:
                text = line.data.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield _failed(
                    line.number, FeedErrorCode.INVALID_ENCODING, f"not UTF-8 (byte {exc.start + 1})"
                )
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                yield _failed(line.number, FeedErrorCode.INVALID_JSON, f"column {exc.colno}: {exc.msg}")
                continue
            except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit integer, or nesting too deep
                yield _failed(line.number, FeedErrorCode.INVALID_JSON, str(exc) or type(exc).__name__)
                continue
            if not isinstance(value, dict):
                kind = type(value).__name__
                yield _failed(
                    line.number, FeedErrorCode.INVALID_RECORD, f"expected a JSON object, got {kind}"
                )
                continue
            yield _record_row(line.number, value)


class _CsvRows:
    """csv.DictReader over bounded physical lines, knowing the line each row starts on.

    Undecodable bytes are kept as lone surrogates (surrogateescape) so that only the row holding them fails.
    Over-long lines are dropped before the csv module sees them and reported in `pending`.
    """

    def __init__(self, fh: IO[bytes], path: Path, max_line_bytes: int) -> None:
        self._path = path
        self._max_line_bytes = max_line_bytes
        self._lines = _lines(fh, path, max_line_bytes)
        self._header_seen = False
        self._row_start: int | None = None
        self.pending: list[FeedRow] = []
        self.reader = csv.DictReader(self._text(), restval=None)

    def _text(self) -> Iterator[str]:
        for line in self._lines:
            if line.data is None:
                if not self._header_seen:
                    raise self._invalid_header(
                        f"line {line.number} is longer than {self._max_line_bytes} bytes"
                    )
                self.pending.append(_too_long(line.number, self._max_line_bytes))
                continue
            blank = not line.data.strip()
            if blank and not self._header_seen:
                continue  # blank lines before the header
            self._header_seen = True
            if self._row_start is None and not blank:
                self._row_start = line.number
            yield line.data.decode("utf-8", "surrogateescape")

    def _invalid_header(self, problem: str) -> FeedError:
        return FeedError(FeedErrorCode.INVALID_HEADER, f"{self._path}: CSV header {problem}")

    def header(self) -> list[str] | None:
        """Normalised column names (None for an empty file); FeedError when unusable."""
        try:
            names = self.reader.fieldnames
        except csv.Error as exc:
            raise self._invalid_header(f"is malformed: {exc}") from None
        self._row_start = None
        if names is None:
            return None
        if not all(_encodable(name) for name in names):
            raise self._invalid_header("is not valid UTF-8")
        columns = [_norm_key(name) for name in names]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise self._invalid_header(f"repeats column(s) {', '.join(repeated)}")
        for what, keys in (("id", FIELD_KEYS["id"]), ("image", FIELD_KEYS["image"] + FIELD_KEYS["images"])):
            if not set(keys) & set(columns):
                raise self._invalid_header(f"has no {what} column (one of: {', '.join(keys)})")
        self.reader.fieldnames = columns
        return columns

    def _started(self) -> int:
        start, self._row_start = self._row_start or 0, None
        return start

    def rows(self) -> Iterator[FeedRow]:
        while True:
            try:
                row = next(self.reader)
            except StopIteration:
                break
            except csv.Error as exc:
                yield from self._drain()
                yield _failed(self._started(), FeedErrorCode.INVALID_RECORD, f"malformed CSV: {exc}")
                continue
            yield from self._drain()
            line = self._started()
            if all(_blank(value) for value in row.values()):
                continue  # a whitespace-only line
            yield self._row(line, row)
        yield from self._drain()

    def _drain(self) -> Iterator[FeedRow]:
        yield from self.pending
        self.pending.clear()

    @staticmethod
    def _row(line: int, row: dict[str | None, Any]) -> FeedRow:
        extra = row.pop(None, None)
        if extra is not None:
            return _failed(
                line, FeedErrorCode.INVALID_RECORD, f"{len(extra)} more cell(s) than the header has columns"
            )
        for column, value in row.items():
            if isinstance(value, str) and not _encodable(value):
                return _failed(line, FeedErrorCode.INVALID_ENCODING, f"column {column!r} is not UTF-8")
        return _record_row(line, {str(key): value for key, value in row.items()})


def _iter_csv(path: Path, max_line_bytes: int) -> Iterator[FeedRow]:
    with _open(path) as fh:
        source = _CsvRows(fh, path, max_line_bytes)
        if source.header() is not None:
            yield from source.rows()


def _precheck(path: Path, fmt: FeedFormat, max_line_bytes: int) -> None:
    """Raise the whole-feed errors now rather than at the first next() of the lazy iterator."""
    with _open(path) as fh:
        if fmt == "csv":
            _CsvRows(fh, path, max_line_bytes).header()
        else:
            next(_lines(fh, path, max_line_bytes), None)


def read_feed(path: Path, max_line_bytes: int = 1_000_000) -> Iterator[FeedRow]:
    """Stream a feed export's posts, one FeedRow per non-blank JSONL line or CSV row, in file order.

    Never loads the whole file: memory is bounded by `max_line_bytes` (a longer line becomes a
    `feed_line_too_long` row). Bad content becomes an error row and parsing goes on. Raises FeedError
    (`feed_unreadable`, `feed_unsupported_format`, `feed_invalid_header`, `feed_invalid_encoding` for
    UTF-16) at call time for a feed that cannot be read at all.
    """
    if max_line_bytes < 1:
        raise ValueError("max_line_bytes must be at least 1")
    path = Path(path)
    fmt = feed_format(path)
    if fmt is None:
        suffixes = ", ".join(sorted(JSONL_SUFFIXES | CSV_SUFFIXES))
        raise FeedError(
            FeedErrorCode.UNSUPPORTED_FORMAT, f"{path}: unknown feed suffix (expected {suffixes})"
        )
    _precheck(path, fmt, max_line_bytes)
    return _iter_jsonl(path, max_line_bytes) if fmt == "jsonl" else _iter_csv(path, max_line_bytes)
