"""What redaction can obscure and how (values shared by the CLI and services/redact.py)."""

from __future__ import annotations

from enum import StrEnum


class Target(StrEnum):
    FACES = "faces"
    NUDITY = "nudity"
    TEXT = "text"


class Method(StrEnum):
    BLUR = "blur"
    PIXELATE = "pixelate"
