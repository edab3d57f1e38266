"""Boxes shared by every region-producing analyzer (body regions, faces, text lines, logos)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Self


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in **normalised** image coordinates: 0..1 of the upright image's width/height.

    Normalised so a result does not depend on the size the image was decoded at (draft decoding gives
    analyzers a smaller copy); `to_pixels` maps it onto any rendition of the same image.
    """

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        values = (self.x0, self.y0, self.x1, self.y1)
        if not all(math.isfinite(v) and -1e-6 <= v <= 1 + 1e-6 for v in values):
            raise ValueError(f"box coordinates must be within [0, 1], got {values}")
        if self.x1 < self.x0 or self.y1 < self.y0:
            raise ValueError(f"box corners are inverted: {values}")

    @classmethod
    def from_pixels(cls, x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> Self:
        """Clip a pixel box to the image and normalise it."""

        def clip(v: float, size: int) -> float:
            return min(max(float(v) / size, 0.0), 1.0)

        return cls(clip(x0, width), clip(y0, height), clip(x1, width), clip(y1, height))

    def to_pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Integer pixel box (x0, y0, x1, y1) covering this box on a width x height image."""
        return (
            math.floor(self.x0 * width),
            math.floor(self.y0 * height),
            math.ceil(self.x1 * width),
            math.ceil(self.y1 * height),
        )

    @property
    def area(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0
