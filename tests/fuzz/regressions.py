"""Inputs the fuzzers found that break the decoder's contract, kept as regression cases.

Each is replayed by tests/test_fuzz.py through the decoder and the pipeline (and the hostile-input
benchmark sends them to every entry point). `KNOWN_BUGS` names the ones today's src still fails: their
tests are strict xfails, so the day src is fixed the test says so and the name comes out of the set.
"""

from __future__ import annotations

import base64
import io
import struct
import traceback
from collections.abc import Callable

from PIL import Image

# atheris, 2026-12-06, from the AVIF seed (one byte of `iloc` changed): RuntimeError "Failed to decode
# image: Missing or empty image item" from AvifImagePlugin._open, not an ImageError.
AVIF_MISSING_ITEM = (
    "AAAAIGZ0eXBhdmlmAAAAAGF2aWZtaWYxbWlhZk1BMUIAAADrbWV0YQAAAAAAAAAhaGRscgAAAAAAAAAAcGljdAAAAAAAAAAAAAAA"
    "AAAAAAAOcGl0bQAAAAAAAQAAAB5pbG9jAAAAAEQAAAEAAQAAAAEAAAETAAAAMQAAACg9aW5mAAAAAAABAAAAGmluZmUCAAAAAAEA"
    "AGF2MDFDb2xvcgAAAABqaXBycAAAAEtpcGNvAAAAFGlzcGUAAAAAAAAAIAAAACAAAAAQcGl4aQAAAAADCAgIAAAADGF2MUOBAAwA"
    "AAAAE2NvbHJuY2x4AAEADQAGgAAAABdpcG1hAAAAAAAAAAEAAQQBAoMEAAAAOW1kYXQSAAoJGBE/9ogIaDQgMiIdh4eFndxxxwLF"
    "FQCLJkdqpGPoUL/nvykpXcaTtSEd/84Q"
)
# atheris: RuntimeError "Failed to decode frame 0: Decoding of color planes failed" from
# AvifImagePlugin.load (the header parses; the pixels do not).
AVIF_BAD_PLANES = (
    "AAAAIGZ0eXBhdmlmAAAAAGF2aWZtaWYxbWlhZk1BMUIAAADrbWV0YQAAAAAAAAAhaGRscgAAAAAAAAAAcGljdAAAAAAAAAAAAAAA"
    "AAAAAAAOcGl0bQAAAAAAAQAAAB5pbG9jAAAAAEQAAAEAAQAAAAEAAAETAAAAMAAAAChpaW5mAAAAAAABAAAAGmluZmUCAAAAAAEA"
    "AGF2MDFDb2xvcgAAAABqaXBycAAAAEtpcGNvAAAAFGlzcGUAAAAAAAAAIAAAACAAAAAQcGl4aQAAAAADCAgIAAAADGF2MUOBAAwA"
    "AAAAE2NvbHJuY2x4AAEADQAGgAAAABdpcG1hAAAAAAAAAAEAAQQBAoMEAAAAOW1kYXQSAAoJGBE/9ogIaDQgMiIdh4eFndxxxwLF"
    "FQCLJkdqpGPoUL/nvykpXcaTtSEd/84Q"
)
# atheris, from the TIFF seed: a StripOffsets tag of type UNDEFINED makes Pillow seek to a bytes object,
# TypeError "'bytes' object cannot be interpreted as an integer" from ImageFile.load.
TIFF_BYTES_OFFSET = (
    "SUkqAAgAAAAJAAABBAABAAAAGAAAAAEBBAABAAAAFAAAAAIBAwABAAAAEAAAAAMBAwABAAAAAQAAAAYBAwABAAAAAQAAABEBBwAB"
    "AAAAegAAABYBBAABAAAAFAAAABcBBAABAAABAAAAABAAAADAAwAAHAEDAAEA3bvM6AAAAAAAAAAACwsWFiEhLCw3N0JCTU1YWGNj"
    "bm55eYWFkJCbm6amsbG8vMfH0tLd3ejo8/P//wAACwsWFiEhLCw3N0JCTU1YWGNj//8="
)
# atheris, from the HEIF seed (a `clap` crop box): the header says 32x32, the decoded image is 32x64,
# so the pixel limit (checked on the header's size) is not a bound on what is decoded.
HEIF_GROWS = (
    "AAAAHGZ0eXBoZWljAAAAAG1pZjFoZWljbWlhZgAAAX1tZXRhAAAAAAAAACFoZGxyAAAAAAAAAABwaWN0AAAAAAAAAAAAAAAAAAAA"
    "ACJpbG9jAAAAAERAAAEAAQAAAAABoQABAAAAAAAAACYAAAAjaWluZgAAAAAAAQAAABVpbmZlAgAAAAABAABodmMxAAAAAA5waXRt"
    "AAAAAAABAAAA/WlwcnAAAADdaXBjbwAAAHZodmNDAQNwAAAAkAAAAAAAHvAA/P34+AAADwNgAAEAGEABDAH//wNBTklNAJAAAAMA"
    "AAMAHroCQGEAAQAqQgEBA3AAAAMAkAAAAwAAAwAeoCCBBZbq5Ka5uAhoMCAAAAMDIAAAAwAhYgABAAZEAcFzwIkAAAATY29scm5j"
    "bHgAAQANAAaAAAAAFGlzcGUAAAAAAAAAQAAAAEAAAAAoY2xhcAAAACAAAAABAAAAIAAAAAH////gAAAAAv/M/+AAAAACAAAAEHBp"
    "eGkAAAAAAwgICAAAABhpcG1hAAAAAAAAAAEAAQWBAgMFhAAAAC5tZGF0AAAAIigBrwtg9eWd01dw2kQEZKYlK1iKo9ozsqLtEo8Q"
    "8GcMKWA="
)

# atheris, from HEIF_GROWS: `ispe` claims 64x17367104 (1.1 Gpx) behind a small crop; libheif refuses to
# allocate it with RuntimeError "Security limit exceeded" from pillow_heif's load, not an ImageError.
HEIF_HUGE_ISPE = (
    "AAAAHGZ0eXBoZWljAAAAAG1pZjFoZWljbWlhZgAAAX1tZXRhAAAAAAAAACFoZGxyAAAAAAAAAABwaWN0AAAAAAAAAAAAAAAAAAAA"
    "ACJpbG9jAAAAAERAAAEAAQAAAAABoQABAAAAAAAAACYAAAAjaWluZgAAAAAAAQAAABVpbmZlAgAAAAABAABodmMxAAAAAA5waXRt"
    "AAAAAAABAAAA/WlwcnAAAADdaXBjbwAAAHZodmNDAQNwAAAAkAAAAAAAHvAA/P34+AAADwNgAAEAGEABDAH//wNwAAADAJAAAAMA"
    "AAMAHroCQGEAAQAqQgEBA3AAAAMAkAAAAwAAAwAeoCCBBZbq5Ka5uAhoMCAAAAMDIAAAAwAhYgABAAZEAcFzwIkAAAATY29scm5j"
    "bHgAAQANAAaAAAAAFGlzcGUAAAAAAAAAQAEJAEAAAAAoY2xhcAAAACAAAAABAAAAIAAAAAH////gAAAAAv///+AAAAACAAAAEHBp"
    "eGkAAAAAAwgICAAAABhpcG1hAAAAAAAAAAEAAQWBAgMFhAAAAC5tZGF0AAAAIigBrwtg9eWd01dw2kQEZKYlK1iKo9ozsqLtEo8Q"
    "8GcMKWA="
)


def heif_ispe_lies() -> bytes:
    """A 512x512 HEIF whose `ispe` box claims 16x16 (491 bytes): libheif refuses it with RuntimeError
    "Security limit exceeded", not an ImageError (found by hand after HEIF_GROWS)."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    Image.new("RGB", (512, 512), (120, 50, 200)).save(out, format="HEIF", quality=10)
    data = bytearray(out.getvalue())
    at = data.find(b"ispe")
    data[at + 8 : at + 16] = struct.pack(">II", 16, 16)
    return bytes(data)


def _b64(text: str) -> Callable[[], bytes]:
    return lambda: base64.b64decode(text)


CASES: dict[str, Callable[[], bytes]] = {
    "avif-missing-item": _b64(AVIF_MISSING_ITEM),
    "avif-bad-planes": _b64(AVIF_BAD_PLANES),
    "tiff-bytes-offset": _b64(TIFF_BYTES_OFFSET),
    "heif-grows": _b64(HEIF_GROWS),
    "heif-huge-ispe": _b64(HEIF_HUGE_ISPE),
    "heif-ispe-lies": heif_ispe_lies,
}
# Failing on today's src; remove a name when its fix lands (all found on 2026-12-06 are fixed). The value
# is how the failure shows: (exception type, text in its message or in the file that raised it), so a
# bounded CI fuzz run can step over bugs already reported here and keep looking for new ones.
KNOWN_BUGS: dict[str, tuple[str, str]] = {}


def known_bug(exc: BaseException) -> str | None:
    """The name of the known bug `exc` is, if it is one."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename} {exc}" if frames else str(exc)
    for name, (kind, needle) in KNOWN_BUGS.items():
        if type(exc).__name__ == kind and needle in where:
            return name
    return None


# Requests (tests/test_fuzz.py, benchmarks/hostile_input.py) that today's server answers with a 5xx.
# Fixed: deep JSON sent without a JSON content type, decoder crashes, CMYK / 32-bit float TIFFs' stored
# copies, a logo id past int64.
KNOWN_REQUEST_BUGS: set[str] = set()
# Operations the schemathesis run may reach a known bug on (and then answer 500): the bounded run in
# tests/test_fuzz.py counts those apart instead of failing on them. The value: its KNOWN_REQUEST_BUGS name.
# (A logo id past int64, e.g. DELETE /v1/brands/x/logos/10000000000000000001, overflows SQLite's INTEGER.)
KNOWN_OPERATION_BUGS: dict[str, str] = {}
# Seeds (seeds.py) that the API fuzzer leaves out of its images while `images:tiff-*` above is open: with
# them, whether its bounded run fails would depend on which images it happened to draw.
KNOWN_SEED_BUGS: set[str] = set()
# Files given to `feedlens analyze` (or any path the decoder reads) that are not regular files (a link to
# /dev/zero, a named pipe): refused as `unreadable` without reading.
KNOWN_FILE_BUGS: set[str] = set()
