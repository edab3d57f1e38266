"""Checks and screenshots of the web app's pages in the browser tests (Debian's Chromium, Playwright)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TypedDict

from playwright.sync_api import Page, Route

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = REPO / "test-artifacts" / "screenshots"

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
    .filter((e) => !e.labels.length && !e.getAttribute('aria-label')).map((e) => e.outerHTML)"""
NO_ALT = "() => [...document.querySelectorAll('img')].filter((i) => !i.alt).map((i) => i.outerHTML)"


def accessible(page: Page) -> None:
    """Every form control has a label and every picture alt text."""
    assert page.evaluate(UNLABELLED) == []
    assert page.evaluate(NO_ALT) == []


def shot(page: Page, name: str) -> None:
    """A full-page screenshot to test-artifacts/screenshots/<name>.png."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def console_errors(page: Page) -> list[str]:
    """A list that fills with the page's console errors (failed loads included) from now on."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


# -- issue 23: offline docs, phones, uploads -----------------------------------------------------------------
SIDEWAYS = """() => { const doc = document.documentElement; const width = doc.clientWidth;
    const wide = [...document.body.querySelectorAll('*')].filter((e) => {
        const r = e.getBoundingClientRect(); if (r.width === 0 || r.right <= width + 1) return false;
        for (let p = e.parentElement; p; p = p.parentElement) {  // inside a box that scrolls itself: fine
            if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return false; }
        return true; }).slice(0, 5).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`);
    return { scroll: doc.scrollWidth, width, wide }; }"""


class Sideways(TypedDict):
    scroll: int  # how wide the page scrolls, px
    width: int  # how wide the screen is, px
    wide: list[str]  # up to 5 elements sticking out of the screen (not inside a box that scrolls itself)


def sideways(page: Page) -> Sideways:
    """How far the page scrolls sideways, and what sticks out."""
    found: Sideways = page.evaluate(SIDEWAYS)
    return found


def only_from(page: Page, origin: str) -> list[str]:
    """Abort every request of `page` to anything but `origin` (as if offline); returns the list of the
    aborted URLs, which fills as the page runs."""
    aborted: list[str] = []

    def handle(route: Route) -> None:
        url = route.request.url
        if url.startswith(origin + "/") or url == origin or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            aborted.append(url)
            route.abort("internetdisconnected")

    page.route("**/*", handle)
    return aborted


DROP = """([files]) => { const dt = new DataTransfer();
    for (const f of files) {
        const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
        dt.items.add(new File([bytes], f.name, { type: f.type }));
    }
    return dt; }"""


def drop_files(page: Page, selector: str, files: list[tuple[str, str, bytes]]) -> None:
    """Drag files (name, media type, bytes) over the element at `selector` and drop them there."""
    payload = [{"name": n, "type": t, "data": base64.b64encode(b).decode()} for n, t, b in files]
    transfer = page.evaluate_handle(DROP, [payload])
    for event in ("dragenter", "dragover", "drop"):
        page.dispatch_event(selector, event, {"dataTransfer": transfer})
