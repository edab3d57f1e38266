"""The result protocol every analyzer result follows, score validation, and the per-image report.

Each result type carries `SCHEMA` (name/version of its JSON form); bump the version whenever the
dictionary that `to_dict()` returns changes shape, so stored results can be told apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol


class AnalyzerResult(Protocol):
    SCHEMA: ClassVar[str]

    def to_dict(self) -> dict[str, Any]: ...


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

    @property
    def ok(self) -> bool:
        return self.error is None

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
