"""What the web module serves without a browser (issue 23): the API docs pages at /docs and /redoc name
nothing outside this server and say so in their Content-Security-Policy, the npm bundles they use come
from src/feedlens/web/node_modules (`make setup`), and thumbnails spend a rate bucket of their own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from feedlens.api.app import create_app
from feedlens.api.web import MODULES, REWRITES, VENDOR
from feedlens.config import Settings
from feedlens.services.access import VIEWS_FACTOR, Bucket, RateLimiter

BUNDLES_INSTALLED = all(path.is_file() for path, _ in VENDOR.values())
needs_bundles = pytest.mark.skipif(not BUNDLES_INSTALLED, reason=f"npm packages missing in {MODULES}")
# src, href and url(...) values in a page: where the browser would go
ADDRESS = re.compile(r"""(?:src|href)=["']([^"']+)["']|url\(["']?([^"')]+)""")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app without its lifespan: no model loads; the docs and static routes need none."""
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("web")))
    yield TestClient(app, base_url="http://127.0.0.1:8000")


@pytest.mark.parametrize(
    ("path", "bundle"), [("/docs", "/vendor/swagger-ui.js"), ("/redoc", "/vendor/redoc.js")]
)
def test_docs_pages_load_only_from_this_server(client: TestClient, path: str, bundle: str) -> None:
    page = client.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self';" in policy
    assert "http" not in policy  # no other origin is allowed, so none could be reached
    addresses = [a or b for a, b in ADDRESS.findall(page.text)]
    assert bundle in addresses
    outside = [a for a in addresses if not (a.startswith("/") or a.startswith("data:"))]
    assert outside == [], outside
    for address in addresses:
        if address.startswith(("/static/", "/vendor/")) and BUNDLES_INSTALLED:
            assert client.get(address).status_code == 200, address


def test_fastapis_own_cdn_pages_are_gone(client: TestClient) -> None:
    assert client.get("/docs/oauth2-redirect").status_code == 404
    for path in ("/docs", "/redoc"):
        assert "cdn.jsdelivr.net" not in client.get(path).text


@needs_bundles
def test_vendored_bundles_are_served_from_node_modules(client: TestClient) -> None:
    for name, (path, media_type) in VENDOR.items():
        answer = client.get(f"/vendor/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(media_type), name
        if name not in REWRITES:
            assert answer.content == path.read_bytes(), name
    redoc = client.get("/vendor/redoc.js").content
    assert REWRITES["redoc.js"][0] not in redoc and len(redoc) > 500_000  # the logo's CDN address, emptied


def test_an_unknown_vendor_file_is_a_404(client: TestClient) -> None:
    answer = client.get("/vendor/../../pyproject.toml")
    assert answer.status_code == 404
    assert client.get("/vendor/left-pad.js").json()["code"] == "not_found"


def test_the_npm_packages_are_pinned_by_the_lockfile() -> None:
    web = Path(MODULES).parent
    package = (web / "package.json").read_text()
    lock = (web / "package-lock.json").read_text()
    for name in ("chart.js", "swagger-ui-dist", "redoc"):
        pinned = re.search(rf'"{re.escape(name)}": "(\d+\.\d+\.\d+)"', package)
        assert pinned, name  # an exact version, no range
        assert f'"node_modules/{name}": {{\n      "version": "{pinned.group(1)}"' in lock, name
    assert "ignore-scripts=true" in (web / ".npmrc").read_text()  # no install script runs


def test_thumbnails_spend_a_bucket_of_their_own() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    assert [limiter.take(1) for _ in range(2)] == [0.0, 0.0]
    assert limiter.take(1) > 0  # the API budget is spent...
    views = [limiter.take(1, Bucket.VIEWS) for _ in range(2 * VIEWS_FACTOR + 1)]
    assert views[:-1] == [0.0] * (2 * VIEWS_FACTOR)  # ...thumbnails still pass, ten times the burst
    assert views[-1] == pytest.approx(1 / VIEWS_FACTOR)  # and refill ten times as fast
    now[0] += 0.1
    assert limiter.take(1, Bucket.VIEWS) == 0.0
    assert limiter.take(1) > 0  # which gave the API budget nothing
