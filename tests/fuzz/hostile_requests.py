"""Hostile HTTP requests for feedlens's four HTTP entry points: each hostile image in each entry point's
own envelope (multipart, base64 JSON, a Vision batch, a signed Rekognition call), then the request-level
attacks: deep JSON, base64 bombs, wrong content types, NUL bytes, oversize bodies (declared and chunked).

An `Attack` is plain data; `send` delivers it (signing Rekognition's at send time, as its clock needs).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx

from tests.fuzz.api_schemas import REKOGNITION_JSON, sigv4_headers
from tests.fuzz.hostile_images import png_zeros

ENTRY_POINTS = ("analyze", "images", "gcv", "rekognition")
PATHS = {"analyze": "/v1/analyze", "images": "/v1/images", "gcv": "/v1/images:annotate", "rekognition": "/"}
MIB = 1024 * 1024
BOUNDARY = "feedlens-hostile-boundary"
DEEP = {  # JSON nesting far past core.nesting.MAX_DEPTH (64) and Python's recursion limit
    "deep-array-1k": b"[" * 1000 + b"]" * 1000,
    "deep-array-100k": b"[" * 100_000 + b"]" * 100_000,
    "deep-object-5k": b'{"a":' * 5000 + b"1" + b"}" * 5000,
}


class Chunked:
    """A body of `total` NUL bytes sent in chunks with no Content-Length (iterable again and again)."""

    def __init__(self, total: int, size: int = MIB) -> None:
        self.total, self.size = total, size

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.total // self.size):
            yield b"\x00" * self.size


@dataclass(frozen=True)
class Attack:
    name: str
    path: str
    content: bytes | Chunked
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    sign_as: str | None = None  # Rekognition: the X-Amz-Target to sign with (SigV4 at send time)


def multipart(filename: str, data: bytes, extra: dict[str, str] | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body with one `file` part (and text fields); (body, content type)."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode("utf-8", "surrogateescape")
        + data
        + b"\r\n"
    ]
    for name, value in (extra or {}).items():
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode(), f"multipart/form-data; boundary={BOUNDARY}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def gcv_body(contents: list[str]) -> bytes:
    requests = [{"image": {"content": c}, "features": [{"type": "LABEL_DETECTION"}]} for c in contents]
    return json.dumps({"requests": requests}).encode()


def image_attack(entry: str, name: str, data: bytes) -> Attack:
    """One hostile image through `entry`, as that entry point's clients send images."""
    path = PATHS[entry]
    if entry in ("analyze", "images"):
        body, content_type = multipart(f"{name}.img", data)
        return Attack(f"image:{name}", path, body, {"Content-Type": content_type})
    if entry == "gcv":
        return Attack(f"image:{name}", path, gcv_body([_b64(data)]), {"Content-Type": "application/json"})
    body = json.dumps({"Image": {"Bytes": _b64(data)}}).encode()
    return Attack(f"image:{name}", path, body, {"Content-Type": REKOGNITION_JSON}, sign_as="DetectLabels")


def _json_envelope(entry: str, content: str) -> bytes:
    if entry == "gcv":
        return gcv_body([content])
    if entry == "rekognition":
        return json.dumps({"Image": {"Bytes": content}}).encode()
    return json.dumps({"image": {"content": content}}).encode()


def _json_ct(entry: str) -> str:
    return REKOGNITION_JSON if entry == "rekognition" else "application/json"


def deep_json(entry: str, path: str | None = None, method: str = "POST") -> list[Attack]:
    """Every DEEP body as JSON, as text/plain and with no content type at all."""
    out = []
    sign = "DetectLabels" if entry == "rekognition" else None
    for name, body in DEEP.items():
        for label, content_type in (("json", _json_ct(entry)), ("text", "text/plain"), ("no-type", "")):
            headers = {"Content-Type": content_type} if content_type else {}
            out.append(Attack(f"{name}:{label}", path or PATHS[entry], body, headers, method, sign))
    return out


def base64_bombs(entry: str) -> list[Attack]:
    """Decompression bombs and inflated payloads inside the JSON envelopes that carry base64."""
    bomb = _b64(png_zeros(8660, 8660))  # 75 Mpx of zeros in ~100 KB of base64
    spaced = "\n".join(bomb[i : i + 1] for i in range(len(bomb)))  # whitespace between every character
    attacks = [
        ("b64-png-bomb", _json_envelope(entry, bomb)),
        ("b64-bomb-newline-every-char", _json_envelope(entry, spaced)),
        ("b64-20mb-of-A", _json_envelope(entry, "A" * (20 * MIB))),
        ("b64-invalid-5mb", _json_envelope(entry, "!" * (5 * MIB))),
    ]
    if entry == "gcv":  # 16 bombs in one batch: the per-request multiplier
        attacks.append(("b64-16-bombs-one-batch", gcv_body([bomb] * 16)))
        attacks.append(("gcv-17-images", gcv_body([bomb] * 17)))
        attacks.append(("gcv-10000-empty-requests", json.dumps({"requests": [{}] * 10000}).encode()))
    sign = "DetectLabels" if entry == "rekognition" else None
    return [Attack(n, PATHS[entry], b, {"Content-Type": _json_ct(entry)}, sign_as=sign) for n, b in attacks]


def envelope_attacks(entry: str, max_body: int) -> list[Attack]:
    """Wrong content types, NUL bytes, oversize bodies (with and without a Content-Length)."""
    path, sign = PATHS[entry], ("DetectLabels" if entry == "rekognition" else None)
    png = png_zeros(64, 64)
    good_json = _json_envelope(entry, _b64(png))
    raw_part, part_type = multipart("a.png", png)
    cases: list[tuple[str, bytes | Chunked, dict[str, str]]] = [
        ("raw-png-as-image/png", png, {"Content-Type": "image/png"}),
        ("json-as-application/xml", good_json, {"Content-Type": "application/xml"}),
        ("multipart-without-boundary", raw_part, {"Content-Type": "multipart/form-data"}),
        ("multipart-as-json", raw_part, {"Content-Type": "application/json"}),
        ("json-as-multipart", good_json, {"Content-Type": part_type}),
        ("nul-body-json", b"\x00" * 4096, {"Content-Type": _json_ct(entry)}),
        (
            "nul-in-json-strings",
            good_json.replace(b'"image', b'"\\u0000image', 1),
            {"Content-Type": _json_ct(entry)},
        ),
        ("oversize-declared", b"\x00" * (max_body + MIB), {"Content-Type": _json_ct(entry)}),
    ]
    if entry in ("analyze", "images"):
        body, content_type = multipart("nul\x00name.png", png, {"analyzers": "labels\x00"})
        cases.append(("nul-in-multipart-names", body, {"Content-Type": content_type}))
        cases.append(("nul-in-query", png, {"Content-Type": "image/png", "X-Path-Suffix": "?analyzers=%00"}))
    if entry == "images":
        body, content_type = multipart(
            "a.png", png, {"post": json.dumps({"caption": "a\x00b", "id": "p\x00"})}
        )
        cases.append(("nul-in-post-metadata", body, {"Content-Type": content_type}))
    if entry == "rekognition":
        cases.append(("signed-as-application/json", good_json, {"Content-Type": "application/json"}))
    attacks = [Attack(name, path, content, headers, sign_as=sign) for name, content, headers in cases]
    # a streamed body cannot be signed in advance: this one goes unsigned (refused either way)
    attacks.append(
        Attack("oversize-chunked", path, Chunked(max_body + 2 * MIB), {"Content-Type": _json_ct(entry)})
    )
    return attacks


def request_attacks(entry: str, max_body: int) -> list[Attack]:
    return deep_json(entry) + base64_bombs(entry) + envelope_attacks(entry, max_body)


def send(client: httpx.Client, attack: Attack, key: str, pair: tuple[str, str]) -> httpx.Response:
    """Deliver `attack` with a write key (or its SigV4 pair on Rekognition's route)."""
    headers = dict(attack.headers)
    path = attack.path + headers.pop("X-Path-Suffix", "")
    if attack.sign_as is not None:
        assert isinstance(attack.content, bytes), "a signed body is signed whole"
        target = f"RekognitionService.{attack.sign_as}"
        content_type = headers.get("Content-Type", "")
        headers = sigv4_headers(f"{client.base_url}{path}", pair, target, attack.content, content_type)
    else:
        headers["Authorization"] = f"Bearer {key}"
    return client.request(attack.method, path, content=attack.content, headers=headers)
