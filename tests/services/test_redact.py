"""Redaction on real photos with the real analyzers: what was blurred is no longer found; no metadata."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from feedlens.core.errors import ConfigError, ImageError
from feedlens.services.factory import Services
from feedlens.services.redact import Method, Target, redact
from tests.conftest import encode


def _gps_jpeg(image: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    gps = exif.get_ifd(0x8825)
    gps[2] = (52.0, 31.0, 12.0)  # GPSLatitude
    gps[1] = "N"
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


def _faces(services: Services, data: bytes) -> int:
    report = services.pipeline(["faces"]).analyze_one(data)
    assert report.ok, report.error
    return int(report.results["faces"].count)


@pytest.mark.parametrize("method", [Method.BLUR, Method.PIXELATE])
def test_blurred_faces_are_no_longer_found(services: Services, sample_dir: Path, method: Method) -> None:
    for name in ("astronaut.png", "grace_hopper.jpg"):
        original = (sample_dir / name).read_bytes()
        assert _faces(services, original) >= 1
        result = redact(services, original, [Target.FACES], method)
        assert result.regions["faces"] >= 1
        assert _faces(services, result.data) == 0, f"{name}: a face survived {method}"


def test_only_the_regions_change_and_metadata_is_stripped(services: Services, sample_dir: Path) -> None:
    photo = Image.open(sample_dir / "astronaut.png").convert("RGB")
    result = redact(services, _gps_jpeg(photo), [Target.FACES], Method.BLUR)
    out = Image.open(io.BytesIO(result.data))
    assert result.format == "jpeg" and out.size == photo.size
    assert dict(out.getexif()) == {} and "exif" not in out.info and "xmp" not in out.info
    before, after = np.asarray(photo, np.float32), np.asarray(out.convert("RGB"), np.float32)
    changed = np.abs(before - after).max(axis=2) > 40
    assert 0.01 < changed.mean() < 0.25  # the face area changed a lot, most of the photo did not


def test_text_is_redacted(services: Services) -> None:
    import matplotlib
    from PIL import ImageDraw, ImageFont

    image = Image.new("RGB", (900, 300), (250, 250, 250))
    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), 64)
    ImageDraw.Draw(image).text((40, 100), "SALE 50% OFF", font=font, fill=(10, 10, 10))
    data = encode(image, "PNG")
    assert "SALE" in services.pipeline(["text"]).analyze_one(data).results["text"].full_text.upper()
    result = redact(services, data, [Target.TEXT], Method.PIXELATE)
    assert result.format == "png" and result.regions["text"] >= 1
    after = services.pipeline(["text"]).analyze_one(result.data).results["text"]
    assert "SALE" not in after.full_text.upper()


def test_safe_photo_has_nothing_to_redact_for_nudity(services: Services, sample_dir: Path) -> None:
    data = (sample_dir / "chelsea.png").read_bytes()
    result = redact(services, data, [Target.NUDITY])
    assert result.regions == {"nudity": 0}
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(result.data))), np.asarray(Image.open(io.BytesIO(data)))
    )


def test_bad_inputs(services: Services) -> None:
    with pytest.raises(ImageError) as info:
        redact(services, b"not an image", [Target.FACES])
    assert info.value.code == "unsupported_format"
    with pytest.raises(ConfigError, match="nothing to redact"):
        redact(services, encode(Image.new("RGB", (64, 64)), "PNG"), [])
    with pytest.raises(ConfigError, match="cannot write"):
        redact(services, encode(Image.new("RGB", (64, 64)), "PNG"), [Target.FACES], output_format="svg")
