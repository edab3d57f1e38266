"""Base64 images as the cloud APIs send them, and their first bytes without decoding the rest: a header
that already fails the decoder's limits should cost microseconds, not a decode of megabytes."""

from __future__ import annotations

import base64
import binascii

HEAD_BYTES = 64 * 1024  # enough for any format's size fields, past EXIF/ICC blocks in most JPEGs


def decode_base64(text: str, head: int | None = None) -> bytes:
    """What `text` decodes to (standard or URL-safe base64; whitespace and missing padding tolerated, as
    proto3 JSON allows), or with `head` only about its first `head` bytes, decoding nothing past them.
    Raises ValueError on a character that is not base64."""
    window = text if head is None else text[: (head // 3 + 1) * 4 * 2]  # room for whitespace
    cleaned = "".join(window.split()).replace("-", "+").replace("_", "/")
    if len(window) < len(text):  # a prefix: whole 4-character groups only, no padding
        cleaned = cleaned[: len(cleaned) // 4 * 4]
    else:
        cleaned += "=" * (-len(cleaned) % 4)
    try:
        data = base64.b64decode(cleaned, validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None
    return data if head is None else data[:head]
