"""The People page in a real browser on the demo library: it explains how to switch face identity on while
it is off, then finds, names, shows and forgets people."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from feedlens.services.factory import Services
from tests.e2e.webdemo import Demo
from tests.support.browser import CHROMIUM, accessible, shot
from tests.support.face_identity import switch_on

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def context(browser: Browser, demo: Demo) -> Iterator[BrowserContext]:
    """Logged in with the team's write key: finding and naming people changes the library."""
    ctx = browser.new_context(base_url=demo.server.url, viewport={"width": 1280, "height": 900})
    assert ctx.request.post("/v1/session", data={"key": demo.keys["write"]}).ok
    yield ctx
    ctx.close()


def test_people_page(page: Page, demo: Demo, services: Services) -> None:
    page.goto("/#/people")
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    expect(page.locator("#people-off")).to_contain_text(f"feedlens faces identity on -w {demo.team.a}")
    expect(page.get_by_role("link", name="People")).to_have_attribute("aria-current", "page")

    switch_on(demo.server, services, demo.team.a)
    page.reload()
    page.get_by_role("button", name="Find people in new photos").click()
    expect(page.get_by_role("status")).to_contain_text("faces added", timeout=120_000)
    cards = page.locator("li.person")
    expect(cards.first).to_be_visible()
    assert cards.count() >= 2  # the astronaut and Grace Hopper at least
    accessible(page)
    shot(page, "people")

    first = cards.first
    first.get_by_role("textbox").fill("Eileen Collins")
    first.get_by_role("button", name="Save name").click()
    expect(page.locator("li.person strong", has_text="Eileen Collins")).to_have_count(1)
    page.get_by_role("link", name="Eileen Collins").click()
    expect(page.get_by_role("link", name="All people")).to_be_visible()
    expect(page.get_by_role("img", name="A photo of this person").first).to_be_visible()

    page.goto("/#/people")
    page.once("dialog", lambda dialog: dialog.accept())
    person = page.locator("li.person", has_text="Eileen Collins")
    person.get_by_role("button", name="Forget this person").click()
    expect(page.locator("li.person", has_text="Eileen Collins")).to_have_count(0)
