"""Results of the `embedding` analyzer: vectors for search, stored in the embeddings table, not as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np


def _unit(vector: np.ndarray, what: str) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or abs(norm - 1.0) > 1e-3:
        raise ValueError(f"{what} embedding must be L2-normalised, norm is {norm}")
    return vector


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """`visual` (1280,): EfficientNet-Lite0 pooled features, for similar images and duplicates.
    `content` (384,): the image's predicted classes, concepts and OCR text in MiniLM's sentence space
    (ConSE), for word queries; captions are fused in later, where posts are known. Both unit norm."""

    SCHEMA: ClassVar[str] = "feedlens.embedding/1"

    visual: np.ndarray
    content: np.ndarray
    parts: tuple[str, ...] = ()  # which sources made `content`: classes, concepts, text

    def __post_init__(self) -> None:
        object.__setattr__(self, "visual", _unit(self.visual, "visual"))
        object.__setattr__(self, "content", _unit(self.content, "content"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.SCHEMA,
            "visual_dim": int(self.visual.shape[0]),
            "content_dim": int(self.content.shape[0]),
            "parts": list(self.parts),
        }
