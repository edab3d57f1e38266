"""AWS Signature Version 4 verification (header form, `AWS4-HMAC-SHA256`), written from AWS's published
description of the algorithm: rebuild the canonical request from what arrived, hash it into the string to
sign, derive the signing key from the secret, and compare signatures in constant time.

Pure: no I/O and no feedlens imports. Errors carry the `__type` an AWS JSON service answers with, so a
caller can put them on the wire as they are.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW = timedelta(minutes=15)  # AWS refuses requests dated more than 15 minutes from its clock
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"\d{8}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")  # an HTTP token, lower case
_UNRESERVED = "-_.~"  # RFC 3986 unreserved characters besides letters and digits: never encoded


class SigV4Error(Exception):
    """A request that fails verification; `code` is the AWS error type to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _incomplete(message: str) -> SigV4Error:
    return SigV4Error("IncompleteSignatureException", message)


def _invalid(message: str) -> SigV4Error:
    return SigV4Error("InvalidSignatureException", message)


@dataclass(frozen=True, slots=True)
class Authorization:
    """The parsed `Authorization` header: who signed (access key id and credential scope), which
    headers were signed (lower case, in the order given) and the signature (64 lower-case hex digits)."""

    access_key_id: str
    date: str  # YYYYMMDD
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request as received: `path` and `query` exactly as on the wire (percent-encoded, no decoding),
    `headers` as (name, value) pairs in arrival order (repeats kept), and the raw `body`."""

    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [v for k, v in self.headers if k.lower() == wanted]

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return ",".join(values) if values else None


def parse_authorization(value: str | None) -> Authorization:
    """Parse `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=a;b,
    Signature=hex`. A missing header is MissingAuthenticationTokenException; a malformed one
    IncompleteSignatureException."""
    if value is None or not value.strip():
        raise SigV4Error("MissingAuthenticationTokenException", "Missing Authentication Token")
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(f"unsupported authorization algorithm {algorithm[:40]!r}; use {ALGORITHM}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, item = part.strip().partition("=")
        if not sep or key in fields:
            raise _incomplete(f"malformed Authorization header component {part.strip()[:60]!r}")
        fields[key] = item.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if k not in fields]
    if missing:
        raise _incomplete(f"Authorization header requires {', '.join(missing)}")
    # the access key id cannot contain '/', so the scope is the last four components
    credential = fields["Credential"].rsplit("/", 4)
    if len(credential) != 5 or not all(credential) or credential[4] != TERMINATOR:
        raise _incomplete("Credential must have the form KEY/YYYYMMDD/REGION/SERVICE/aws4_request")
    access_key_id, date, region, service, _ = credential
    if not _DATE.fullmatch(date):
        raise _incomplete(f"Credential date {date[:20]!r} is not YYYYMMDD")
    signed = tuple(fields["SignedHeaders"].split(";"))
    if not all(_HEADER_NAME.fullmatch(h) for h in signed):
        raise _incomplete("SignedHeaders must be lower-case header names separated by ';'")
    signature = fields["Signature"]
    if not _SIGNATURE.fullmatch(signature):
        raise _incomplete("Signature must be 64 lower-case hexadecimal digits")
    return Authorization(access_key_id, date, region, service, signed, signature)


def _normalise_path(path: str) -> str:
    """Remove '.' and '..' segments and empty segments (RFC 3986 section 5.2.4, as AWS asks); a trailing
    slash is kept."""
    out: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    normalised = "/" + "/".join(out)
    if path.endswith("/") and out:
        normalised += "/"
    return normalised


def canonical_uri(raw_path: str) -> str:
    """Non-S3 services encode the path twice: the wire path is already encoded once, so encode it again
    (every byte but unreserved characters and '/')."""
    return quote(_normalise_path(raw_path or "/"), safe="/" + _UNRESERVED)


def canonical_query(raw_query: str) -> str:
    """Parameters decoded, re-encoded the RFC 3986 way (space as %20) and sorted by name, then value."""
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((quote(unquote(name), safe=_UNRESERVED), quote(unquote(value), safe=_UNRESERVED)))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _trim(value: str) -> str:
    return " ".join(value.split())  # strip, and runs of spaces inside become one


def canonical_headers(request: SignedRequest, signed: Sequence[str]) -> str:
    """`name:value` lines for the signed headers; repeated headers joined with ','."""
    lines = []
    for name in signed:
        values = request.header_values(name)
        if not values:
            raise _invalid(f"signed header {name!r} is not in the request")
        lines.append(f"{name}:{','.join(_trim(v) for v in values)}\n")
    return "".join(lines)


def payload_hash(request: SignedRequest) -> str:
    """SHA-256 of the body. A client-sent x-amz-content-sha256 must agree with it: otherwise the
    signature would cover a hash and not the body that came with it."""
    digest = hashlib.sha256(request.body).hexdigest()
    claimed = request.header("x-amz-content-sha256")
    if claimed is not None and claimed.strip().lower() != digest:
        raise _invalid("x-amz-content-sha256 does not match the request body (unsigned payloads are refused)")
    return digest


def canonical_request(request: SignedRequest, signed_headers: Sequence[str]) -> str:
    ordered = sorted(signed_headers)
    return "\n".join(
        (
            request.method.upper(),
            canonical_uri(request.path),
            canonical_query(request.query),
            canonical_headers(request, ordered),
            ";".join(ordered),
            payload_hash(request),
        )
    )


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join((ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()))


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """HMAC chain: "AWS4" + secret -> date -> region -> service -> "aws4_request"."""
    key = _hmac(f"AWS4{secret}".encode(), date)
    for part in (region, service, TERMINATOR):
        key = _hmac(key, part)
    return key


def sign(secret: str, auth: Authorization, amz_date: str, request: SignedRequest) -> str:
    """The hex signature of `request` under `auth`'s scope and signed headers."""
    text = string_to_sign(amz_date, auth.scope, canonical_request(request, auth.signed_headers))
    key = signing_key(secret, auth.date, auth.region, auth.service)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def request_time(request: SignedRequest) -> tuple[str, datetime, str]:
    """(the date string as signed, as an aware datetime, the header it came from): X-Amz-Date
    (YYYYMMDD'T'HHMMSS'Z'), else the HTTP Date header."""
    amz = request.header("x-amz-date")
    if amz is not None:
        try:
            when = datetime.strptime(amz.strip(), AMZ_DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise _incomplete(f"X-Amz-Date {amz[:40]!r} is not in the form YYYYMMDD'T'HHMMSS'Z'") from None
        return amz.strip(), when, "x-amz-date"
    date = request.header("date")
    if date is None:
        raise _incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header"
        )
    try:
        parsed = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        raise _incomplete(f"Date header {date[:40]!r} is not an HTTP date") from None
    when = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return when.strftime(AMZ_DATE_FORMAT), when, "date"


def _check_signed_headers(request: SignedRequest, auth: Authorization, date_header: str) -> None:
    signed = set(auth.signed_headers)
    if "host" not in signed:
        raise _incomplete("'Host' must be a SignedHeader in the AWS Authorization")
    if date_header not in signed:
        raise _incomplete(f"'{date_header}' must be a SignedHeader in the AWS Authorization")
    # x-amz-* headers steer the request (the operation, the payload hash): each must be signed, or a
    # captured request could be replayed as another operation
    unsigned = sorted({k.lower() for k, _ in request.headers if k.lower().startswith("x-amz-")} - signed)
    if unsigned:
        raise _incomplete(f"headers {', '.join(unsigned)} must be signed")


def verify(
    request: SignedRequest,
    auth: Authorization,
    secret: str,
    now: datetime,
    service: str,
    max_skew: timedelta = MAX_SKEW,
) -> None:
    """Raise SigV4Error unless `request` carries a valid signature by `secret` for `service`, dated
    within `max_skew` of `now`. `auth` is `parse_authorization` of the request's header."""
    if auth.service != service:
        raise _invalid(f"Credential should be scoped to correct service: '{service}'")
    amz_date, when, date_header = request_time(request)
    _check_signed_headers(request, auth, date_header)
    if amz_date[:8] != auth.date:
        raise _invalid(f"Credential should be scoped to a valid date: {amz_date[:8]!r}, not {auth.date!r}")
    if when < now - max_skew:
        limit = (now - max_skew).strftime(AMZ_DATE_FORMAT)
        raise _invalid(f"Signature expired: {amz_date} is now earlier than {limit}")
    if when > now + max_skew:
        limit = (now + max_skew).strftime(AMZ_DATE_FORMAT)
        raise _invalid(f"Signature not yet current: {amz_date} is still later than {limit}")
    expected = sign(secret, auth, amz_date, request)
    if not hmac.compare_digest(expected, auth.signature):
        raise _invalid(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
