"""The audience-insights pages in a real browser (Debian's Chromium, Playwright) against a real `feedlens
serve` that keeps locations (FEEDLENS_STORE_METADATA=all): the insights board, an author page, the map,
the alert list and the recommendations panel, each opened by its address (#/insights, #/author/NAME,
#/places, #/alerts, #/recommend). Screenshots go to test-artifacts/screenshots/insights-*.png."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.server import RELAXED_LIMITS, Launch, Server, Team
from tests.support.api import auth
from tests.support.browser import CHROMIUM, accessible, shot
from tests.support.images import meme

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
NOW = datetime.now(UTC).replace(microsecond=0)
# (file, author, days ago, caption, likes, comments, shares): invented posts about a café brand
POSTS = [
    ("coffee.png", "latte_lena", 12, "Best flat white in town at Brewly ☕😍 #brewly", 2400, 130, 45),
    ("chelsea.png", "catmom", 11, "Miso approves of Brewly's cushions 😺 #brewly #cats", 900, 40, 12),
    (
        "lisbon.jpg",
        "nomad.nik",
        10,
        "Found a Brewly in Lisbon! Not bad at all 👍 #brewly #travel",
        540,
        22,
        8,
    ),
    ("meme.png", "sam_k", 2, "Brewly app lost my order again. Furious. #brewly", 40, 15, 6),
    (
        "rocket.jpg",
        "latte_lena",
        2,
        "Brewly's new blend tastes burnt and bitter. Disappointed. #brewly",
        3100,
        300,
        90,
    ),
    ("flower.jpg", "nomad.nik", 2, "Spring in Porto, what a view! #travel", 880, 22, 30),
    ("astronaut.png", "spacefan", 1, "suited up, so happy! #space", 600, 30, 8),
]


@pytest.fixture(scope="module")
def server(launch: Launch) -> Server:
    """A server of this module's own: locations are kept only under FEEDLENS_STORE_METADATA=all."""
    return launch("insights-web", {**RELAXED_LIMITS, "FEEDLENS_STORE_METADATA": "all"})


def lisbon(source: Path) -> bytes:
    """A phone photo with EXIF GPS 38.7223 N, 9.1393 W."""
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (38.0, 43.0, 20.28), 3: "W", 4: (9.0, 8.0, 21.48)}
    out = io.BytesIO()
    Image.open(source).convert("RGB").save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


@pytest.fixture(scope="module")
def library(server: Server, keys: dict[str, str], sample_dir: Path) -> dict[str, str]:
    """The posts uploaded through the API with their images; a brand, a location, engagements and a rule."""
    files = {p[0]: (sample_dir / p[0]).read_bytes() for p in POSTS if (sample_dir / p[0]).is_file()}
    files["lisbon.jpg"] = lisbon(sample_dir / "chelsea.png")
    files["meme.png"] = meme(("SOMETHING WENT WRONG", "PLEASE TRY AGAIN"))
    write = auth(keys["write"])
    with httpx.Client(base_url=server.url, timeout=300) as client:
        made = client.post("/v1/brands", headers=write, json={"name": "Brewly", "hashtags": ["brewly"]})
        assert made.status_code == 200, made.text

        def store(n: int) -> tuple[str, str]:
            name, author, days, caption, likes, comments, shares = POSTS[n]
            post: dict[str, Any] = {"id": f"w{n}", "platform": "instagram", "author": author}
            post |= {"caption": caption}
            post |= {"created_at": (NOW - timedelta(days=days)).isoformat(), "likes": likes}
            post |= {"comments": comments, "shares": shares}
            r = client.post("/v1/images", headers=write, files={"file": (name, files[name])},
                            data={"post": json.dumps(post)})  # fmt: skip
            assert r.status_code in (200, 201), r.text
            return name, str(r.json()["id"])

        with ThreadPoolExecutor(4) as pool:
            ids = dict(pool.map(store, range(len(POSTS))))
        place = {
            "places": [
                {"platform": "instagram", "post_id": "w5", "name": "Porto", "lat": 41.15, "lon": -8.61}
            ]
        }
        assert client.post("/v1/insights/places", headers=write, json=place).status_code == 200
        engaged = [{"follower": "miso_fan", "platform": "instagram", "post_id": f"w{n}"} for n in (1, 2)]
        assert (
            client.post("/v1/insights/engagements", headers=write, json={"engagements": engaged}).status_code
            == 200
        )
        rule = {
            "name": "Brewly complaints",
            "kind": "brand",
            "value": "Brewly",
            "threshold": 0.5,
            "min_rise": 0.2,
        }
        assert (
            client.post("/v1/insights/alerts/rules", headers=write, json=rule | {"min_posts": 2}).status_code
            == 201
        )
    return ids


def _context(browser: Browser, server: Server, key: str) -> BrowserContext:
    ctx = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    assert ctx.request.post("/v1/session", data={"key": key}).ok
    return ctx


@pytest.fixture(scope="module")
def context(
    browser: Browser, server: Server, keys: dict[str, str], library: dict[str, str]
) -> Iterator[BrowserContext]:
    """The team's read key, logged in through the API."""
    ctx = _context(browser, server, keys["read"])
    yield ctx
    ctx.close()


def test_insights_board(page: Page) -> None:
    page.goto("/#/insights?kind=brand&value=Brewly")
    expect(page.get_by_role("heading", name="Audience insights")).to_be_visible()
    expect(page.locator("#insight-target")).to_contain_text("Brewly")
    expect(page.locator("#insight-latest")).to_be_visible()
    expect(page.locator("#insight-feel canvas")).to_be_visible()
    plotted = page.evaluate(
        "() => Chart.getChart(document.querySelector('#insight-feel canvas')).data.datasets"
        ".slice(0, 3).reduce((n, d) => n + d.data.reduce((a, b) => a + b, 0), 0)"
    )
    assert plotted == 5  # the five posts about Brewly, each with a sentiment
    first = page.locator("#influencers-table tbody tr").first
    expect(first.get_by_role("link")).to_have_text("@latte_lena")  # 2575 + 3490 engagement
    expect(page.locator("#insight-negative")).to_contain_text("burnt and bitter")
    expect(page.locator("#insight-where")).to_contain_text("Open the map")
    accessible(page)
    shot(page, "insights-board")
    first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="@latte_lena")).to_be_visible()


def test_author_page(page: Page) -> None:
    page.goto("/#/author/latte_lena")
    expect(page.get_by_role("heading", name="@latte_lena")).to_be_visible()
    expect(page.locator("#author-summary")).to_contain_text("Posts")
    expect(page.locator("#author-brands-table")).to_contain_text("Brewly")
    expect(page.locator("#author-posts .insight-post")).to_have_count(2)
    expect(page.locator("#author-posts .insight-post").first).to_contain_text(
        "burnt and bitter"
    )  # newest first
    expect(page.locator("#recommendations > li").first).to_be_visible()  # what to show their audience
    accessible(page)
    shot(page, "insights-author")
    page.goto("/#/author/nobody")
    expect(page.get_by_role("alert")).to_contain_text("No post by @nobody")


def test_map_page(page: Page, library: dict[str, str]) -> None:
    page.goto("/#/places")
    expect(page.get_by_role("heading", name="Places")).to_be_visible()
    circles = page.locator("#place-map circle.place")
    expect(circles).to_have_count(2)  # Lisbon (the photo's GPS) and Porto (the feed's location)
    expect(page.locator("#places-table")).to_contain_text("38.7°N 9.1°W")
    expect(page.locator("#places-table")).to_contain_text("Porto")
    accessible(page)
    shot(page, "insights-map")
    page.locator("#place-map a.place-link").first.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#place-images img")).to_have_count(1)
    page.goto("/#/places?view=world")
    expect(circles).to_have_count(2)
    shot(page, "insights-map-world")


def test_alerts_page_for_a_reader(page: Page) -> None:
    page.goto("/#/alerts")
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    expect(page.locator("#rules-list")).to_contain_text("Brewly complaints")
    expect(page.get_by_role("button", name="Check now")).to_have_count(0)  # a read key changes nothing
    expect(page.locator("#rule-form")).to_have_count(0)
    accessible(page)


def test_alerts_page_for_a_writer(
    browser: Browser, server: Server, keys: dict[str, str], library: Any
) -> None:
    ctx = _context(browser, server, keys["write"])
    page = ctx.new_page()
    page.goto("/#/alerts")
    page.get_by_role("button", name="Check now").click()
    expect(page.locator("#alerts-table tbody tr")).to_have_count(1)  # the week of complaints, once
    expect(page.locator("#alerts-table")).to_contain_text("brand brewly")
    page.get_by_role("button", name="Check now").click()
    expect(page.locator("#check-status")).to_contain_text("Nothing new.")
    page.get_by_label("Rule name").fill("Travel mood")
    page.get_by_label("Watch", exact=True).select_option("hashtag")
    page.get_by_label("Name", exact=True).fill("travel")
    page.get_by_role("button", name="Add rule").click()
    expect(page.locator("#rules-list > li")).to_have_count(2)
    page.get_by_role("button", name="Delete rule Travel mood").click()
    expect(page.locator("#rules-list > li")).to_have_count(1)
    accessible(page)
    shot(page, "insights-alerts")
    ctx.close()


def test_bad_input_is_said_on_the_page(
    browser: Browser, server: Server, keys: dict[str, str], library: Any
) -> None:
    ctx = _context(browser, server, keys["write"])
    page = ctx.new_page()
    page.goto("/#/insights?kind=brand&value=Brewlee")  # a typo of the registered brand
    expect(page.locator("#insights-board")).to_contain_text("no brand 'Brewlee'")
    page.goto("/#/alerts")
    page.get_by_label("Rule name").fill("Typo")
    page.get_by_label("Name", exact=True).fill("Brewlee")
    page.get_by_role("button", name="Add rule").click()
    expect(page.get_by_role("alert")).to_contain_text("Not added: no brand 'Brewlee'")
    page.get_by_label("Name", exact=True).fill("Brewly")
    page.get_by_label("Webhook URL (optional)").fill("http://10.0.0.1/hook")  # a private address
    page.get_by_role("button", name="Add rule").click()
    expect(page.get_by_role("alert")).to_contain_text("Not added: webhook")
    expect(page.locator("#rules-list > li")).to_have_count(1)  # nothing was added
    ctx.close()


def test_recommendations_panel(page: Page, library: dict[str, str]) -> None:
    page.goto("/#/recommend?follower=miso_fan")
    expect(page.get_by_role("heading", name="What to show next")).to_be_visible()
    items = page.locator("#recommendations > li")
    expect(items.first).to_be_visible()
    shown = items.evaluate_all("els => els.map(e => e.dataset.id)")
    assert library["chelsea.png"] not in shown and library["lisbon.jpg"] not in shown  # already engaged with
    assert len(shown) == len(set(shown)) == len(POSTS) - 2
    accessible(page)
    shot(page, "insights-recommend")
    page.get_by_label("Follower").fill("nobody")
    page.get_by_role("button", name="Recommend").click()
    expect(page.locator(".insight-recs-box")).to_contain_text("no engaged or posted images")


def test_other_teams_see_none_of_it(
    browser: Browser, server: Server, team: Team, keys: dict[str, str]
) -> None:
    ctx = _context(browser, server, keys["other"])
    page = ctx.new_page()
    page.goto("/#/author/latte_lena")
    expect(page.get_by_role("alert")).to_contain_text("No post by @latte_lena")
    page.goto("/#/insights?kind=hashtag&value=brewly")
    expect(page.locator("#insight-latest")).to_contain_text("No posts about it")
    ctx.close()
