"""Settings from the environment (FEEDLENS_*), validated when the process starts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from feedlens.core.errors import ConfigError


def _default_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "feedlens"


class DecodeLimits(BaseModel):
    """Limits the safe decoder applies before spending memory on an untrusted image.

    Set from the environment as FEEDLENS_DECODE__MAX_BYTES and so on.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: int = Field(20 * 1024 * 1024, gt=0, description="largest accepted file, bytes")
    max_pixels: int = Field(75_000_000, gt=0, description="largest width*height, read from the header")
    min_side: int = Field(16, ge=1, description="smallest accepted width or height, px")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FEEDLENS_", frozen=True, env_nested_delimiter="__")

    home: Path = Field(default_factory=_default_home, description="models, caches and (later) data")
    decode: DecodeLimits = DecodeLimits()  # frozen, so one shared default is safe
    # workers x threads_per_worker should equal the cores: one process pool worker per core by default
    # would starve ONNX Runtime's own intra-op threads, so the CLI runs one worker with all the cores.
    workers: int = Field(1, ge=1)
    threads_per_worker: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    batch_size: int = Field(16, ge=1, le=256, description="images per forward pass")
    labels_top_k: int = Field(5, ge=1, le=1000)
    labels_concept_min_score: float = Field(0.15, ge=0.0, le=1.0)
    labels_max_concepts: int = Field(25, ge=0, le=1000)
    labels_concept_min_depth: int = Field(
        4, ge=0, description="hide WordNet concepts nearer the root than this (entity, object, whole...)"
    )

    safety_explicit_threshold: float = Field(0.5, ge=0.0, le=1.0, description="explicit verdict at or above")
    safety_suggestive_threshold: float = Field(
        0.6, ge=0.0, le=1.0, description="suggestive verdict at or above"
    )
    safety_region_min_score: float = Field(0.3, ge=0.0, le=1.0, description="regions below are not reported")

    faces_min_score: float = Field(0.3, ge=0.0, le=1.0, description="report faces scored at least this")
    faces_tiling: bool = Field(
        False,
        description="second NudeNet pass over 640 px tiles: finds ~4x smaller faces, costs ~140 ms per large "
        "image and decodes at 640 px; redaction always tiles",
    )

    properties_blur_threshold: float = Field(
        100.0, ge=0.0, description="Laplacian variance at 128 px below which an image counts as blurry"
    )

    text_gate_side: int = Field(
        480,
        ge=64,
        le=2048,
        multiple_of=32,
        description="longer side of the OCR gate's copy (320 is ~2x faster)",
    )
    text_gate_min_pixels: float = Field(
        40.0, ge=0.0, description="text pixels needed to run OCR; 0 = no gate"
    )
    text_min_confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="drop OCR lines recognised below this"
    )

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @model_validator(mode="after")
    def _cores_not_oversubscribed(self) -> Self:
        cores = os.cpu_count() or 1
        if self.workers * self.threads_per_worker > 4 * cores:
            raise ValueError(
                f"workers x threads_per_worker = {self.workers * self.threads_per_worker} "
                f"oversubscribes {cores} cores; keep it near the core count"
            )
        return self


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (and overrides); a bad value is a ConfigError, not a traceback."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid FEEDLENS_* configuration: {problems}") from exc
