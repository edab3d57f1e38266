"""The web app's review pages in a real browser (Debian's Chromium, headless, Playwright) against a real
`feedlens serve` (tests/e2e/webdemo.py): approve an image in the moderation review queue from the keyboard,
label an image in the labelling queue and retrain, promote a trained model from the models page and roll
back. Tests run in file order and build on each other. Screenshots go to test-artifacts/screenshots/ like
test_web.py's."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.server import RELAXED_LIMITS, Launch, Server
from tests.e2e.webdemo import Demo
from tests.support.api import auth
from tests.support.browser import CHROMIUM, accessible, shot

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")

# The sample photos are all safe. The coffee cup scores 0.34 for explicit nudity (NudeNet sees skin in
# it), so with the detector alone deciding (no person evidence asked for) an explicit threshold of 0.3
# flags it, with a region; a margin of 0.4 makes every other image uncertain too (its scores, 0, lie 0.3
# from that threshold): the queue holds every image, coffee first.
REVIEW_ENV = {
    "FEEDLENS_SAFETY_EXPLICIT_THRESHOLD": "0.3",
    "FEEDLENS_REVIEW__MARGIN": "0.4",
    "FEEDLENS_SAFETY_PERSON_EVIDENCE": "false",
}
# labels set through the API before the pages are opened: three categories (the model's classes)
LABELS = {
    "chelsea.png": "animals & pets",
    "cat_mirror.png": "animals & pets",
    "composite.jpg": "animals & pets",
    "motorcycle.png": "vehicles",
    "rocket.jpg": "vehicles",
    "astronaut.png": "people & selfies",
    "grace_hopper.jpg": "people & selfies",
    "camera.png": "people & selfies",
}


@pytest.fixture(scope="module")
def server(launch: Launch) -> Server:
    """Its own server (the `demo` library is loaded onto it): REVIEW_ENV's threshold and margin are
    server-wide and would send other modules' images to review."""
    return launch("web-review", {**RELAXED_LIMITS, **REVIEW_ENV})


@pytest.fixture(scope="module")
def labelled(client: httpx.Client, demo: Demo) -> dict[str, str]:
    for name, category in LABELS.items():
        body = {"categories": [category]}
        r = client.post(f"/v1/images/{demo.ids[name]}/labels", headers=auth(demo.keys["write"]), json=body)
        assert r.status_code == 200, r.text
    return {demo.ids[n]: c for n, c in LABELS.items()}


def logged_in(browser: Browser, demo: Demo, key: str) -> BrowserContext:
    ctx = browser.new_context(base_url=demo.server.url, viewport={"width": 1280, "height": 900})
    assert ctx.request.post("/v1/session", data={"key": demo.keys[key]}).ok
    return ctx


@pytest.fixture(scope="module")
def context(browser: Browser, demo: Demo) -> Iterator[BrowserContext]:
    """Logged in with team-a's admin key (decisions and labels need write, promotion admin)."""
    ctx = logged_in(browser, demo, "admin")
    yield ctx
    ctx.close()


def finish(client: httpx.Client, key: str, response: httpx.Response, timeout: float = 300) -> dict[str, Any]:
    """Poll a 202 run until it ends."""
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(response.headers["location"], headers=auth(key)).json()
        if run["status"] in ("succeeded", "failed"):
            return dict(run)
        time.sleep(0.5)
    raise AssertionError(f"run {response.headers['location']} did not finish in {timeout} s")


BLUR = "() => getComputedStyle(document.querySelector('#review-image')).filter"


def test_approve_in_the_review_queue(page: Page, demo: Demo, client: httpx.Client) -> None:
    read = auth(demo.keys["read"])
    queue = client.get("/v1/review/moderation", headers=read).json()["items"]
    assert len(queue) == len(demo.ids), "every image is flagged or uncertain under REVIEW_ENV"
    first = queue[0]
    image = client.get(f"/v1/images/{first['image_id']}", headers=read).json()
    regions = image["results"]["safety"]["regions"]
    assert first["verdict"] == "explicit" and regions, "the coffee cup is flagged, with a region"

    page.goto("/#/review")
    expect(page.get_by_role("heading", name="Image 1 of")).to_be_visible()
    expect(page.locator("#review-list > li")).to_have_count(len(queue))
    expect(page.locator("#review-image")).to_have_attribute("src", re.compile(first["image_id"]))
    expect(page.locator("#review-facts")).to_contain_text("explicit")
    expect(page.locator(".review-region")).to_have_count(len(regions))
    assert "blur" in page.evaluate(BLUR)  # blurred until revealed
    expect(page.locator("#calibration-table tbody tr")).to_have_count(19)
    accessible(page)
    shot(page, "review")
    page.keyboard.press("v")
    expect(page.get_by_role("button", name="Blur again")).to_have_attribute("aria-pressed", "true")
    assert "blur" not in page.evaluate(BLUR)
    page.keyboard.press("v")
    assert "blur" in page.evaluate(BLUR)
    # the reason field takes letters as text; Esc leaves it and the keys decide again
    page.keyboard.press("c")
    expect(page.get_by_label("Reason")).to_be_focused()
    page.keyboard.type("a cup of coffee, not skin")
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    expect(page.locator("#review-status")).to_contain_text(f"Image {first['image_id']}: approved.")
    expect(page.locator("#review-list > li")).to_have_count(len(queue) - 1)
    expect(page.locator("#review-image")).to_have_attribute("src", re.compile(queue[1]["image_id"]))
    expect(page.locator("#review-item")).to_be_focused()  # the next key applies to the next image

    found = client.get(f"/v1/review/moderation/{first['image_id']}", headers=read).json()
    assert found["state"] == "approved"
    assert [(d["decision"], d["reason"]) for d in found["decisions"]] == [
        ("approve", "a cup of coffee, not skin")
    ]
    caption = page.locator("#calibration-table caption")
    expect(caption).to_contain_text("judged by 1 decision (0 rejected, 1 approved)")
    calibration = client.get("/v1/review/moderation/calibration", headers=read).json()
    expect(page.locator("#review-calibration canvas")).to_be_visible()
    plotted = page.evaluate(
        "() => Chart.getChart(document.querySelector('#review-calibration canvas')).data.datasets[0].data"
    )
    assert plotted == [{"x": p["threshold"], "y": p["precision"]} for p in calibration["grid"]]
    # a button does the same: escalate the next one
    page.get_by_role("button", name="Escalate").click()
    expect(page.locator("#review-status")).to_contain_text(f"Image {queue[1]['image_id']}: escalated.")
    page.get_by_label("Queue", exact=True).select_option("escalated")
    expect(page.locator("#review-list > li")).to_have_count(1)
    expect(page.get_by_role("button", name="Escalate")).to_have_count(0)  # approve or reject only


def test_label_an_item(page: Page, demo: Demo, client: httpx.Client, labelled: dict[str, str]) -> None:
    taxonomy = client.get("/v1/taxonomy", headers=auth(demo.keys["read"])).json()["taxonomy"]
    names = [c["name"] for c in taxonomy["categories"]]
    page.goto("/#/labelling")
    unlabelled = len(demo.ids) - len(labelled)
    # the first batch scores every unlabelled image (13 s measured with the machine's 2 cores shared)
    expect(page.locator("#label-progress")).to_have_text(
        f"{len(labelled)} labelled · {unlabelled} unlabelled · image 1 of {unlabelled} in this batch",
        timeout=60_000,
    )
    expect(page.locator(".category-button")).to_have_count(len(names))
    expect(page.locator(".category-button").first).to_have_attribute("aria-keyshortcuts", "1")
    expect(page.locator("#label-predicted li")).to_have_count(3)  # three labelled categories: a model
    src = page.locator("#label-image").get_attribute("src")
    assert src
    image_id = src.split("/")[3]
    assert image_id not in labelled
    expect(page.get_by_role("img", name=re.compile("Image: "))).to_be_visible()  # alt from its labels
    accessible(page)
    page.keyboard.press("2")
    expect(page.locator("#label-status")).to_contain_text(f'Labelled {image_id} "{names[1]}"')
    expect(page.locator("#label-progress")).to_have_text(
        f"{len(labelled) + 1} labelled · {unlabelled - 1} unlabelled · image 2 of {unlabelled} in this batch"
    )
    labels = client.get(f"/v1/images/{image_id}/labels", headers=auth(demo.keys["read"])).json()["labels"]
    assert [(x["category"], x["positive"]) for x in labels] == [(names[1], True)]
    page.keyboard.press("s")  # skip: no label
    expect(page.locator("#label-progress")).to_contain_text("image 3 of")

    # a retraining cycle. Whether its candidate is promoted depends on the stable holdout, which hashes the
    # image ids (random per library): it may hold none of these few images. The page says what the API does.
    page.get_by_role("button", name="Retrain now").click()
    expect(page.locator("#retrain-status")).to_contain_text("Candidate version 1: ", timeout=120_000)
    learning = client.get("/v1/review/learning", headers=auth(demo.keys["read"])).json()
    cycle = learning["cycles"][0]
    verdict = "promoted" if cycle["promoted"] else "not promoted"
    expect(page.locator("#retrain-status")).to_have_text(
        f"Candidate version 1: {verdict} ({cycle['reason']})."
    )
    assert [p["labels"] for p in learning["curve"]] == [len(labelled) + 1]
    expect(page.locator("#learning-curve canvas")).to_be_visible()
    plotted = page.evaluate(
        "() => Chart.getChart(document.querySelector('#learning-curve canvas')).data.datasets[0].data"
    )
    assert plotted == [{"x": len(labelled) + 1, "y": learning["curve"][0]["candidate"]}]
    shot(page, "labelling")


def test_promote_a_model(
    page: Page,
    browser: Browser,
    demo: Demo,
    client: httpx.Client,
    labelled: dict[str, str],
) -> None:
    run = finish(
        client, demo.keys["write"], client.post("/v1/models/train", headers=auth(demo.keys["write"]), json={})
    )
    assert run["status"] == "succeeded", run
    version = run["result"]["version"]
    assert version == 2  # the labelling journey's cycle trained version 1
    # version 1 in production (the cycle promoted it unless it had no holdout to score it on): to roll back to
    if client.get("/v1/models", headers=auth(demo.keys["read"])).json()["production"] is None:
        assert client.post("/v1/models/1/promote", headers=auth(demo.keys["admin"])).status_code == 200
    before = 1

    # a write key is told why it cannot promote, and is offered no button that would be refused
    writer = logged_in(browser, demo, "write")
    tab = writer.new_page()
    tab.goto("/#/models")
    expect(tab.locator(f"#model-{version}")).to_be_visible()
    expect(tab.locator("#admin-note")).to_contain_text("need an admin key")
    expect(tab.get_by_role("button", name=f"Promote v{version}")).to_have_count(0)
    writer.close()

    page.goto("/#/models")
    row = page.locator(f"#model-{version}")
    expect(row).to_contain_text(f"v{version}")
    expect(row).to_contain_text(run["result"]["runtime"])
    expect(page.locator("#production")).to_have_text(f"Production: v{before}.")
    page.get_by_role("button", name=f"Report of v{version}").click()
    report = page.frame_locator("#report-frame")
    expect(report.get_by_role("heading", name="Confusion matrix")).to_be_visible()  # framed under the CSP
    accessible(page)
    page.get_by_role("button", name=f"Promote v{version}").click()
    expect(page.locator("#production")).to_have_text(f"Production: v{version}.")
    expect(page.get_by_role("heading", name="Versions")).to_be_focused()  # not lost with the old button
    expect(row.locator(".badge-alias-production")).to_have_text("production")
    assert client.get("/v1/models", headers=auth(demo.keys["read"])).json()["production"] == version
    expect(page.locator("#ab-table")).to_contain_text(f"v{version}")  # the production arm
    shot(page, "models")
    page.get_by_role("button", name="Roll back production").click()
    expect(page.locator("#production")).to_have_text(f"Production: v{before}.")
    assert client.get("/v1/models", headers=auth(demo.keys["read"])).json()["production"] == before
