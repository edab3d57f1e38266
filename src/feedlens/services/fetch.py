"""The one way feedlens fetches a URL: SSRF-safe, bounded in time and size.

Every image URL (API, batches, feed files) goes through `SafeFetcher`. The rules:

* Opt-in: with `FetchLimits.enabled` false every fetch raises `fetch_disabled`.
* http and https only; no credentials in the URL.
* The host is resolved once with `socket.getaddrinfo`; if ANY address is not public (private, loopback,
  link-local, multicast, reserved, unspecified, CGNAT, or a public-looking IPv6 that embeds such an IPv4)
  the URL is refused, unless the address is inside `FetchLimits.allowed_networks`.
* DNS rebinding: the connection goes to the address that was validated, never to a fresh lookup (see
  `SafeFetcher._send`).
* Redirects are followed by hand, each hop validated as above, at most `max_redirects`.
* One deadline (`timeout_s`) covers the whole fetch, redirects and body included; the body is streamed and
  refused as soon as it passes `max_bytes`.
* No cookies kept, no proxies or certificates from the environment, a fixed User-Agent.
"""

from __future__ import annotations

import io
import ipaddress
import socket
import time
from dataclasses import dataclass
from enum import StrEnum
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType
from typing import Self

import httpx

from feedlens.config import FetchLimits
from feedlens.core.errors import FeedlensError

USER_AGENT = "feedlens/0.1"
MAX_URL_LENGTH = 8192  # longer is not an image URL anyone means; refuse before parsing it
ALLOWED_SCHEMES = frozenset({"http", "https"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IPv6 prefixes that carry an IPv4 address a gateway would forward to; Python counts them as global.
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: last 32 bits are the IPv4
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: operator-local, never public


class FetchErrorCode(StrEnum):
    """Why a URL was not fetched. Stable strings: part of the public contract, never rename one."""

    FETCH_DISABLED = "fetch_disabled"
    URL_INVALID = "url_invalid"
    URL_SCHEME_REFUSED = "url_scheme_refused"
    ADDRESS_REFUSED = "address_refused"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    FETCH_TIMEOUT = "fetch_timeout"
    FETCH_TOO_LARGE = "fetch_too_large"
    FETCH_FAILED = "fetch_failed"
    FETCH_HTTP_STATUS = "fetch_http_status"

    @property
    def http_status(self) -> int:
        """The status feedlens's own API should answer with.

        Refusals are 400, address_refused included: the fix is a different URL, and 403 would suggest
        that other credentials could help. Failures of the remote side are gateway errors (502, 504).
        """
        match self:
            case FetchErrorCode.FETCH_TOO_LARGE:
                return 413
            case FetchErrorCode.FETCH_TIMEOUT:
                return 504
            case (
                FetchErrorCode.TOO_MANY_REDIRECTS
                | FetchErrorCode.FETCH_FAILED
                | FetchErrorCode.FETCH_HTTP_STATUS
            ):
                return 502
            case _:
                return 400


class FetchError(FeedlensError):
    """A URL could not be fetched or was refused. Like ImageError, it concerns one item, not a batch.

    `http_status` is the status feedlens's API should answer with; `upstream_status` is the remote
    server's status, set for fetch_http_status only.
    """

    def __init__(self, code: FetchErrorCode, message: str, *, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code.value
        self.fetch_code = code
        self.http_status = code.http_status
        self.upstream_status = upstream_status


@dataclass(frozen=True, slots=True)
class FetchedImage:
    """A fetched body. `url` is the final URL after redirects; `content_type` is the raw header."""

    url: str
    data: bytes
    content_type: str | None


@dataclass(frozen=True, slots=True)
class _Hop:
    """One validated request: the URL as written (for Host, TLS and redirects) and the addresses to use."""

    url: httpx.URL
    host: str  # ASCII (IDNA) host, no brackets
    addresses: tuple[IPAddress, ...]


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a transition prefix (6to4, Teredo, NAT64) would deliver to, if any."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses.

    `is_global` alone is not enough on Python 3.11: it calls multicast (224/4) and the transition prefixes
    (6to4, NAT64) global, so those are checked too.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address.is_site_local or address in _NAT64_LOCAL_USE:
            return False
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public_address(embedded):
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _normalise(address: IPAddress) -> IPAddress:
    # ::ffff:a.b.c.d is a.b.c.d: check and connect to the IPv4 so allowed_networks match either spelling.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class SafeFetcher:
    """Fetches http(s) URLs under a `FetchLimits` policy. Thread-safe; use as a context manager or close().

    >>> with SafeFetcher(settings.fetch) as fetcher:
    ...     image = fetcher.fetch("https://example.com/cat.jpg")
    """

    def __init__(self, limits: FetchLimits) -> None:
        self._limits = limits
        self._allowed: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(network, strict=False) for network in limits.allowed_networks
        )
        self._client = httpx.Client(
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "image/*, */*;q=0.5",
                # Compressed bodies could inflate far past max_bytes in one chunk; ask for none, refuse any.
                "Accept-Encoding": "identity",
            },
            # A jar whose policy accepts no domain: Set-Cookie from one fetch never reaches another.
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            follow_redirects=False,  # every hop is validated by hand
            trust_env=False,  # no HTTP(S)_PROXY / ALL_PROXY, .netrc or SSL_CERT_FILE from the environment
            # No keep-alive: connections are keyed by the pinned IP, so a TLS connection verified for one
            # host name could otherwise be reused for another name on the same IP without a new check.
            limits=httpx.Limits(max_keepalive_connections=0),
            timeout=limits.timeout_s,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def fetch(self, url: str) -> FetchedImage:
        """Fetch `url` (following validated redirects) and return its body. Raises FetchError."""
        if not self._limits.enabled:
            raise FetchError(
                FetchErrorCode.FETCH_DISABLED,
                "fetching URLs is disabled (set FEEDLENS_FETCH__ENABLED=true to allow it)",
            )
        deadline = time.monotonic() + self._limits.timeout_s
        try:
            return self._fetch(_parse_url(url), deadline)
        except httpx.TimeoutException as exc:
            raise FetchError(
                FetchErrorCode.FETCH_TIMEOUT, f"no complete answer within {self._limits.timeout_s:g} s"
            ) from exc
        except httpx.InvalidURL as exc:  # a pinned IPv6 with a zone id (only when allowed_networks says so)
            raise FetchError(FetchErrorCode.URL_INVALID, f"cannot request this address: {exc}") from exc
        except httpx.TransportError as exc:
            # Connection refused/reset, TLS failure, malformed HTTP. The class name says which, and unlike
            # the full text it cannot echo anything about the remote side back to the caller.
            raise FetchError(FetchErrorCode.FETCH_FAILED, f"fetch failed: {type(exc).__name__}") from exc

    def _fetch(self, url: httpx.URL, deadline: float) -> FetchedImage:
        for hop_number in range(self._limits.max_redirects + 1):
            response = self._send(self._validate(url), deadline)
            try:
                status = response.status_code
                if status in REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError(
                            FetchErrorCode.FETCH_HTTP_STATUS,
                            f"HTTP {status} redirect without a Location",
                            upstream_status=status,
                        )
                    if hop_number == self._limits.max_redirects:
                        break
                    url = _parse_url(location, base=url, what="redirect target")
                    continue
                if not 200 <= status < 300:
                    raise FetchError(
                        FetchErrorCode.FETCH_HTTP_STATUS,
                        f"the server answered HTTP {status}",
                        upstream_status=status,
                    )
                data = self._read_body(response, deadline)
                return FetchedImage(
                    url=str(url), data=data, content_type=response.headers.get("content-type")
                )
            finally:
                response.close()  # an unread body closes the connection rather than draining it
        raise FetchError(
            FetchErrorCode.TOO_MANY_REDIRECTS, f"more than {self._limits.max_redirects} redirects"
        )

    def _validate(self, url: httpx.URL) -> _Hop:
        """Resolve the host once and check every address it has."""
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        addresses = (literal,) if literal is not None else _resolve(host, port)
        addresses = tuple(dict.fromkeys(_normalise(address) for address in addresses))
        if not all(self._permitted(address) for address in addresses):
            if literal is not None:
                message = f"address {host} is not public and not in allowed_networks"
            else:
                # Which address is not said: the message must not turn feedlens into an internal DNS oracle.
                message = (
                    f"host {host!r} resolves to an address that is not public and not in allowed_networks"
                )
            raise FetchError(FetchErrorCode.ADDRESS_REFUSED, message)
        return _Hop(url=url, host=host, addresses=addresses)

    def _permitted(self, address: IPAddress) -> bool:
        return any(address in network for network in self._allowed) or is_public_address(address)

    def _send(self, hop: _Hop, deadline: float) -> httpx.Response:
        """Send the GET to a validated address, trying the next one only if a connection is refused.

        Rebinding defence: the request URL carries the validated IP literal, so httpcore connects to
        exactly that address (a numeric host is never looked up again), while the Host header and the
        TLS server name (httpx's `sni_hostname` extension, which certificate verification also checks)
        keep the real host name. Nothing between our check and the connect can swap the address, and no
        request is ever sent to an address we did not check, which checking the peer after the fact
        cannot promise.
        """
        error: httpx.ConnectError | None = None
        for address in hop.addresses:
            request = self._client.build_request(
                "GET",
                hop.url.copy_with(host=str(address)),
                headers={"Host": hop.url.netloc.decode("ascii")},
                extensions={"sni_hostname": hop.host},
                timeout=_remaining(deadline),
            )
            try:
                return self._client.send(request, stream=True)
            except httpx.ConnectError as exc:
                error = exc  # like a browser: the host's next address may answer
        assert error is not None  # _resolve never returns no address
        raise error

    def _read_body(self, response: httpx.Response, deadline: float) -> bytes:
        """Stream the body, holding at most max_bytes plus one network read (64 KiB)."""
        limit = self._limits.max_bytes
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise FetchError(FetchErrorCode.FETCH_FAILED, f"refused Content-Encoding {encoding!r}")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(
                FetchErrorCode.FETCH_TOO_LARGE, f"the body is {int(declared)} bytes; the limit is {limit}"
            )
        body = io.BytesIO()
        for chunk in response.iter_raw():
            body.write(chunk)
            if body.tell() > limit:
                raise FetchError(
                    FetchErrorCode.FETCH_TOO_LARGE, f"the body passed the limit of {limit} bytes"
                )
            # Each read waits at most the time that was left when the hop started, so a server trickling
            # bytes is caught here, within one read of the deadline.
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("deadline passed while reading the body")
        return body.getvalue()  # CPython hands the buffer over without copying it


def _parse_url(raw: str, *, base: httpx.URL | None = None, what: str = "URL") -> httpx.URL:
    """Parse (relative to `base`, for a Location) and check scheme, host and credentials."""
    if len(raw) > MAX_URL_LENGTH:
        raise FetchError(FetchErrorCode.URL_INVALID, f"{what} is longer than {MAX_URL_LENGTH} characters")
    try:
        url = base.join(raw) if base is not None else httpx.URL(raw)
        if not url.scheme:
            raise FetchError(FetchErrorCode.URL_INVALID, f"{what} is not an absolute http(s) URL")
        if url.scheme not in ALLOWED_SCHEMES:
            raise FetchError(
                FetchErrorCode.URL_SCHEME_REFUSED,
                f"{what} scheme {url.scheme!r} is refused (http, https only)",
            )
        if not url.raw_host:
            raise FetchError(FetchErrorCode.URL_INVALID, f"{what} has no host")
        if url.port is not None and not 0 < url.port < 65536:  # httpx parses any number of digits
            raise FetchError(FetchErrorCode.URL_INVALID, f"{what} has port {url.port}, outside 1-65535")
        if url.userinfo:
            raise FetchError(FetchErrorCode.URL_INVALID, f"{what} carries credentials; they are refused")
        return url.copy_with(fragment=None)
    except httpx.InvalidURL as exc:
        raise FetchError(FetchErrorCode.URL_INVALID, f"{what} is not a valid URL: {exc}") from exc


def _resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    """Every IPv4/IPv6 address of `host`. The lookup itself has no timeout of its own (libc's applies)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FetchError(FetchErrorCode.FETCH_FAILED, f"cannot resolve host {host!r}") from exc
    addresses = tuple(
        ipaddress.ip_address(str(sockaddr[0]))
        for family, _, _, _, sockaddr in infos
        if family in (socket.AF_INET, socket.AF_INET6)
    )
    if not addresses:
        raise FetchError(FetchErrorCode.FETCH_FAILED, f"host {host!r} has no IP address")
    return addresses


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpx.ConnectTimeout("deadline passed before the request")
    return left
