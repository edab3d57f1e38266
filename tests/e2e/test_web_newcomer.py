"""What a new user meets in the first hour (issue 23), in a real browser (Debian's Chromium, Playwright)
against the e2e shared `feedlens serve` holding the web demo library (tests/e2e/webdemo.py): the API docs
with the network cut off, adding images by choosing and by dropping them, acting on many images at once,
and every page on a phone's screen. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page, Route, ViewportSize, expect

from tests.e2e.webdemo import Demo
from tests.support.api import auth
from tests.support.browser import CHROMIUM, accessible, drop_files, only_from, shot, sideways

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
PHONE: ViewportSize = {"width": 390, "height": 844}
LAPTOP: ViewportSize = {"width": 1280, "height": 900}


def payload(name: str, data: bytes) -> FilePayload:
    return {"name": name, "mimeType": "image/png", "buffer": data}


def png(colour: tuple[int, int, int], size: tuple[int, int] = (96, 72)) -> bytes:
    """A small plain picture; a colour of its own makes it a new image to the library."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def logged_in(browser: Browser, demo: Demo, scope: str, viewport: ViewportSize) -> BrowserContext:
    ctx = browser.new_context(base_url=demo.server.url, viewport=viewport)
    assert ctx.request.post("/v1/session", data={"key": demo.keys[scope]}).ok
    return ctx


@pytest.fixture(scope="module")
def context(browser: Browser, demo: Demo) -> Iterator[BrowserContext]:
    """A laptop-sized browser logged in with the team's write key (it may add, label and delete)."""
    ctx = logged_in(browser, demo, "write", LAPTOP)
    yield ctx
    ctx.close()


# -- the API docs, offline -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "ready"), [("/docs", ".swagger-ui .opblock"), ("/redoc", "[role=menuitem]")]
)
def test_api_docs_render_with_the_network_cut_off(page: Page, demo: Demo, path: str, ready: str) -> None:
    aborted = only_from(page, demo.server.url)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(path)
    expect(page.locator(ready).first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("/v1/images/{image_id}/thumbnail").first).to_be_attached()
    assert page.locator(ready).count() > 20  # every route, not an error box
    assert aborted == [], f"{path} tried to load from outside the server: {aborted}"
    assert errors == []
    policy = httpx.get(f"{demo.server.url}{path}").headers["content-security-policy"]
    assert "default-src 'self'" in policy and "http" not in policy  # nothing elsewhere is even allowed
    shot(page, f"docs{path.replace('/', '-')}")


# -- adding images -------------------------------------------------------------------------------------------
def test_add_images_by_choosing_and_dropping(page: Page, demo: Demo, client: httpx.Client) -> None:
    page.goto("/#/gallery")
    cards = page.locator("#gallery-grid > li")
    expect(cards).to_have_count(len(demo.ids))
    accessible(page)
    chosen = [("red.png", png((200, 20, 40))), ("green.png", png((20, 160, 60)))]
    page.get_by_label("Images to add").set_input_files([payload(n, b) for n, b in chosen])
    drop_files(page, "#gallery-grid", [("blue.png", "image/png", png((30, 60, 200)))])
    expect(page.locator("#upload-status")).to_have_text("3 added.", timeout=120_000)
    expect(page.locator("#upload-list > li")).to_have_count(3)
    assert page.locator("#upload-list progress").evaluate_all("bars => bars.map((b) => b.value)") == [100] * 3
    expect(cards).to_have_count(len(demo.ids) + 3)  # shown at once, newest first
    listed = client.get("/v1/images", headers=auth(demo.keys["read"]), params={"limit": 200}).json()["items"]
    added = {i["id"] for i in listed if i["source"] in ("red.png", "green.png", "blue.png")}
    assert len(added) == 3
    assert set(cards.evaluate_all("cards => cards.slice(0, 3).map((c) => c.dataset.id)")) == added
    # the same file again is recognised, not stored twice
    page.get_by_label("Images to add").set_input_files([payload("red-again.png", chosen[0][1])])
    expect(page.locator("#upload-status")).to_have_text("3 added, 1 already in the library.", timeout=60_000)
    expect(cards).to_have_count(len(demo.ids) + 3)
    shot(page, "gallery-upload")


def test_a_read_key_is_told_why_it_cannot_add_or_change(browser: Browser, demo: Demo) -> None:
    ctx = logged_in(browser, demo, "read", LAPTOP)
    page = ctx.new_page()
    page.goto("/#/gallery")
    expect(page.get_by_label("Images to add")).to_be_disabled()
    expect(page.locator("#upload-help")).to_contain_text("needs a key of scope write")
    page.locator(f"#select-{demo.ids['coffee.png']}").check()
    expect(page.get_by_role("button", name="Export CSV")).to_be_enabled()
    expect(page.get_by_role("button", name="Delete…")).to_be_disabled()
    ctx.close()


# -- many images at once -------------------------------------------------------------------------------------
def test_bulk_label_export_approve_and_delete(page: Page, demo: Demo, client: httpx.Client) -> None:
    read = auth(demo.keys["read"])
    spare = client.post(
        "/v1/images", headers=auth(demo.keys["write"]), files={"file": ("spare.png", png((250, 240, 10)))}
    ).json()["id"]
    chosen = [demo.ids["coffee.png"], demo.ids["chelsea.png"]]
    page.goto("/#/gallery")
    expect(page.locator(f"#select-{spare}")).to_be_visible()
    for image_id in chosen:
        page.locator(f"#select-{image_id}").check()
    expect(page.locator("#selected-count")).to_have_text("2 selected")
    expect(page.locator(".image-card.is-selected")).to_have_count(2)
    category = client.get("/v1/categories", headers=read).json()["categories"][0]["name"]
    page.get_by_label("Label selected as").select_option(category)
    page.get_by_role("button", name="Label", exact=True).click()
    expect(page.locator("#bulk-status")).to_have_text(f"Labelled 2 images as {category}.")
    for image_id in chosen:
        labels = client.get(f"/v1/images/{image_id}/labels", headers=read).json()
        assert category in json.dumps(labels), labels

    with page.expect_download() as got:
        page.get_by_role("button", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(got.value.path().read_text())))
    assert sorted(r["id"] for r in rows) == sorted(chosen)
    coffee = next(r for r in rows if r["id"] == demo.ids["coffee.png"])
    assert coffee["authors"] == "alice" and "latte" in coffee["hashtags"] and coffee["labels"]
    with page.expect_download() as got:
        page.get_by_role("button", name="Export JSON").click()
    exported = json.loads(got.value.path().read_text())
    assert sorted(i["id"] for i in exported) == sorted(chosen) and all("results" in i for i in exported)

    # approving: images not waiting for review are said to be so, nothing fails
    page.get_by_role("button", name="Approve").click()
    expect(page.locator("#bulk-status")).to_contain_text("Approved")
    expect(page.locator("#bulk-status")).not_to_contain_text("failed")

    page.get_by_role("button", name="Clear selection").click()
    expect(page.locator("#selected-count")).to_have_text("None selected")
    page.locator(f"#select-{spare}").check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete…").click()
    expect(page.locator("#bulk-status")).to_have_text("Deleted 1 image.")
    expect(page.locator(f"#select-{spare}")).to_have_count(0)
    assert client.get(f"/v1/images/{spare}", headers=read).status_code == 404
    accessible(page)


# -- the models page ---------------------------------------------------------------------------------------
def version(number: int, accuracy: float, aliases: list[str]) -> dict[str, object]:
    """A registry entry as GET /v1/models lists it."""
    return {
        "version": number, "aliases": aliases, "mode": "probe",
        "classes": ["animals & pets", "food & drink", "vehicles"],
        "metrics": {"accuracy": accuracy, "macro_f1": accuracy, "ece": 0.1, "n": 12}, "runtime": "onnx fp32",
        "compression": {"kept": False, "speedup": 1.1, "fp32_bytes": 5_000_000, "int8_bytes": 1_400_000,
                        "accuracy_change_points": -3.0},
        "warnings": ["few test images"], "created_at": "2026-11-20T10:00:00Z", "created_by": "key:1",
    }  # fmt: skip


# production v2 gets nothing right; v1 was production before it, v3 is a new candidate
REGISTRY = {
    "task": "categories", "production": 2, "models": [version(3, 0.8, []), version(2, 0.0, ["production"]),
                                                      version(1, 0.7, [])],
    "ab": {"mode": "off", "share": 0.0, "production": None, "candidate": None, "paired": None},
}  # fmt: skip
HISTORY = {"events": [{"action": "promote", "version": 1}, {"action": "promote", "version": 2}]}


@pytest.mark.parametrize("scope", ["write", "admin"])
def test_models_page_shows_only_what_the_key_may_do(browser: Browser, demo: Demo, scope: str) -> None:
    """The registry is the API's answer as it would be (routed): the buttons and the alarm are the page's."""
    ctx = logged_in(browser, demo, scope, LAPTOP)
    page = ctx.new_page()
    page.route("**/v1/models", lambda route: route.fulfill(json=REGISTRY))
    page.route("**/v1/models/history", lambda route: route.fulfill(json=HISTORY))
    page.goto("/#/models")
    expect(page.locator("#production")).to_have_text("Production: v2.")
    alarm = page.get_by_role("alert")
    expect(alarm).to_contain_text("Production model v2 gets 0.0% of its test images right")
    expect(alarm).to_contain_text("no better than guessing")
    promote = page.get_by_role("button", name="Promote v3")
    rollback = page.get_by_role("button", name="Roll back production to v1")
    if scope == "admin":
        expect(promote).to_be_visible()
        expect(rollback).to_be_visible()
        expect(page.get_by_role("button", name="Apply A/B settings")).to_be_visible()
    else:
        expect(page.locator("#admin-note")).to_contain_text("need an admin key; this one is write")
        # "A.B", not "A/B": a "/" would end the regex inside Playwright's selector
        offered = page.get_by_role("button", name=re.compile("Promote|Roll back|Apply A.B"))
        expect(offered).to_have_count(0)
    accessible(page)
    ctx.close()


def test_no_rollback_is_offered_without_an_earlier_model(browser: Browser, demo: Demo) -> None:
    ctx = logged_in(browser, demo, "admin", LAPTOP)
    tab = ctx.new_page()
    tab.route("**/v1/models/history", lambda route: route.fulfill(json={"events": HISTORY["events"][:1]}))
    tab.route("**/v1/models", lambda route: route.fulfill(json=REGISTRY))
    tab.goto("/#/models")
    expect(tab.get_by_role("button", name="Promote v3")).to_be_visible()
    expect(tab.get_by_role("button", name=re.compile("Roll back"))).to_have_count(0)  # it would be a 409
    ctx.close()


def test_without_a_trained_model_the_page_promises_only_what_happens(
    browser: Browser, demo: Demo, client: httpx.Client
) -> None:
    """The real registry of the demo workspace: nothing trained. The page says images are still sorted by
    the built-in rules (they are), offers no rollback (the API would answer 409) and raises no alarm."""
    admin = auth(demo.keys["admin"])
    assert client.get("/v1/models", headers=admin).json()["production"] is None
    assert client.post("/v1/models/rollback", headers=admin).status_code == 409
    image = client.get(f"/v1/images/{demo.ids['coffee.png']}", headers=admin).json()
    assert "categories" in image["results"]  # sorted into categories all the same
    ctx = logged_in(browser, demo, "admin", LAPTOP)
    tab = ctx.new_page()
    tab.goto("/#/models")
    expect(tab.locator("#production")).to_have_text(
        "No production model yet: new images get their categories from the built-in rules, "
        "without a trained model."
    )
    expect(tab.get_by_role("button", name=re.compile("Roll back"))).to_have_count(0)
    expect(tab.locator("#production-alarm")).to_have_count(0)
    ctx.close()


# -- a phone -------------------------------------------------------------------------------------------------
def test_every_page_fits_a_phone(browser: Browser, demo: Demo) -> None:
    ctx = logged_in(browser, demo, "write", PHONE)
    page = ctx.new_page()
    pages = {
        "gallery": "Gallery",
        "search?q=coffee": "Search",
        "trends": "Trends",
        "review": "Moderation review queue",
        "labelling": "Labelling queue",
        "models": "Models",
        f"image/{demo.ids['chelsea.png']}": None,
    }
    page.route("**/v1/models", lambda route: route.fulfill(json=REGISTRY))  # a wide versions table
    page.route("**/v1/models/history", lambda route: route.fulfill(json=HISTORY))
    for path, heading in pages.items():
        page.goto(f"/#/{path}")
        expect(page.locator("main h1")).to_be_visible()
        if heading:
            expect(page.locator("main h1")).to_have_text(heading)
        page.wait_for_load_state("networkidle")
        expect(page.get_by_text("Loading…")).to_have_count(0)
        found = sideways(page)
        assert found["scroll"] <= found["width"] and found["wide"] == [], (path, found)
        top = page.locator("#top").bounding_box()
        assert top and top["height"] < 80, (path, top)  # one row: the name and "Menu"
        shot(page, f"phone-{path.split('?')[0].split('/')[0]}")

    page.goto("/#/gallery")
    expect(page.locator("#nav")).to_be_hidden()
    menu = page.get_by_role("button", name="Menu")
    expect(menu).to_have_attribute("aria-expanded", "false")
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    page.get_by_role("link", name="Trends").click()
    expect(page.locator("main h1")).to_have_text("Trends")
    expect(menu).to_have_attribute("aria-expanded", "false")  # choosing a page folds it again
    # the gallery's filters are folded: the first images are on the first screen
    page.goto("/#/gallery")
    expect(page.locator("#filter-box")).not_to_have_attribute("open", "")
    first = page.locator("#gallery-grid > li").first.bounding_box()
    assert first and first["y"] < PHONE["height"] - 100
    page.locator("#filter-box > summary").click()
    expect(page.get_by_label("Hashtag")).to_be_visible()
    for path in ("/docs", "/redoc"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        found = sideways(page)
        assert found["scroll"] <= found["width"], (path, found)
    ctx.close()


# -- trends --------------------------------------------------------------------------------------------------
COLOURS = """(id) => { const chart = Chart.getChart(document.querySelector(`#chart-${id} canvas`));
    return Object.fromEntries(chart.data.datasets.map((d) => [d.label, d.backgroundColor])); }"""
DRAWN = """(id) => { const canvas = document.querySelector(`#chart-${id} canvas`);
    const chart = canvas && Chart.getChart(canvas); return !!(chart && chart.data.datasets.length); }"""
TAGS = [{"hashtag": f"tag{i:02d}", "posts": 60 - i} for i in range(40)]
HASHTAGS = {"columns": ["hashtag", "posts"], "rows": TAGS}


def test_trends_write_every_hashtag_and_keep_each_category_colour(page: Page, demo: Demo) -> None:
    """40 hashtags (the API's answer, routed) are all written; a category has one colour in every chart,
    in another time step and with its rows in another order."""
    page.route("**/v1/analytics/hashtags*", lambda route: route.fulfill(json=HASHTAGS))
    page.goto("/#/trends")
    expect(page.locator("#chart-hashtags canvas")).to_be_visible()
    written = page.evaluate(
        "() => Chart.getChart(document.querySelector('#chart-hashtags canvas')).scales.y.ticks.length"
    )
    assert written == len(TAGS)  # no label skipped
    for chart in ("categories", "engagement-category"):  # each chart draws when its own answer arrives
        page.wait_for_function(DRAWN, arg=chart)
    per_day = page.evaluate(COLOURS, "categories")
    engagement = page.evaluate(COLOURS, "engagement-category")
    assert per_day and engagement
    assert all(engagement[name] == per_day[name] for name in engagement.keys() & per_day.keys())
    assert len(set(per_day.values())) == len(per_day)  # categories told apart

    # another visit: the rows come in another order, the colours stay
    def reversed_rows(route: Route) -> None:
        body = route.fetch().json()
        route.fulfill(json={**body, "rows": body["rows"][::-1]})

    page.route("**/v1/analytics/categories*", reversed_rows)
    page.get_by_label("Time step").select_option("week")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile("bucket=week"))
    expect(page.locator("#chart-categories canvas")).to_be_visible()
    page.wait_for_function(DRAWN, arg="categories")
    assert page.evaluate(COLOURS, "categories") == per_day
    shot(page, "trends-colours")
