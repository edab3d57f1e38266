"""Reading feed exports (JSONL or CSV) as a stream of validated posts, one result per line or row.

Bad content never raises: each bad line becomes a `FeedRow` with an error and parsing goes on. Only a feed
that cannot be read at all (missing file, unknown suffix, unusable CSV header, UTF-16) raises `FeedError`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from feedlens.core.nesting import MAX_DEPTH, json_depth
from feedlens.services.feeds.records import (
    _SCHEME,
    _SKIP_CHUNK,
    _UTF8_BOM,
    _UTF16_BOMS,
    CSV_SUFFIXES,
    FIELD_KEYS,
    JSONL_SUFFIXES,
    FeedError,
    FeedErrorCode,
    FeedFormat,
    FeedRowError,
    PostRecord,
    _blank,
    _canonical,
    _encodable,
    _norm_key,
    check_image_ref,
)


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
            if json_depth(line.data) > MAX_DEPTH:
                message = f"nests more than {MAX_DEPTH} levels deep"
                yield _failed(line.number, FeedErrorCode.INVALID_JSON, message)
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
