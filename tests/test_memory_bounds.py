"""A few-KB image cannot take gigabytes: every analyzer, run on extreme strips (16x75000 and 75000x16,
decoded past the default aspect-ratio limit on purpose), stays within a memory budget above what the
same analyzers need for an ordinary photo. Measured in a fresh process (peak RSS from getrusage)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from feedlens.analyzers.registry import ANALYZER_NAMES
from tests.support.fresh import fresh

BUDGET_MB = 300  # over the ordinary photo's peak; the old letterbox alone took +9.5 GB on 16x50000

_PROGRAM = """
import io, json, resource, sys
from PIL import Image
from feedlens.config import load_settings
from feedlens.services.factory import build_services

names = sys.argv[1].split(",")
settings = load_settings(decode={"max_aspect_ratio": 10000, "max_pixels": 75_000_000})
services = build_services(settings)
pipeline = services.pipeline(names)
pipeline.load()

def png(size):
    out = io.BytesIO()
    Image.new("RGB", size, (128, 90, 60)).save(out, "PNG")
    return out.getvalue()

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

report = pipeline.analyze_one(open(sys.argv[2], "rb").read(), "photo")
assert report.ok, report.error
before = peak_mb()
errors = []
for size in ((16, 75000), (75000, 16)):
    report = pipeline.analyze_one(png(size), "strip")
    if not report.ok:
        errors.append(report.error)
print(json.dumps({"before": before, "after": peak_mb(), "errors": errors}))
"""


@pytest.mark.parametrize("names", [",".join(n for n in ANALYZER_NAMES)])
def test_extreme_strips_stay_within_the_memory_budget(names: str, sample_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "FEEDLENS_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        fresh([sys.executable, "-c", _PROGRAM, names, str(sample_dir / "astronaut.png")]),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["errors"] == [], found["errors"]  # analysed, not refused: the analyzers cope themselves
    assert found["after"] - found["before"] < BUDGET_MB, found


def test_the_decoder_refuses_extreme_strips_by_default(sample_dir: Path) -> None:
    from PIL import Image

    from feedlens.config import DecodeLimits
    from feedlens.core.errors import ImageError
    from feedlens.images import ImageDecoder
    from tests.conftest import encode

    strip = encode(Image.new("RGB", (16, 20000), (0, 0, 0)), "PNG")
    with pytest.raises(ImageError) as refused:
        ImageDecoder(DecodeLimits()).decode(strip)
    assert refused.value.code == "extreme_aspect_ratio" and "25" in refused.value.message
    wide = ImageDecoder(DecodeLimits(max_aspect_ratio=2000)).decode(strip)
    assert (wide.width, wide.height) == (16, 20000)
