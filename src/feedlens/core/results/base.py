"""The result protocol every analyzer result follows, score validation, and the per-image report.

Each result type carries `SCHEMA` (name/version of its JSON form); bump the version whenever the
dictionary that `to_dict()` returns changes shape, so stored results can be told apart.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import TypeAdapter, ValidationError

from feedlens.core.errors import CodedError, FeedlensError, ImageError, ImageErrorCode

T = TypeVar("T")


class AnalyzerResult(Protocol):
    SCHEMA: ClassVar[str]

    def to_dict(self) -> dict[str, Any]: ...


class ResultSchemaError(ValueError):
    """A stored result that does not fit the current result type (another schema version, or damaged)."""


@functools.cache
def _adapter(cls: type[Any]) -> TypeAdapter[Any]:
    return TypeAdapter(cls)


def from_dict(cls: type[T], data: Mapping[str, Any]) -> T:
    """Rebuild a result dataclass from its `to_dict()` form, validated by pydantic (lists become tuples,
    strings enums) and by the dataclass's own `__post_init__` checks. Keys that are not init fields
    (`schema`, derived lists) are ignored; a different `schema` version is refused."""
    expected = getattr(cls, "SCHEMA", None)
    if expected is not None and data.get("schema", expected) != expected:
        raise ResultSchemaError(f"stored as {data.get('schema')!r}, this is {expected!r}")
    names = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    fields = {k: v for k, v in data.items() if k in names}
    try:
        result: T = _adapter(cls).validate_python(fields)  # type: ignore[arg-type]  # classes are hashable
    except ValidationError as exc:
        raise ResultSchemaError(f"not a valid {cls.__name__}: {exc.error_count()} problems") from exc
    return result


def required_result(results: Mapping[str, Any], name: str, kind: type[T]) -> T:
    """The result of analyzer `name`, which the caller made run. Missing or of another type is a server
    fault (a pipeline that did not run what was asked), not bad input: it raises TypeError."""
    found = results.get(name)
    if not isinstance(found, kind):
        got = "nothing" if found is None else type(found).__name__
        raise TypeError(f"the {name!r} result should be a {kind.__name__}, got {got}")
    return found


def optional_result(results: Mapping[str, Any], name: str, kind: type[T]) -> T | None:
    """The result of analyzer `name`, or None when it did not run (or is not of its type)."""
    found = results.get(name)
    return found if isinstance(found, kind) else None


def check_score(value: float, what: str) -> None:
    # Probabilities only: a NaN or an out-of-range score means a broken model or pre-processing.
    if not (math.isfinite(value) and -1e-6 <= value <= 1.0 + 1e-6):
        raise ValueError(f"{what} score must be in [0, 1], got {value!r}")


@dataclass(slots=True)
class ImageReport:
    """What `feedlens analyze` emits per input: either `results` (by analyzer name) or `error`."""

    path: str
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    results: dict[str, AnalyzerResult] = field(default_factory=dict)
    error: dict[str, str] | None = None
    # The decoded, upright RGB image (PIL) the analyzers saw, for whoever stores the report (thumbnails
    # come from it instead of a second decode); never serialised.
    image: Any = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def failure(self) -> FeedlensError:
        """The report's error as an exception: an ImageError for a bad image, else a coded error (e.g.
        analyzer_failed), for callers that handle one image and must stop on it."""
        error = self.error or {}
        code, message = error.get("code", "analyzer_failed"), error.get("message", "the image failed")
        if code in ImageErrorCode.__members__.values():
            return ImageError(ImageErrorCode(code), message)
        return CodedError(code, message)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
            "format": self.format,
        }
        if self.error is not None:
            out["error"] = self.error
        else:
            out["results"] = {name: r.to_dict() for name, r in self.results.items()}
        return out
