"""SafeFetcher against real HTTP servers on loopback: what it fetches, what it refuses, and that a refusal
sends nothing. Only DNS answers for made-up names are faked (monkeypatched getaddrinfo)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from feedlens.config import FetchLimits
from feedlens.core.errors import FeedlensError
from feedlens.services.fetch import (
    USER_AGENT,
    FetchedImage,
    FetchError,
    FetchErrorCode,
    SafeFetcher,
    is_public_address,
)

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
LOOPBACK_ONLY = ("127.0.0.1/32",)


class _Server(ThreadingHTTPServer):
    """Records each request's path and headers; `stop` wakes handlers that wait."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.stop = threading.Event()

    @property
    def origin(self) -> str:
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Ipv6Server(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # for chunked bodies
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, dict(self.headers.items())))
        with contextlib.suppress(OSError):  # the fetcher hung up on purpose (too large, timeout)
            self._route(urlsplit(self.path))

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self, url: Any) -> None:
        parts = url.path.strip("/").split("/")
        match parts:
            case ["image"]:
                self._send(200, IMAGE, Content_Type="image/png", Set_Cookie="session=secret; Path=/")
            case ["redirect"]:
                self._send(302, Location=parse_qs(url.query)["to"][0])
            case ["chain", "0"]:
                self._send(200, IMAGE, Content_Type="image/png")
            case ["chain", n]:  # n redirects to reach the image
                self._send(302, Location=f"/chain/{int(n) - 1}")
            case ["no-location"]:
                self._send(302)
            case ["sized", n]:
                self._send(200, b"x" * int(n), Content_Type="image/jpeg")
            case ["chunked", n]:
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, int(n), 512):
                    chunk = b"x" * min(512, int(n) - start)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            case ["slow"]:
                self.server.stop.wait(5)
                self._send(200, IMAGE)
            case ["drip"]:  # every read is quick, the whole body is not
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                for _ in range(100):
                    if self.server.stop.wait(0.05):
                        return
                    self.wfile.write(b"x")
                    self.wfile.flush()
            case ["gzip"]:
                self._send(200, b"\x1f\x8b not really", Content_Encoding="gzip")
            case _:
                self._send(404, b"not found")


def _start(server: _Server) -> Iterator[_Server]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    yield from _start(_Server(("127.0.0.1", 0)))


@pytest.fixture
def other_server() -> Iterator[_Server]:
    """A second loopback address, 127.0.0.2: stands for an internal service."""
    yield from _start(_Server(("127.0.0.2", 0)))


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any name lookup or connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> Any:
        raise AssertionError(f"network used: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, Callable[[], list[str]]]) -> list[str]:
    """Answer getaddrinfo for made-up names; numeric hosts still go to libc. Returns the names looked up."""
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            return real(host, port, *args, **kwargs)
        looked_up.append(name)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, int(port), 0, 0))
            if ":" in ip
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port)))
            for ip in answers[name]()
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def _fetcher(**overrides: Any) -> SafeFetcher:
    policy: dict[str, Any] = {"enabled": True, "allowed_networks": LOOPBACK_ONLY, "timeout_s": 2.0}
    return SafeFetcher(FetchLimits(**(policy | overrides)))


def _refused(url: str, code: FetchErrorCode, **overrides: Any) -> FetchError:
    with _fetcher(**overrides) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.fetch(url)
    assert caught.value.fetch_code is code, caught.value.message
    assert caught.value.code == code.value
    return caught.value


def test_fetches_from_an_allowed_network(server: _Server) -> None:
    with _fetcher() as fetcher:
        image = fetcher.fetch(f"{server.origin}/image#fragment")
    assert image == FetchedImage(url=f"{server.origin}/image", data=IMAGE, content_type="image/png")
    [(path, headers)] = server.requests
    assert path == "/image"
    assert headers["User-Agent"] == USER_AGENT
    assert headers["Accept-Encoding"] == "identity"
    assert headers["Host"] == server.origin.removeprefix("http://")


def test_no_cookies_kept_and_no_proxy_from_environment(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # discard port: a proxy that would fail
    with _fetcher() as fetcher:
        fetcher.fetch(f"{server.origin}/image")  # answers with Set-Cookie
        fetcher.fetch(f"{server.origin}/image")
    assert [headers.get("Cookie") for _, headers in server.requests] == [None, None]


def test_ipv6_loopback_when_allowed() -> None:
    try:
        ipv6 = _Ipv6Server(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    for running in _start(ipv6):
        with _fetcher(allowed_networks=("::1/128",)) as fetcher:
            assert fetcher.fetch(f"{running.origin}/image").data == IMAGE


def test_refused_when_not_allowed(server: _Server) -> None:
    error = _refused(f"{server.origin}/image", FetchErrorCode.ADDRESS_REFUSED, allowed_networks=())
    assert error.http_status == 400
    assert server.requests == []


def test_refused_when_disabled(server: _Server) -> None:
    error = _refused(f"{server.origin}/image", FetchErrorCode.FETCH_DISABLED, enabled=False)
    assert error.http_status == 400
    assert server.requests == []


def test_redirect_to_a_refused_address_is_not_followed(server: _Server, other_server: _Server) -> None:
    url = f"{server.origin}/redirect?to={other_server.origin}/image"
    with _fetcher(allowed_networks=("127.0.0.0/8",)) as fetcher:  # control: the target works when allowed
        assert fetcher.fetch(url).url == f"{other_server.origin}/image"
    other_server.requests.clear()
    _refused(url, FetchErrorCode.ADDRESS_REFUSED)  # only 127.0.0.1/32
    assert other_server.requests == []


def test_redirect_to_a_refused_scheme(server: _Server) -> None:
    _refused(f"{server.origin}/redirect?to=file:///etc/passwd", FetchErrorCode.URL_SCHEME_REFUSED)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/image.png",
        "gopher://127.0.0.1:70/_GET",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
    ],
)
def test_schemes_other_than_http_are_refused(url: str, no_network: None) -> None:
    _refused(url, FetchErrorCode.URL_SCHEME_REFUSED)


@pytest.mark.parametrize(
    "url",
    ["", "not a url", "//127.0.0.1/image", "http://", "http:///image", "http://user:pw@127.0.0.1/image",
     "http://127.0.0.1:99999/", "http://127.0.0.1:0/", "http://" + "a" * 9000],
)  # fmt: skip
def test_invalid_urls(url: str, no_network: None) -> None:
    _refused(url, FetchErrorCode.URL_INVALID)


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # CGNAT
        "0.0.0.0",
        "127.0.0.2",  # loopback, outside the allowed /32
        "224.0.0.1",  # multicast: Python 3.11 calls it global
        "240.0.0.1",
        "255.255.255.255",
        "[::1]",
        "[::]",
        "[fe80::1]",
        "[fc00::1]",
        "[::ffff:10.0.0.1]",  # IPv4-mapped
        "[::ffff:169.254.169.254]",
        "[2002:a9fe:a9fe::1]",  # 6to4 wrapping 169.254.169.254
        "[64:ff9b::a9fe:a9fe]",  # NAT64 wrapping 169.254.169.254
        "[ff02::1]",
    ],
)
def test_non_public_addresses_are_refused_without_traffic(host: str, no_network: None) -> None:
    _refused(f"http://{host}/latest/meta-data/", FetchErrorCode.ADDRESS_REFUSED)


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "127.1", "017700000001"])
def test_odd_ipv4_spellings_are_resolved_then_refused(host: str) -> None:
    # Not IP literals to a URL parser; libc reads them as 127.0.0.1, and the resolved address is checked.
    _refused(f"http://{host}/", FetchErrorCode.ADDRESS_REFUSED, allowed_networks=())


def test_public_addresses_pass_the_check() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "2002:5db8:d822::1"):
        assert is_public_address(ipaddress.ip_address(address)), address


def test_host_resolving_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, no_network: None
) -> None:
    looked_up = _fake_dns(
        monkeypatch,
        {
            "images.example.com": lambda: ["10.1.2.3"],
            "mixed.example.com": lambda: ["93.184.216.34", "10.1.2.3"],
        },
    )
    error = _refused("https://images.example.com/cat.jpg", FetchErrorCode.ADDRESS_REFUSED)
    assert "10.1.2.3" not in error.message  # no internal DNS oracle
    _refused("http://mixed.example.com/cat.jpg", FetchErrorCode.ADDRESS_REFUSED)  # any bad address refuses
    assert looked_up == ["images.example.com", "mixed.example.com"]


def test_connects_to_the_checked_address_without_resolving_again(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([["127.0.0.1"]])  # a second lookup would raise StopIteration: rebinding has no chance
    looked_up = _fake_dns(monkeypatch, {"rebind.test": lambda: next(answers)})
    port = server.server_address[1]
    with _fetcher() as fetcher:
        image = fetcher.fetch(f"http://rebind.test:{port}/image")
    assert image.url == f"http://rebind.test:{port}/image"
    assert looked_up == ["rebind.test"]
    assert server.requests[0][1]["Host"] == f"rebind.test:{port}"


def test_redirect_to_a_name_resolving_inside_is_refused(
    server: _Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_dns(monkeypatch, {"internal.test": lambda: ["10.0.0.1"]})
    _refused(f"{server.origin}/redirect?to=http://internal.test/admin", FetchErrorCode.ADDRESS_REFUSED)


def test_redirects_up_to_the_limit(server: _Server) -> None:
    with _fetcher(max_redirects=2) as fetcher:
        assert fetcher.fetch(f"{server.origin}/chain/2").url == f"{server.origin}/chain/0"
    error = _refused(f"{server.origin}/chain/3", FetchErrorCode.TOO_MANY_REDIRECTS, max_redirects=2)
    assert error.http_status == 502
    _refused(f"{server.origin}/chain/1", FetchErrorCode.TOO_MANY_REDIRECTS, max_redirects=0)


def test_redirect_without_location(server: _Server) -> None:
    error = _refused(f"{server.origin}/no-location", FetchErrorCode.FETCH_HTTP_STATUS)
    assert error.upstream_status == 302


def test_body_up_to_max_bytes(server: _Server) -> None:
    with _fetcher(max_bytes=1000) as fetcher:
        assert len(fetcher.fetch(f"{server.origin}/sized/1000").data) == 1000
        assert len(fetcher.fetch(f"{server.origin}/chunked/1000").data) == 1000


@pytest.mark.parametrize("path", ["/sized/1001", "/sized/5000000", "/chunked/1001", "/chunked/200000"])
def test_oversize_body_is_refused(server: _Server, path: str) -> None:
    error = _refused(f"{server.origin}{path}", FetchErrorCode.FETCH_TOO_LARGE, max_bytes=1000)
    assert error.http_status == 413


def test_compressed_body_is_refused(server: _Server) -> None:
    _refused(f"{server.origin}/gzip", FetchErrorCode.FETCH_FAILED)


@pytest.mark.parametrize("path", ["/slow", "/drip"])
def test_deadline_covers_the_whole_fetch(server: _Server, path: str) -> None:
    started = time.monotonic()
    error = _refused(f"{server.origin}{path}", FetchErrorCode.FETCH_TIMEOUT, timeout_s=0.3)
    assert time.monotonic() - started < 1.0
    assert error.http_status == 504


def test_http_error_status(server: _Server) -> None:
    error = _refused(f"{server.origin}/missing", FetchErrorCode.FETCH_HTTP_STATUS)
    assert (error.upstream_status, error.http_status) == (404, 502)


def test_connection_refused_is_fetch_failed() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the fetch: nothing listens there
    error = _refused(f"http://127.0.0.1:{port}/image", FetchErrorCode.FETCH_FAILED)
    assert error.http_status == 502


def test_unresolvable_host_is_fetch_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    _refused("http://nowhere.invalid/cat.jpg", FetchErrorCode.FETCH_FAILED)


def test_error_contract() -> None:
    error = FetchError(FetchErrorCode.FETCH_HTTP_STATUS, "the server answered HTTP 500", upstream_status=500)
    assert isinstance(error, FeedlensError)
    assert error.to_dict() == {"code": "fetch_http_status", "message": "the server answered HTTP 500"}
    statuses = {code.value: code.http_status for code in FetchErrorCode}
    assert statuses == {
        "fetch_disabled": 400,
        "url_invalid": 400,
        "url_scheme_refused": 400,
        "address_refused": 400,
        "too_many_redirects": 502,
        "fetch_timeout": 504,
        "fetch_too_large": 413,
        "fetch_failed": 502,
        "fetch_http_status": 502,
    }
