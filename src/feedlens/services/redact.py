"""Privacy redaction: blur or pixelate faces, nudity and text found by the analyzers; strip metadata."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedlens.core.errors import ConfigError, FeedlensError
from feedlens.core.imageops import obscure
from feedlens.core.redaction import Method, Target
from feedlens.core.results import Box
from feedlens.services.factory import Services
from feedlens.services.pipeline import AnalysisFailure

MARGIN = 0.15  # grow each box by this fraction per side: detectors' boxes hug the face or region tightly


def _face_boxes(result: Any) -> list[Box]:
    return [face.box for face in result.faces]


def _nudity_boxes(result: Any) -> list[Box]:
    return [region.box for region in result.regions]


def _text_boxes(result: Any) -> list[Box]:
    return [line.box for line in result.lines]


# Which analyzer finds each target, and how to read its boxes.
SOURCES: dict[Target, tuple[str, Callable[[Any], list[Box]]]] = {
    Target.FACES: ("faces", _face_boxes),
    Target.NUDITY: ("safety", _nudity_boxes),
    Target.TEXT: ("text", _text_boxes),
}
OUTPUT_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


class RedactionError(FeedlensError):
    code = "redaction_failed"


@dataclass(frozen=True, slots=True)
class Redaction:
    """The redacted image, encoded without any metadata (EXIF, GPS, XMP, comments)."""

    data: bytes
    format: str
    regions: dict[str, int]  # target -> number of regions obscured


def _grow(box: Box, margin: float) -> Box:
    dx, dy = (box.x1 - box.x0) * margin, (box.y1 - box.y0) * margin
    return Box(max(0.0, box.x0 - dx), max(0.0, box.y0 - dy), min(1.0, box.x1 + dx), min(1.0, box.y1 + dy))


def redact(
    services: Services,
    source: bytes | Path,
    targets: Sequence[Target],
    method: Method = Method.BLUR,
    output_format: str | None = None,
) -> Redaction:
    """Decode `source` at full size, find the targets' regions, obscure them, re-encode without metadata."""
    if not targets:
        raise ConfigError("nothing to redact: choose at least one of faces, nudity, text")
    fmt = (output_format or "").lower().replace("jpg", "jpeg")
    decoded = services.decoder.decode(source)  # full size: the output must keep the original's resolution
    fmt = fmt or (decoded.format if decoded.format in OUTPUT_FORMATS else "png")
    if fmt not in OUTPUT_FORMATS:
        raise ConfigError(f"cannot write {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    # Privacy wants recall: always look for small faces too, whatever the analysis default.
    thorough = services.settings.model_copy(update={"faces_tiling": True, "faces_tile_everywhere": True})
    pipeline = services.pipeline([SOURCES[t][0] for t in targets], settings=thorough)
    [outcome] = pipeline.analyze_images([decoded.image])
    if isinstance(outcome, AnalysisFailure):
        raise RedactionError(f"could not analyse the image, so nothing was redacted: {outcome.message}")
    image = decoded.image.copy()
    counts: dict[str, int] = {}
    for target in targets:
        analyzer, boxes_of = SOURCES[target]
        boxes = boxes_of(outcome[analyzer])
        for box in boxes:
            obscure(image, _grow(box, MARGIN).to_pixels(image.width, image.height), method.value)
        counts[target.value] = len(boxes)
    buffer = io.BytesIO()
    # A fresh RGB image saved without exif/pnginfo/xmp arguments carries no metadata at all.
    clean = image.copy()
    clean.info.clear()
    clean.save(buffer, OUTPUT_FORMATS[fmt], **({"quality": 92} if fmt in {"jpeg", "webp"} else {}))
    return Redaction(data=buffer.getvalue(), format=fmt, regions=counts)
