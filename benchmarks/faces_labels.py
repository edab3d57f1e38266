"""Hand labels for the faces benchmarks, and the one real group photo they use that the corpus lacks.

`GROUP_PHOTO`: `insightface/data/images/t1.jpg` from the PyPI sdist `insightface==2.1` (the insightface
project's own demo picture: six people around a card table, 1280x886; used here as test data only, not
shipped). Fetched once with `pip download` into `$FEEDLENS_CORPUS_CACHE` (default
`~/.cache/feedlens/corpus`) and checked by hash. Its six face boxes (hairline to chin) were read off the
photo by hand.

`ATTRIBUTES`: per real face (corpus photos, the samples and t1; the face is the one whose box holds the
point) smile, eyes open, mouth open as 1 / 0, or None where a person cannot tell (hidden by a mask,
a trumpet, sunglasses, too small). Labelled by one person (the helper that wrote the analyzer) from the
face crops, before the thresholds were set; 37 faces, so every accuracy here has a wide error bar.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST = "insightface==2.1"
SDIST_SHA256 = "776cbd36b70f5f2ae1a026101cfb80387f0b2280a0dbaf073f8d3ed69f554e01"
MEMBER = "insightface-2.1/insightface/data/images/t1.jpg"
GROUP_PHOTO_ID = "insightface/t1"
# (x0, y0, x1, y1) px on the 1280x886 photo, left to right.
GROUP_FACES = (
    (55, 283, 180, 402),
    (272, 165, 382, 272),
    (455, 290, 575, 410),
    (742, 370, 850, 475),
    (900, 82, 1024, 202),
    (1125, 298, 1230, 400),
)

# (image id, face centre x, y as fractions of the image, smile, eyes_open, mouth_open)
Label = tuple[str, float, float, int | None, int | None, int | None]
ATTRIBUTES: tuple[Label, ...] = (
    ("skimage/astronaut", 0.438, 0.256, 1, 1, 1),
    ("matplotlib/grace-hopper", 0.516, 0.403, 0, 1, 0),
    ("insightface/t1", 0.093, 0.391, None, 0, 0),
    ("insightface/t1", 0.92, 0.394, 1, 0, 0),
    ("insightface/t1", 0.751, 0.161, 0, 1, None),
    ("insightface/t1", 0.62, 0.482, 1, 0, 1),
    ("insightface/t1", 0.4, 0.406, 1, 1, 1),
    ("insightface/t1", 0.256, 0.248, 0, 1, 0),
    ("gcompris/details-portraitofperetanguy-background", 0.51, 0.278, 0, 1, 0),
    ("gcompris/explore-world-music-ireland", 0.668, 0.371, 0, 0, 0),
    ("gcompris/explore-world-music-ireland", 0.911, 0.359, 0, None, 0),
    ("gcompris/explore-world-music-ireland", 0.42, 0.395, 0, None, None),
    ("gcompris/explore-world-music-italy", 0.344, 0.378, 0, 1, 0),
    ("gcompris/explore-world-music-italy", 0.594, 0.391, 0, 0, 0),
    ("gcompris/explore-world-music-italy", 0.455, 0.473, None, None, None),
    ("gcompris/explore-world-music-italy", 0.281, 0.387, None, None, None),
    ("gcompris/explore-world-music-mexico", 0.394, 0.27, 0, 0, None),
    ("gcompris/explore-world-music-mexico", 0.657, 0.473, 0, 0, None),
    ("gcompris/explore-world-music-mexico", 0.879, 0.528, 1, None, 1),
    ("gcompris/explore-world-music-mexico", 0.757, 0.499, 1, None, None),
    ("gcompris/explore-world-music-orchestra", 0.749, 0.248, 0, None, 0),
    ("gcompris/louis-braille-louis", 0.514, 0.437, 0, 0, 0),
    ("gimp/enhance-red-eye-before", 0.5, 0.478, None, 1, None),
    ("opencv/basketball1", 0.138, 0.243, 1, None, 1),
    ("opencv/html-227943776-1", 0.498, 0.486, 1, 1, 1),
    ("opencv/html-230501201-1", 0.568, 0.538, 0, 1, 0),
    ("opencv/html-cascade-classifier-tutorial-result-haar", 0.412, 0.587, 1, 1, 0),
    ("opencv/html-face-swapped", 0.502, 0.472, None, 1, 0),
    ("opencv/html-template-matching-original-image", 0.572, 0.408, 1, None, None),
    ("opencv/messi5", 0.438, 0.338, 0, 1, 1),
    ("skimage/camera", 0.438, 0.318, 0, 1, 0),
    ("ultralytics/bus", 0.161, 0.407, 0, None, 0),
    ("ultralytics/bus", 0.351, 0.416, 0, None, 0),
    ("ultralytics/zidane", 0.767, 0.281, None, 1, 0),
)


def cache_dir() -> Path:
    return Path(os.environ.get("FEEDLENS_CORPUS_CACHE", Path.home() / ".cache" / "feedlens" / "corpus"))


def group_photo() -> bytes | None:
    """t1.jpg's bytes, or None when the sdist cannot be fetched (no registry) or its hash changed."""
    tarball = cache_dir() / "insightface" / "insightface-2.1.tar.gz"
    if not tarball.exists():
        tarball.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            # --no-build-isolation: pip only reads the sdist's metadata; nothing is built or installed.
            done = subprocess.run(
                [sys.executable, "-m", "pip", "download", SDIST, "--no-deps", "--no-binary", ":all:",
                 "--no-build-isolation", "-d", tmp, "-q"],
                capture_output=True, timeout=600, check=False,
            )  # fmt: skip
            found = list(Path(tmp).glob("insightface-*.tar.gz"))
            if done.returncode != 0 or not found:
                return None
            found[0].replace(tarball)
    if hashlib.sha256(tarball.read_bytes()).hexdigest() != SDIST_SHA256:
        return None
    with tarfile.open(tarball) as archive:
        member = archive.extractfile(MEMBER)
        return None if member is None else io.BytesIO(member.read()).getvalue()
