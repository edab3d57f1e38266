"""Cloud API images (base64 in JSON) are checked by their header before the rest is decoded: a bomb or
an absurd shape costs a 64 KB decode, whatever the body's size."""

from __future__ import annotations

import base64
import json

import pytest

from feedlens.api.compat import gcv
from feedlens.api.compat import rekognition_requests as rq
from feedlens.api.compat.base64_head import decode_base64
from feedlens.core.errors import ImageError
from feedlens.images import ImageDecoder
from tests.conftest import encode, gradient
from tests.support.images import png_claiming

# Not base64 at all: if any of this were decoded, the error would be about base64, not the image.
UNDECODABLE_TAIL = "!" * 4_000_000


def _bomb_b64(width: int, height: int) -> str:
    """A PNG header claiming width x height, 150 KB of trailing zeros (valid base64 past the 64 KB head),
    then text that is not base64."""
    return base64.b64encode(png_claiming(width, height) + bytes(150_000)).decode() + UNDECODABLE_TAIL


def test_decode_base64_reads_standard_urlsafe_and_spaced_text() -> None:
    data = bytes(range(256)) * 3
    standard = base64.b64encode(data).decode()
    assert decode_base64(standard) == data
    assert decode_base64(base64.urlsafe_b64encode(data).decode().rstrip("=")) == data
    assert decode_base64(" \n".join(standard[i : i + 76] for i in range(0, len(standard), 76))) == data
    assert decode_base64(standard, head=100) == data[:100]
    with pytest.raises(ValueError, match="base64"):
        decode_base64("ab$d")


@pytest.mark.parametrize(
    ("size", "code"),
    [((100_000, 100_000), "too_many_pixels"), ((16, 50_000), "extreme_aspect_ratio"), ((4, 4), "too_small")],
)
def test_check_header_refuses_what_the_header_shows(
    decoder: ImageDecoder, size: tuple[int, int], code: str
) -> None:
    with pytest.raises(ImageError) as caught:
        decoder.check_header(png_claiming(*size))
    assert caught.value.code == code
    assert "object at 0x" not in caught.value.message


def test_check_header_lets_a_head_too_short_to_tell_pass(decoder: ImageDecoder) -> None:
    photo = encode(gradient(640, 480), "PNG")
    decoder.check_header(photo[:20])  # IHDR not complete yet: decode() decides later
    decoder.check_header(photo)
    decoder.check_header(b"GIF87a" + b"\xff" * 10)  # a broken header is decode()'s to name
    with pytest.raises(ImageError) as caught:
        decoder.check_header(b"%PDF-1.7 not an image")
    assert caught.value.code == "unsupported_format"


def test_google_refuses_a_bomb_by_its_header_without_decoding_the_rest(decoder: ImageDecoder) -> None:
    body = {"requests": [{"image": {"content": _bomb_b64(100_000, 100_000)}, "features": [{"type": 1}]}]}
    (item,) = gcv.parse_body(json.dumps(body).encode(), decoder.check_header)
    assert item.failure is not None and item.content is None
    assert "too_many_pixels" in item.failure.message and "limit of 75000000" in item.failure.message
    # the same body without the check: the whole string is decoded, and its tail is not base64
    (unchecked,) = gcv.parse_body(json.dumps(body).encode())
    assert unchecked.failure is not None and "Base64" in unchecked.failure.message


def test_rekognition_refuses_a_bomb_by_its_header_without_decoding_the_rest(decoder: ImageDecoder) -> None:
    params = {"Image": {"Bytes": _bomb_b64(16, 50_000)[:1_000_000]}}  # under AWS's 5 MB
    with pytest.raises(rq.RekognitionError) as caught:
        rq.read_image(params, decoder.check_header)
    assert caught.value.code == "InvalidParameterException"
    assert "longer than 25 times" in caught.value.message
    with pytest.raises(rq.RekognitionError, match="not valid base64"):
        rq.read_image(params)
