"""Checks and screenshots of the web app's pages in the browser tests (Debian's Chromium, Playwright)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

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
