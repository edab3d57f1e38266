"""The image page's overlay in a real browser (Debian's Chromium, headless, driven by Playwright) against
the e2e shared `feedlens serve`: object boxes named in everyday words, people's skeletons from the pose
result, the legend's toggles, the "in the picture" list, and pictures with nothing (or no results) to draw.

The module stores only the three photos it needs (not the whole web demo library) to stay fast."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.e2e.server import Server
from tests.support.api import auth, store
from tests.support.browser import CHROMIUM, accessible, console_errors, shot

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")

PEOPLE = ("astronaut.png", "grace_hopper.jpg")  # a person box and a pose each (docs: shared/MODELS.md)
EMPTY = "flower.jpg"  # no object, nobody
MIN_KEYPOINT = 0.3  # joints drawn at this score and up (js/pages/image-overlay.js)
BONES = (
    ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear"),
    ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"), ("left_hip", "right_hip"), ("left_hip", "left_knee"),
    ("left_knee", "left_ankle"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
)  # fmt: skip
# (left, top, right, bottom) in CSS pixels of every element matching a selector
RECTS = """sel => [...document.querySelectorAll(sel)].map((e) => {
    const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"""


@pytest.fixture(scope="module")
def library(server: Server, keys: dict[str, str], sample_dir: Path) -> dict[str, str]:
    """The photos in the module's workspace: file name -> image id."""
    with httpx.Client(base_url=server.url, timeout=300) as client:
        return {n: store(client, keys["write"], (sample_dir / n).read_bytes(), n) for n in (*PEOPLE, EMPTY)}


@pytest.fixture(scope="module")
def context(
    browser: Browser, server: Server, keys: dict[str, str], library: dict[str, str]
) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": 900})
    assert ctx.request.post("/v1/session", data={"key": keys["read"]}).ok
    yield ctx
    ctx.close()


def view(server: Server, keys: dict[str, str], image_id: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v1/images/{image_id}", headers=auth(keys["read"]))
    assert response.status_code == 200, response.text
    results: dict[str, Any] = response.json()["results"]
    missing = {"objects", "pose"} - set(results)
    assert not missing, f"the stored results lack {missing}: are the analyzers in the server's pipeline?"
    return results


def visible_joints(person: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k["name"]: k for k in person["keypoints"] if k["score"] >= MIN_KEYPOINT}


def inside(rects: list[list[float]], frame: list[float], slack: float = 1.0) -> bool:
    left, top, right, bottom = frame
    return all(
        r[0] >= left - slack and r[1] >= top - slack and r[2] <= right + slack and r[3] <= bottom + slack
        for r in rects
    )


def check_drawing(page: Page, results: dict[str, Any]) -> None:
    """Boxes and joints sit where the results say on the picture as drawn now, and within it."""
    image = page.evaluate(RECTS, "#image-main")[0]
    width, height = image[2] - image[0], image[3] - image[1]
    boxes = page.evaluate(RECTS, ".region-objects")
    assert inside(boxes, image) and len(boxes) == len(results["objects"]["objects"])
    for rect, obj in zip(boxes, results["objects"]["objects"], strict=True):
        assert abs(rect[0] - (image[0] + obj["box"]["x0"] * width)) < 2
        assert abs(rect[3] - (image[1] + obj["box"]["y1"] * height)) < 2
    assert inside(page.evaluate(RECTS, ".skeleton line"), image)
    joints = page.evaluate(RECTS, ".skeleton circle")
    expected = [k for p in results["pose"]["people"] for k in visible_joints(p).values()]
    assert len(joints) == len(expected)
    for rect, k in zip(joints, expected, strict=True):
        assert abs((rect[0] + rect[2]) / 2 - (image[0] + k["x"] * width)) < 1.5
        assert abs((rect[1] + rect[3]) / 2 - (image[1] + k["y"] * height)) < 1.5
        assert abs((rect[2] - rect[0]) - (rect[3] - rect[1])) < 0.5  # round on any aspect ratio


def test_boxes_and_skeletons_over_the_picture(
    page: Page, server: Server, keys: dict[str, str], library: dict[str, str]
) -> None:
    errors = console_errors(page)
    results = view(server, keys, library["astronaut.png"])
    objects, people = results["objects"]["objects"], results["pose"]["people"]
    assert any(o["name"] == "Person" for o in objects) and people, "the astronaut is found, with a pose"
    bones = sum(1 for p in people for a, b in BONES if {a, b} <= visible_joints(p).keys())
    page.goto(f"/#/image/{library['astronaut.png']}")
    expect(page.locator("#image-main")).to_be_visible()
    page.wait_for_function("() => document.querySelector('#image-main').complete")
    labels = page.locator(".region-objects .region-label")
    expect(labels).to_have_count(len(objects))
    expect(labels.filter(has_text=re.compile(r"^Person \d{1,3}%$"))).to_have_count(
        sum(o["name"] == "Person" for o in objects)
    )
    expect(page.locator(".skeleton")).to_have_count(len(people))
    expect(page.locator(".skeleton line.bone")).to_have_count(bones)
    assert bones >= 1, "the astronaut's skeleton has lines"
    check_drawing(page, results)
    listed = page.locator("#in-picture")
    expect(listed).to_contain_text(re.compile(r"Objects: Person ×1"))
    expect(listed).to_contain_text(f"People: {len(people)}")
    expect(listed).not_to_contain_text(re.compile(r"_|feedlens\.|coco|\bid\b"))
    accessible(page)
    shot(page, "image-overlay")
    # the toggles: by mouse, and by keyboard (Space on the focused checkbox)
    page.get_by_label("Objects (").uncheck()
    expect(page.locator(".region-objects").first).to_be_hidden()
    page.get_by_label("People (").focus()
    page.keyboard.press("Space")
    expect(page.get_by_label("People (")).not_to_be_checked()
    expect(page.locator(".skeleton").first).to_be_hidden()
    expect(page.locator(".region-faces").first).to_be_visible()
    page.get_by_label("Faces (").uncheck()
    expect(page.locator(".region-faces").first).to_be_hidden()
    page.get_by_label("People (").focus()
    page.keyboard.press("Space")
    expect(page.locator(".skeleton").first).to_be_visible()
    assert not errors, errors


def test_overlay_follows_the_aspect_ratio_and_resizes(
    page: Page, server: Server, keys: dict[str, str], library: dict[str, str]
) -> None:
    errors = console_errors(page)
    image_id = library["grace_hopper.jpg"]
    results = view(server, keys, image_id)
    described = httpx.get(f"{server.url}/v1/images/{image_id}", headers=auth(keys["read"])).json()
    page.goto(f"/#/image/{image_id}")
    expect(page.locator(".skeleton line.bone").first).to_be_attached()
    page.wait_for_function("() => document.querySelector('#image-main').complete")
    # the picture keeps its aspect ratio (reserved before it loads by its width and height)
    assert page.locator("#image-main").get_attribute("width") == str(described["width"])
    for width, height in ((1280, 900), (700, 900), (1600, 700)):  # two columns, one column, wide
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(100)
        left, top, right, bottom = page.evaluate(RECTS, "#image-main")[0]
        assert abs((right - left) / (bottom - top) - described["width"] / described["height"]) < 0.01
        check_drawing(page, results)
        if width == 700:
            shot(page, "image-overlay-narrow")
    expect(page.locator("#in-picture")).to_contain_text(re.compile(r"Objects: Person ×1, Tie ×1"))
    assert not errors, errors


def test_nothing_drawn_without_objects_or_people(
    page: Page, server: Server, keys: dict[str, str], library: dict[str, str]
) -> None:
    errors = console_errors(page)
    results = view(server, keys, library[EMPTY])
    assert not results["objects"]["objects"] and not results["pose"]["people"]
    page.goto(f"/#/image/{library[EMPTY]}")
    expect(page.locator("#in-picture")).to_contain_text("Objects: none found")
    expect(page.locator("#in-picture")).to_contain_text("People: none found")
    expect(page.locator(".skeleton")).to_have_count(0)
    expect(page.locator(".region-objects")).to_have_count(0)
    assert not errors, errors


def rewrite(page: Page, image_id: str, change: Any) -> None:
    """Answer the page's GET /v1/images/{id} with the real view as `change(view)` leaves it."""

    def handle(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        change(body)
        route.fulfill(response=response, json=body)

    page.route(f"**/v1/images/{image_id}", handle)


def test_no_results_no_overlay(page: Page, library: dict[str, str]) -> None:
    errors = console_errors(page)
    rewrite(page, library["astronaut.png"], lambda body: body.update(results={}))
    page.goto(f"/#/image/{library['astronaut.png']}")
    expect(page.locator("#image-main")).to_be_visible()
    expect(page.locator(".legend-empty")).to_have_text("Nothing found to draw over this picture.")
    expect(page.locator("#image-frame svg")).to_have_count(0)
    expect(page.locator("#image-frame .region")).to_have_count(0)
    expect(page.locator("#in-picture")).to_have_count(0)
    assert not errors, errors


def test_names_are_text_not_markup(page: Page, library: dict[str, str]) -> None:
    errors = console_errors(page)
    evil = '<img src=x onerror="window.pwned=1">Mug'

    def change(body: dict[str, Any]) -> None:
        body["results"]["objects"]["objects"][0]["name"] = evil
        body["results"]["pose"]["activities"] = {"standing": 0.9, "<b>waving</b>": 0.7, "sitting": 0.2}
        body["results"]["pose"]["people"][0]["box"] = None  # malformed parts are left out, not fatal

    rewrite(page, library["astronaut.png"], change)
    page.goto(f"/#/image/{library['astronaut.png']}")
    expect(page.locator("#in-picture")).to_contain_text(f"Objects: {evil} ×1")
    expect(page.locator("#in-picture")).to_contain_text("People: 1 — Standing, <b>waving</b>")
    expect(page.locator(".region-objects .region-label").first).to_have_text(re.compile(re.escape(evil)))
    expect(page.locator("#image-frame img")).to_have_count(1)
    assert page.evaluate("() => window.pwned") is None
    assert not errors, errors
