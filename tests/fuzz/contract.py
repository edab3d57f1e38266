"""The safe decoder's contract, as a function of any bytes: what every decoder fuzzer checks.

For ANY input, `ImageDecoder.decode` and the pipeline's decode path end in a `DecodedImage` (an upright
8-bit RGB image within the limits) or `feedlens.core.errors.ImageError` with a stable code. Any other
exception, or an image that breaks the limits, raises out of `check_input` (ContractError or the
decoder's own exception, untouched, so its traceback points at the bug).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any, ClassVar, cast

from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.config import DecodeLimits, Settings
from feedlens.core.errors import ImageError, ImageErrorCode
from feedlens.images import DecodedImage, ImageDecoder
from feedlens.services.pipeline import Pipeline
from tests.fuzz.regressions import known_bug

# Small limits: the fuzzer should hit every refusal, and a bomb that slips through must stay affordable.
LIMITS = DecodeLimits(max_bytes=2_000_000, max_pixels=4_000_000, min_side=16)
# The shorter side the pipeline asks for, picked per input: 16 and 32 take the JPEG draft path on the
# seeds, 224 is the labels analyzer's real side.
PIPELINE_SIDES = (16, 32, 224)
FORMATS = {"jpeg", "png", "gif", "webp", "bmp", "tiff", "heif", "avif"}
IMAGE_CODES = {code.value for code in ImageErrorCode}


class ContractError(AssertionError):
    """The decoder answered something other than a valid DecodedImage or an ImageError."""


def check_decoded(decoded: DecodedImage, min_side: int | None) -> None:
    """Raise ContractError unless `decoded` keeps every promise of DecodedImage under LIMITS."""
    image, width, height = decoded.image, decoded.width, decoded.height
    problems = []
    if image.mode != "RGB":
        problems.append(f"mode {image.mode}, not RGB")
    if min(width, height) < LIMITS.min_side or width * height > LIMITS.max_pixels:
        problems.append(f"original {width}x{height} is outside the limits {LIMITS}")
    if image.width * image.height > width * height:
        problems.append(f"decoded {image.size} is larger than the original {width}x{height}")
    wanted = min(min_side or min(width, height), width, height)
    if min(image.size) < wanted:
        problems.append(f"decoded {image.size}: shorter side below the {wanted} px asked for")
    if decoded.format not in FORMATS or len(decoded.sha256) != 64:
        problems.append(f"format {decoded.format!r} / sha256 {decoded.sha256!r}")
    if problems:
        raise ContractError("; ".join(problems))


class Probe(Analyzer[list[Image.Image], Any]):
    """An analyzer without a model: it checks what the pipeline hands analyzers (RGB, not empty)."""

    name: ClassVar[str] = "probe"
    code_version: ClassVar[str] = "1"
    artifacts: ClassVar[tuple[str, ...]] = ()
    input_size: ClassVar[int] = 16
    result_type: ClassVar[type[Any]] = int

    def __init__(self, side: int) -> None:
        super().__init__(cast(Any, None), Settings())  # no artifacts: the model store is never used
        self.side = side

    def decode_side(self) -> int:
        return self.side

    def _load(self) -> None:
        pass

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> list[Image.Image]:
        return list(images)

    def _forward(self, batch: list[Image.Image]) -> Any:
        return batch

    def postprocess(self, outputs: Any, images: Sequence[Image.Image], upstream: Upstream) -> list[Any]:
        for image in images:
            if image.mode != "RGB" or min(image.size) < 1:
                raise ContractError(f"analyzer got a {image.mode} image of {image.size}")
        return [image.width * image.height for image in images]


DECODER = ImageDecoder(LIMITS)
PIPELINES = {side: Pipeline(DECODER, [Probe(side)], threads=1) for side in PIPELINE_SIDES}


def check_input(data: bytes) -> None:
    """The decoder at full size, then the pipeline's decode path (one of PIPELINE_SIDES)."""
    try:
        check_decoded(DECODER.decode(data), None)
    except ImageError as exc:
        if exc.code not in IMAGE_CODES:
            raise ContractError(f"ImageError with an unknown code {exc.code!r}") from exc
    side = PIPELINE_SIDES[zlib.crc32(data[:64]) % len(PIPELINE_SIDES)]
    report = PIPELINES[side].analyze_one(data, "fuzz")
    if report.error is not None and report.error.get("code") not in IMAGE_CODES:
        raise ContractError(f"pipeline reported {report.error}")
    if report.error is None and not isinstance(report.results.get("probe"), int):
        raise ContractError(f"pipeline reported no error and no result: {report}")


def check_input_tolerant(data: bytes) -> None:
    """check_input, except that the bugs already in regressions.KNOWN_BUGS pass."""
    try:
        check_input(data)
    except Exception as exc:
        if known_bug(exc) is None:
            raise
