"""The web app in a real browser (Debian's Chromium, headless, driven by Playwright) against a real
`feedlens serve` (the e2e shared one) holding the sample photos and their posts in this module's
workspaces (tests/e2e/webdemo.py). Screenshots of each page go to test-artifacts/screenshots/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from feedlens.api import session as sessions
from tests.e2e.webdemo import LOGO, MEME, MIRROR, Demo
from tests.support.api import auth
from tests.support.browser import CHROMIUM, accessible, shot

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def context(browser: Browser, demo: Demo) -> Iterator[BrowserContext]:
    """A browser logged in as the team's read key (through the API: the login form has its own test)."""
    ctx = browser.new_context(base_url=demo.server.url, viewport={"width": 1280, "height": 900})
    assert ctx.request.post("/v1/session", data={"key": demo.keys["read"]}).ok
    yield ctx
    ctx.close()


# -- journeys in the browser -------------------------------------------------------------------------------
def test_log_in_and_out(browser: Browser, demo: Demo) -> None:
    ctx = browser.new_context(base_url=demo.server.url, viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto("/")
    expect(page.get_by_role("heading", name="Log in to feedlens")).to_be_visible()
    accessible(page)
    expect(page.get_by_label("API key")).to_be_focused()
    shot(page, "login")
    page.get_by_label("API key").fill("fl_not-a-key")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
    page.get_by_label("API key").fill(demo.keys["read"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Gallery")).to_be_visible()
    expect(page.locator("#who")).to_contain_text(demo.team.a)
    expect(page.locator("#gallery-grid > li")).to_have_count(len(demo.ids))
    shot(page, "gallery")
    # keyboard order: skip link, then the navigation, then the page's filters
    page.get_by_role("link", name="Skip to content").focus()
    assert page.evaluate("() => document.activeElement.getBoundingClientRect().left >= 0")  # shown on focus
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="feedlens")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Gallery", exact=True)).to_be_focused()
    page.get_by_role("link", name="Skip to content").focus()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Category")).to_be_focused()
    cookie = next(c for c in ctx.cookies() if c["name"] == sessions.COOKIE)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in to feedlens")).to_be_visible()
    assert ctx.request.get("/v1/session").status == 401
    page.goto("/#/search?q=coffee")  # a bookmark opened while logged out: it opens after logging in
    page.get_by_label("API key").fill(demo.keys["read"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Search")).to_be_visible()
    expect(page.get_by_label("Words")).to_have_value("coffee")
    ctx.close()


def test_filter_the_gallery(page: Page, demo: Demo) -> None:
    page.goto("/#/gallery")
    page.get_by_label("Hashtag").fill("latte")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(f"{demo.server.url}/#/gallery?hashtag=latte")
    cards = page.locator("#gallery-grid > li")
    expect(cards).to_have_count(1)
    expect(cards.first.locator("a")).to_have_attribute("href", f"#/image/{demo.ids['coffee.png']}")
    page.get_by_label("Hashtag").fill("")
    page.get_by_label("Author").fill("nasa")
    page.get_by_label("Platform").fill("x")
    page.get_by_role("button", name="Apply filters").click()
    expect(cards).to_have_count(2)
    accessible(page)
    shot(page, "gallery-filtered")
    hrefs = {cards.nth(i).locator("a").get_attribute("href") for i in range(2)}
    assert hrefs == {f"#/image/{demo.ids[n]}" for n in ("astronaut.png", "rocket.jpg")}
    # paging: 5 a page, the next one loading as the end of the list scrolls into view
    pages: list[str] = []
    page.on("request", lambda r: pages.append(r.url) if "/v1/images?" in r.url else None)
    page.goto("/#/gallery?limit=5")
    for _ in range(10):
        if cards.count() == len(demo.ids):
            break
        page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(200)
    expect(cards).to_have_count(len(demo.ids))
    expect(page.locator("#load-more")).to_be_hidden()  # no next_cursor after the last page
    assert len(pages) == 3 and all("cursor=" in url for url in pages[1:])
    shown = cards.locator("a.image-link").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert sorted(shown) == sorted(f"#/image/{i}" for i in demo.ids.values())  # each once
    page.goto("/#/gallery?safety=explicit")
    expect(page.get_by_text("No images match these filters.")).to_be_visible()
    expect(page.get_by_label("Safety verdict")).to_have_value("explicit")


def test_image_page_draws_regions(page: Page, demo: Demo) -> None:
    image_id = demo.ids["astronaut.png"]
    view = httpx.get(f"{demo.server.url}/v1/images/{image_id}", headers=auth(demo.keys["read"])).json()
    faces = view["results"]["faces"]["faces"]
    lines = view["results"]["text"]["lines"]
    unsafe = view["results"]["safety"]["regions"]
    assert faces, "the astronaut's face is found"
    page.goto("/#/gallery?author=nasa")
    page.locator(f'a[href="#/image/{image_id}"]').click()
    expect(page.locator("#image-main")).to_be_visible()
    expect(page.locator(".region-faces")).to_have_count(len(faces))
    expect(page.locator(".region-text")).to_have_count(len(lines))
    expect(page.locator(".region-unsafe")).to_have_count(len(unsafe))
    expect(page.locator(".region-faces .region-label").first).to_contain_text(
        f"face: {faces[0]['dominant_emotion']}"
    )
    # the face box sits where the result says, on the drawn picture
    frame = page.locator("#image-frame").bounding_box()
    box = page.locator(".region-faces").first.bounding_box()
    assert frame and box
    assert abs((box["x"] - frame["x"]) / frame["width"] - faces[0]["box"]["x0"]) < 0.02
    assert abs((box["y"] - frame["y"]) / frame["height"] - faces[0]["box"]["y0"]) < 0.02
    expect(page.get_by_role("heading", name="Posts")).to_be_visible()
    expect(page.get_by_text("@nasa")).to_be_visible()
    accessible(page)
    shot(page, "image")
    page.get_by_label("Faces (").uncheck()
    expect(page.locator(".region-faces").first).to_be_hidden()


def test_image_page_draws_text_lines(page: Page, demo: Demo) -> None:
    image_id = demo.ids[MEME]
    view = httpx.get(f"{demo.server.url}/v1/images/{image_id}", headers=auth(demo.keys["read"])).json()
    lines = view["results"]["text"]["lines"]
    assert lines and "FINALLY" in view["results"]["text"]["full_text"].upper()
    page.goto(f"/#/image/{image_id}")
    expect(page.locator(".region-text")).to_have_count(len(lines))
    expect(page.locator(".region-text .region-label").first).to_contain_text(f"text: {lines[0]['text']}")
    expect(page.get_by_role("region", name="Text")).to_contain_text(view["results"]["text"]["full_text"])
    shot(page, "image-text")


def test_image_page_draws_logos(page: Page, demo: Demo) -> None:
    view = httpx.get(f"{demo.server.url}/v1/images/{demo.ids[LOGO]}", headers=auth(demo.keys["read"])).json()
    quads = [e["quad"] for m in view["results"]["brands"]["mentions"] for e in m["evidence"] if e.get("quad")]
    assert quads, "the pasted logo is found"
    page.goto(f"/#/image/{demo.ids[LOGO]}")
    polygons = page.locator("svg.quads polygon")
    expect(polygons).to_have_count(len(quads))
    expect(polygons.first.locator("title")).to_have_text(re.compile(r"logo: Brewly"))
    expect(page.get_by_label("Logos (")).to_have_accessible_name(f"Logos ({len(quads)})")
    expect(page.get_by_role("region", name="Brands")).to_contain_text("Brewly")
    shot(page, "image-logo")


def test_image_page_duplicates_and_more_like_this(page: Page, demo: Demo) -> None:
    page.goto(f"/#/image/{demo.ids['chelsea.png']}")
    mirror = f'a[href="#/image/{demo.ids[MIRROR]}"]'
    expect(page.locator(f"#similar-grid {mirror}")).to_be_visible()  # more like this: the mirrored copy
    expect(page.locator("#similar-grid .score").first).to_have_text(re.compile(r"score [01]\.\d\d"))
    duplicates = page.get_by_role("region", name="Duplicates")
    expect(duplicates).to_contain_text("Near duplicates")
    near = duplicates.get_by_role("link", name=f"near duplicate {demo.ids[MIRROR][:8]}")
    expect(near).to_have_attribute("href", f"#/image/{demo.ids[MIRROR]}")
    shot(page, "image-duplicates")


def test_search_by_words_and_by_image(page: Page, demo: Demo, sample_dir: Path) -> None:
    page.goto("/#/search")
    page.get_by_label("Words").fill("coffee")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#cutoff")).to_contain_text("Relevance cut-off: score ≥ 0.")
    first = page.locator("#search-grid > li").first
    expect(first.locator("a")).to_have_attribute("href", f"#/image/{demo.ids['coffee.png']}")
    expect(first.locator(".score")).to_contain_text("score 0.")
    accessible(page)
    shot(page, "search")
    page.get_by_label("Example image").set_input_files(str(sample_dir / "chelsea.png"))
    expect(page.locator("#cutoff")).to_contain_text("for images like chelsea.png")
    hrefs = page.locator("#search-grid > li a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )
    assert f"#/image/{demo.ids['chelsea.png']}" in hrefs and f"#/image/{demo.ids[MIRROR]}" in hrefs


def test_trend_charts_have_data(page: Page, demo: Demo) -> None:
    page.goto("/#/trends")
    canvas = page.locator("#chart-categories canvas")
    expect(canvas).to_be_visible()
    plotted = page.evaluate(
        "() => Chart.getChart(document.querySelector('#chart-categories canvas'))"
        ".data.datasets.reduce((n, d) => n + d.data.reduce((a, b) => a + b, 0), 0)"
    )
    api = httpx.get(f"{demo.server.url}/v1/analytics/categories", headers=auth(demo.keys["read"])).json()
    assert plotted == sum(r["images"] for r in api["rows"]) > 0
    expect(page.locator("#chart-hashtags canvas")).to_be_visible()
    expect(page.locator("#chart-engagement-category canvas")).to_be_visible()
    csv = page.locator("#chart-categories a.csv-link").get_attribute("href")
    assert csv and "format=csv" in csv and page.request.get(csv).text().startswith("period,category,images")
    page.get_by_label("Time step").select_option("week")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(f"{demo.server.url}/#/trends?bucket=week&kind=headline")
    expect(page.locator("#chart-categories canvas")).to_be_visible()
    accessible(page)
    shot(page, "trends")


def test_other_workspaces_stay_invisible(page: Page, demo: Demo) -> None:
    page.goto(f"/#/image/{demo.foreign}")
    expect(page.get_by_role("alert")).to_contain_text("No such image in this workspace")
    page.goto("/#/gallery?author=mallory")
    expect(page.get_by_text("No images match these filters.")).to_be_visible()
    for path, title in (
        ("review", "Moderation review queue"),
        ("labelling", "Labelling queue"),
        ("models", "Models"),
    ):
        page.goto(f"/#/{path}")
        expect(page.get_by_role("heading", name=title)).to_be_visible()
        expect(
            page.get_by_role("link", name=title.split()[0] if path != "review" else "Review queue")
        ).to_have_attribute("aria-current", "page")
