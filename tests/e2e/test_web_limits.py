"""Thumbnails under the API's rate limits (issue 23), in a real browser against a server of this module's
own with tight limits (20 requests at once, one a second, per key) and the review settings of
test_web_review (every sample photo waits for review): a gallery of 150 images shows every thumbnail,
thumbnails never spend the analysis budget, a refused thumbnail is fetched again when Retry-After says, and
the review queue's waiting list shows (blurred) thumbnails."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.e2e.server import Launch, Server, Team
from tests.support.api import auth
from tests.support.browser import CHROMIUM, accessible, shot

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
BURST = 20
LIMITS = {"FEEDLENS_API__BURST": str(BURST), "FEEDLENS_API__RATE_PER_MINUTE": "60"}
REVIEW_ENV = {  # as test_web_review: the sample photos are flagged or uncertain, so they wait for review
    "FEEDLENS_SAFETY_EXPLICIT_THRESHOLD": "0.3",
    "FEEDLENS_REVIEW__MARGIN": "0.4",
    "FEEDLENS_SAFETY_PERSON_EVIDENCE": "false",
}
GALLERY = 150
UPLOADS_PER_KEY = BURST - 2  # each uploading key stays inside its own burst


def tile(i: int) -> bytes:
    """Image i of the gallery: small, and a colour of its own (so a new image to the library)."""
    out = io.BytesIO()
    Image.new("RGB", (48, 36), (i % 256, (i * 7) % 256, 255 - i % 256)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def server(launch: Launch) -> Server:
    """Its own: the tight limits and the review settings are server-wide."""
    return launch("web-limits", {**LIMITS, **REVIEW_ENV, "FEEDLENS_FETCH__ENABLED": "false"})


@pytest.fixture(scope="module")
def gallery(server: Server, team: Team, sample_dir: Path) -> dict[str, list[str]]:
    """Team.a: GALLERY small images (only their colours analysed: quick) and the sample photos (analysed
    in full: they wait for review). Uploaded through the API with as many write keys as the limits ask."""
    ids: dict[str, list[str]] = {"tiles": [], "photos": []}
    with httpx.Client(base_url=server.url, timeout=300) as client:
        key = ""
        for i in range(GALLERY):
            if i % UPLOADS_PER_KEY == 0:
                key = server.key(team.a, "write")
            files = {"file": (f"tile-{i:03d}.png", tile(i))}
            r = client.post("/v1/images", headers=auth(key), files=files, data={"analyzers": "properties"})
            assert r.status_code == 201, r.text
            ids["tiles"].append(r.json()["id"])
        key = server.key(team.a, "write")
        for photo in sorted(sample_dir.iterdir())[:4]:
            r = client.post("/v1/images", headers=auth(key), files={"file": (photo.name, photo.read_bytes())})
            assert r.status_code == 201, r.text
            ids["photos"].append(r.json()["id"])
    return ids


def session(browser: Browser, server: Server, key: str) -> BrowserContext:
    ctx = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    assert ctx.request.post("/v1/session", data={"key": key}).ok
    return ctx


@pytest.fixture
def context(browser: Browser, server: Server, team: Team) -> Iterator[BrowserContext]:
    """A fresh read key per test: each starts with its whole budget."""
    ctx = session(browser, server, server.key(team.a, "read"))
    yield ctx
    ctx.close()


LOADED = """() => [...document.querySelectorAll('#gallery-grid img')].map((i) => i.dataset.thumb === 'loaded'
    && i.complete && i.naturalWidth > 0)"""


def scroll_to_the_end(page: Page, total: int) -> None:
    cards = page.locator("#gallery-grid > li")
    for _ in range(40):
        if cards.count() >= total:
            break
        page.locator("#load-more").scroll_into_view_if_needed()
        page.mouse.wheel(0, 4000)
        page.wait_for_timeout(250)
    expect(cards).to_have_count(total)


def test_a_gallery_of_150_shows_every_thumbnail(page: Page, gallery: dict[str, list[str]]) -> None:
    total = len(gallery["tiles"]) + len(gallery["photos"])
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if r.url.endswith("/thumbnail") else None)
    page.goto("/#/gallery")
    scroll_to_the_end(page, total)
    # every thumbnail loads: lazy ones as they scroll into view, so go back over the page
    for y in range(0, page.evaluate("document.body.scrollHeight"), 600):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(60)
    page.wait_for_function(f"() => ({LOADED})().filter(Boolean).length === {total}", timeout=60_000)
    assert len(statuses) >= total and 429 not in statuses, statuses  # 150 > 20 at once, none refused
    assert page.locator("img.thumb-missing").count() == 0
    accessible(page)


def test_thumbnails_do_not_spend_the_analysis_budget(
    server: Server, team: Team, gallery: dict[str, list[str]]
) -> None:
    key = auth(server.key(team.a, "read"))
    with httpx.Client(base_url=server.url, timeout=60) as client:
        answers = [
            client.get("/v1/images", headers=key, params={"limit": 1}).status_code for _ in range(BURST + 1)
        ]
        assert answers[:BURST] == [200] * BURST and answers[-1] == 429  # the analysis budget is spent...
        started = time.monotonic()
        thumbs = [client.get(f"/v1/images/{i}/thumbnail", headers=key) for i in gallery["tiles"][:100]]
        assert {r.status_code for r in thumbs} == {200}  # ...and thumbnails still load, 100 of them
        # the API budget got back only what time refills meanwhile (a token a second), no more
        refill = int(time.monotonic() - started) + 1
        passed = 0
        while (answer := client.get("/v1/images", headers=key, params={"limit": 1})).status_code == 200:
            passed += 1
            assert passed <= refill + 1, (passed, refill)
        assert answer.status_code == 429 and int(answer.headers["Retry-After"]) >= 1
        # the thumbnails' own bucket is bounded too: ten times the burst, then Retry-After
        more = [
            client.get(f"/v1/images/{gallery['tiles'][0]}/thumbnail", headers=key) for _ in range(10 * BURST)
        ]
        limited = [r for r in more if r.status_code == 429]
        assert limited and int(limited[0].headers["Retry-After"]) >= 1


def test_a_refused_thumbnail_is_fetched_again_after_retry_after(
    page: Page, gallery: dict[str, list[str]]
) -> None:
    """Each thumbnail is refused twice: first with Retry-After 1 (the <img> cannot read it: the page waits
    a second of its own), then with Retry-After 2 (read by the page's own request: it waits that long)."""
    asked: dict[str, list[float]] = {}  # url -> when each request came

    def busy_twice(route: Route) -> None:
        times = asked.setdefault(route.request.url, [])
        times.append(time.monotonic())
        if len(times) <= 2:
            route.fulfill(status=429, headers={"Retry-After": str(len(times))}, json={"code": "rate_limited"})
        else:
            route.continue_()

    page.route("**/v1/images/*/thumbnail", busy_twice)
    page.goto("/#/gallery")
    expect(page.locator("#gallery-grid > li")).to_have_count(24)  # the first page
    shown = "() => [...document.querySelectorAll('#gallery-grid img')].slice(0, 8)"
    page.wait_for_function(
        f"{shown}.every((i) => i.dataset.thumb === 'loaded' && i.naturalWidth > 0)", timeout=30_000
    )
    tried = [t for t in asked.values() if len(t) >= 3]
    assert len(tried) >= 8
    assert min(t[1] - t[0] for t in tried) >= 0.95  # a second at least after the refusal it could not read
    assert min(t[2] - t[1] for t in tried) >= 1.95  # Retry-After: 2 honoured
    assert page.locator("img.thumb-missing").count() == 0


def test_review_queue_lists_blurred_thumbnails(
    browser: Browser, server: Server, team: Team, gallery: dict[str, list[str]]
) -> None:
    ctx = session(browser, server, server.key(team.a, "write"))
    page = ctx.new_page()
    page.goto("/#/review")
    entries = page.locator("#review-list > li")
    expect(entries.first).to_be_visible()
    expect(entries.locator("img.queue-thumb")).to_have_count(entries.count())
    page.wait_for_function(
        "() => [...document.querySelectorAll('#review-list img')]"
        ".every((i) => i.complete && i.naturalWidth > 0)"
    )
    assert "blur" in entries.first.locator("img").evaluate("(i) => getComputedStyle(i).filter")
    expect(page.locator("#review-calibration")).to_contain_text("Today an image is flagged when its risk is")
    accessible(page)
    shot(page, "review-thumbnails")
    # approving several from the gallery: those waiting are approved, and leave the queue
    waiting = entries.count()
    page.goto("/#/gallery")
    for image_id in gallery["photos"][:2]:
        page.locator(f"#select-{image_id}").check()
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#bulk-status")).to_contain_text("Approved 2 images waiting for review.")
    page.goto("/#/review")
    expect(entries).to_have_count(waiting - 2)
    ctx.close()
