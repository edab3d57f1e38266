"""Results of the `properties` analyzer: dominant colours, tone, sharpness, shape and perceptual hashes."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, ClassVar, Self

from feedlens.core.results.base import from_dict

# The basic colour names a dominant colour can get (see `feedlens.analyzers.properties.colour_name`).
COLOUR_NAMES: tuple[str, ...] = (
    "black",
    "white",
    "gray",
    "red",
    "orange",
    "yellow",
    "green",
    "teal",
    "blue",
    "purple",
    "pink",
    "brown",
    "beige",
)
_HEX_COLOUR = re.compile(r"^#[0-9a-f]{6}$")
_HASH = re.compile(r"^[0-9a-f]{16}$")  # 64-bit hash, 16 lower-case hex digits
_SUM_TOLERANCE = 1e-3  # rounding each of <= 5 fractions to 4 decimals moves the sum by < 3e-4


class Orientation(StrEnum):
    LANDSCAPE = "landscape"
    PORTRAIT = "portrait"
    SQUARE = "square"


def _check_range(value: float, low: float, high: float, what: str) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{what} must be in [{low}, {high}], got {value!r}")


def hamming(a_hex: str, b_hex: str) -> int:
    """Number of differing bits between two equally long hex hashes (e.g. two `phash` values).

    Same photo re-encoded or resized: typically <= 6 of 64 bits; unrelated photos: around 32.
    """
    if len(a_hex) != len(b_hex):
        raise ValueError(f"hashes differ in length: {len(a_hex)} vs {len(b_hex)} hex digits")
    return (int(a_hex, 16) ^ int(b_hex, 16)).bit_count()


@dataclass(frozen=True, slots=True)
class DominantColour:
    """One colour cluster: sRGB `hex` (`#rrggbb`), CIELAB centre `lab` (L* 0..100, a*, b*),
    the `fraction` of the image's pixels in it, and a basic colour `name` from `COLOUR_NAMES`."""

    hex: str
    lab: tuple[float, float, float]
    fraction: float
    name: str

    def __post_init__(self) -> None:
        if not _HEX_COLOUR.match(self.hex):
            raise ValueError(f"colour hex must look like '#rrggbb', got {self.hex!r}")
        if len(self.lab) != 3:
            raise ValueError(f"lab must hold 3 values, got {self.lab!r}")
        _check_range(self.lab[0], 0.0, 100.0, "lab L*")
        _check_range(self.lab[1], -128.0, 128.0, "lab a*")
        _check_range(self.lab[2], -128.0, 128.0, "lab b*")
        _check_range(self.fraction, 0.0, 1.0, "colour fraction")
        if self.name not in COLOUR_NAMES:
            raise ValueError(f"colour name must be one of {COLOUR_NAMES}, got {self.name!r}")


@dataclass(frozen=True, slots=True)
class PropertiesResult:
    """Output of the `properties` analyzer (all measured on a fixed-size rendition, see docs/analyzers.md).

    `colours`: dominant colours by descending fraction, fractions summing to 1. `brightness`: mean CIE L*/100.
    `contrast`: RMS contrast, the standard deviation of L*/100. `sharpness`: variance of the Laplacian of the
    grayscale rendition; `blurry` when it is below the analyzer's threshold. `colourfulness`: Hasler &
    Süsstrunk's M (0 for gray; ~33 "moderately", ~59 "quite", >= 82 "extremely" colourful).
    `aspect_ratio`: width / height. `phash`, `dhash`: 64-bit perceptual hashes as 16 hex digits.
    """

    SCHEMA: ClassVar[str] = "feedlens.properties/1"

    colours: tuple[DominantColour, ...]
    brightness: float
    contrast: float
    sharpness: float
    blurry: bool
    colourfulness: float
    orientation: Orientation
    aspect_ratio: float
    phash: str
    dhash: str

    def __post_init__(self) -> None:
        if not self.colours:
            raise ValueError("an image has at least one dominant colour")
        fractions = [c.fraction for c in self.colours]
        if fractions != sorted(fractions, reverse=True):
            raise ValueError("colours must be sorted by descending fraction")
        if not math.isclose(sum(fractions), 1.0, abs_tol=_SUM_TOLERANCE):
            raise ValueError(f"colour fractions must sum to 1, got {sum(fractions)}")
        _check_range(self.brightness, 0.0, 1.0, "brightness")
        _check_range(self.contrast, 0.0, 0.5, "contrast")  # std of values in [0, 1] is at most 0.5
        _check_range(self.sharpness, 0.0, math.inf, "sharpness")
        _check_range(self.colourfulness, 0.0, math.inf, "colourfulness")
        _check_range(self.aspect_ratio, 0.0, math.inf, "aspect ratio")
        if self.aspect_ratio == 0.0:
            raise ValueError("aspect ratio must be positive")
        Orientation(self.orientation)  # a plain string from JSON must still name an orientation
        for what, value in (("phash", self.phash), ("dhash", self.dhash)):
            if not _HASH.match(value):
                raise ValueError(f"{what} must be 16 lower-case hex digits, got {value!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The result from its `to_dict()` form (stored analyses)."""
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **asdict(self)}
