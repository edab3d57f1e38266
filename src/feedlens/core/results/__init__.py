"""Typed result dataclasses, one module per capability, plus the per-image report.

Each result type carries `SCHEMA` (name/version of its JSON form); bump the version whenever the dictionary
that `to_dict()` returns changes shape, so stored results can be told apart.
"""

from feedlens.core.results.base import AnalyzerResult, ImageReport, check_score
from feedlens.core.results.embedding import EmbeddingResult
from feedlens.core.results.faces import EmotionSummary, Face, FacesResult
from feedlens.core.results.geometry import Box
from feedlens.core.results.labels import ImageNetClass, Label, LabelsResult

__all__ = [
    "AnalyzerResult",
    "Box",
    "EmbeddingResult",
    "EmotionSummary",
    "Face",
    "FacesResult",
    "ImageNetClass",
    "ImageReport",
    "Label",
    "LabelsResult",
    "check_score",
]
