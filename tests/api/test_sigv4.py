"""SigV4 verification against requests signed by botocore's own SigV4Auth (the signer boto3 uses)."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from feedlens.api.compat import sigv4

KEY_ID, SECRET = "feedlens-7", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
HOST = "127.0.0.1:8080"
BODY = b'{"Image": {"Bytes": "iVBORw0KGgo="}, "MaxLabels": 3}'
TARGET = "RekognitionService.DetectLabels"


def botocore_signed(
    url: str = f"http://{HOST}/",
    body: bytes = BODY,
    headers: dict[str, str] | None = None,
    secret: str = SECRET,
    service: str = "rekognition",
) -> sigv4.SignedRequest:
    """A request signed exactly as boto3 signs one, in the form the server receives it."""
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1", **(headers or {})},
    )
    SigV4Auth(Credentials(KEY_ID, secret), service, "us-east-1").add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    received = [(k, v) for k, v in prepared.headers.items()] + [("Host", parts.netloc)]
    assert prepared.body is not None
    body_bytes = prepared.body if isinstance(prepared.body, bytes) else prepared.body.encode()
    return sigv4.SignedRequest("POST", parts.path, parts.query, received, body_bytes)


def signed_at(request: sigv4.SignedRequest) -> datetime:
    stamp = request.header("x-amz-date")
    assert stamp is not None
    return datetime.strptime(stamp, sigv4.AMZ_DATE_FORMAT).replace(tzinfo=UTC)


def verify(request: sigv4.SignedRequest, now: datetime | None = None, secret: str = SECRET) -> None:
    auth = sigv4.parse_authorization(request.header("authorization"))
    sigv4.verify(request, auth, secret, now or signed_at(request), "rekognition")


def with_header(request: sigv4.SignedRequest, name: str, value: str) -> sigv4.SignedRequest:
    kept = [(k, v) for k, v in request.headers if k.lower() != name.lower()]
    return dataclasses.replace(request, headers=[*kept, (name, value)])


def refused(
    request: sigv4.SignedRequest, code: str, now: datetime | None = None, secret: str = SECRET
) -> str:
    with pytest.raises(sigv4.SigV4Error) as caught:
        verify(request, now, secret)
    assert caught.value.code == code, caught.value.message
    return caught.value.message


def test_a_botocore_signed_request_verifies() -> None:
    request = botocore_signed()
    auth = sigv4.parse_authorization(request.header("authorization"))
    assert (auth.access_key_id, auth.region, auth.service) == (KEY_ID, "us-east-1", "rekognition")
    assert set(auth.signed_headers) >= {"host", "x-amz-date", "x-amz-target"}
    verify(request)


@pytest.mark.parametrize(
    "url",
    [
        f"http://{HOST}/a%20b/c~d/./e/../f",  # double-encoded, dot segments removed
        f"http://{HOST}/?b=2&a=1&c=x%20y&c=a%2Bb&empty=",  # sorted by name, then value
        f"http://{HOST}/deep/path/",  # trailing slash kept
    ],
)
def test_paths_and_query_strings_canonicalise_as_botocore_signs_them(url: str) -> None:
    verify(botocore_signed(url))


def test_header_values_are_trimmed_as_botocore_trims_them() -> None:
    verify(botocore_signed(headers={"X-Custom": "  a   b  "}))


def test_repeated_headers_are_joined_with_commas() -> None:
    request = sigv4.SignedRequest(
        "POST", "/", "", [("X-Twice", " a "), ("Host", HOST), ("x-twice", "b  c")], b""
    )
    assert sigv4.canonical_headers(request, ["host", "x-twice"]) == f"host:{HOST}\nx-twice:a,b c\n"


def test_a_tampered_body_fails() -> None:
    request = botocore_signed()
    refused(dataclasses.replace(request, body=BODY.replace(b"3", b"9")), "InvalidSignatureException")


def test_a_tampered_signed_header_fails() -> None:
    request = with_header(botocore_signed(), "X-Amz-Target", "RekognitionService.DetectFaces")
    refused(request, "InvalidSignatureException")


def test_a_tampered_path_or_query_fails() -> None:
    request = botocore_signed(f"http://{HOST}/?a=1")
    refused(dataclasses.replace(request, path="/other"), "InvalidSignatureException")
    refused(dataclasses.replace(request, query="a=2"), "InvalidSignatureException")


def test_a_tampered_date_fails() -> None:
    request = botocore_signed()
    later = signed_at(request) + timedelta(seconds=1)
    moved = with_header(request, "X-Amz-Date", later.strftime(sigv4.AMZ_DATE_FORMAT))
    refused(moved, "InvalidSignatureException", now=later)


def test_the_wrong_secret_fails() -> None:
    refused(botocore_signed(secret="not-the-secret"), "InvalidSignatureException")


def test_a_signature_for_another_service_fails() -> None:
    message = refused(botocore_signed(service="s3"), "InvalidSignatureException")
    assert "rekognition" in message


def test_dates_older_or_newer_than_15_minutes_fail() -> None:
    request = botocore_signed()
    at = signed_at(request)
    verify(request, now=at + timedelta(minutes=14))
    verify(request, now=at - timedelta(minutes=14))
    assert "expired" in refused(request, "InvalidSignatureException", now=at + timedelta(minutes=16))
    assert "not yet current" in refused(request, "InvalidSignatureException", now=at - timedelta(minutes=16))


def test_an_unsigned_x_amz_header_is_refused() -> None:
    # added after signing: a replay could otherwise steer the request (another operation, another hash)
    request = with_header(botocore_signed(), "X-Amz-Meta-Extra", "1")
    assert "x-amz-meta-extra" in refused(request, "IncompleteSignatureException")


def test_host_must_be_signed() -> None:
    request = botocore_signed()
    auth = sigv4.parse_authorization(request.header("authorization"))
    unsigned = dataclasses.replace(auth, signed_headers=tuple(h for h in auth.signed_headers if h != "host"))
    amz_date = request.header("x-amz-date")
    assert amz_date is not None
    # a correct signature over the other headers is still refused
    signature = sigv4.sign(SECRET, unsigned, amz_date, request)
    value = (
        f"{sigv4.ALGORITHM} Credential={KEY_ID}/{auth.scope}, "
        f"SignedHeaders={';'.join(unsigned.signed_headers)}, Signature={signature}"
    )
    assert "Host" in refused(with_header(request, "Authorization", value), "IncompleteSignatureException")


def test_a_signed_header_missing_from_the_request_fails() -> None:
    request = botocore_signed()
    dropped = dataclasses.replace(
        request, headers=[(k, v) for k, v in request.headers if k != "Content-Type"]
    )
    assert "content-type" in refused(dropped, "InvalidSignatureException")


def test_a_payload_hash_header_must_match_the_body() -> None:
    digest = hashlib.sha256(BODY).hexdigest()
    verify(botocore_signed(headers={"X-Amz-Content-Sha256": digest}))
    unsigned = botocore_signed(headers={"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"})
    assert "body" in refused(unsigned, "InvalidSignatureException")


def test_the_http_date_header_is_accepted_when_there_is_no_x_amz_date() -> None:
    request = botocore_signed()
    at = signed_at(request)
    auth = sigv4.parse_authorization(request.header("authorization"))
    headers = [(k, v) for k, v in request.headers if k.lower() not in ("x-amz-date", "authorization")]
    dated = dataclasses.replace(
        request, headers=[*headers, ("Date", at.strftime("%a, %d %b %Y %H:%M:%S GMT"))]
    )
    signed_headers = tuple(sorted({*auth.signed_headers} - {"x-amz-date"} | {"date"}))
    scoped = dataclasses.replace(auth, signed_headers=signed_headers)
    signature = sigv4.sign(SECRET, scoped, at.strftime(sigv4.AMZ_DATE_FORMAT), dated)
    value = (
        f"{sigv4.ALGORITHM} Credential={KEY_ID}/{auth.scope}, "
        f"SignedHeaders={';'.join(signed_headers)}, Signature={signature}"
    )
    verify(with_header(dated, "Authorization", value), now=at)


def header(credential: str, signed: str = "host", signature: str = "0" * 64) -> str:
    return f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}, Signature={signature}"


SCOPE = "20260101/us-east-1/rekognition/aws4_request"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (None, "MissingAuthenticationTokenException"),
        ("", "MissingAuthenticationTokenException"),
        ("Bearer fl_abc", "IncompleteSignatureException"),
        (f"AWS4-HMAC-SHA256 Credential=k/{SCOPE}", "IncompleteSignatureException"),
        (header("k/2026-01-01/us-east-1/rekognition/aws4_request"), "IncompleteSignatureException"),
        (header(f"k/{SCOPE}", signed="Host"), "IncompleteSignatureException"),
        (header(f"k/{SCOPE}", signature="xyz"), "IncompleteSignatureException"),
        (header("k/20260101/us-east-1/rekognition/aws4"), "IncompleteSignatureException"),
        (header(f"k/{SCOPE}") + ", Signature=" + "1" * 64, "IncompleteSignatureException"),
        ("AWS4-ECDSA-P256-SHA256 " + header(f"k/{SCOPE}").split(" ", 1)[1], "IncompleteSignatureException"),
    ],
)
def test_malformed_authorization_headers(value: str | None, code: str) -> None:
    with pytest.raises(sigv4.SigV4Error) as caught:
        sigv4.parse_authorization(value)
    assert caught.value.code == code
    assert sigv4.parse_authorization(header(f"k/{SCOPE}")).access_key_id == "k"


def test_the_signing_key_follows_the_published_example() -> None:
    # AWS's documented example: secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam
    key = sigv4.signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
