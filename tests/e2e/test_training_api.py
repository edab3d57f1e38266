"""Trained models as a client sees them: a real `feedlens serve` on PostgreSQL with real models. Labels
sent over HTTP -> a probe trained in the background -> its report served -> promoted -> /v1/classify
answers with it -> a second version, an A/B split routing about its share, rollback -> Grad-CAM. Bad
requests on the way. Tests run in file order and build on each other."""

from __future__ import annotations

import io
import time
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.e2e.server import RELAXED_LIMITS, Launch, Server, on_postgres
from tests.support.api import auth, is_problem, store
from tests.support.category_stack import TRAINING_ANALYZERS
from tests.support.tuxpaint import (
    ANIMALS,
    FOOD,
    TEXT,
    VEHICLES,
    pick,
    render,
    to_jpeg_bytes,
)

CLASSES = (ANIMALS, FOOD, VEHICLES, TEXT)
PER_CLASS = 8


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, launch: Launch) -> Server:
    """Its own server: on PostgreSQL, and retraining automatically after the last test's labels (a
    server-wide setting)."""
    env = {
        **RELAXED_LIMITS,
        **on_postgres(request, "models"),
        "FEEDLENS_LEARNING__RETRAIN_AFTER": str(len(CLASSES) * (PER_CLASS + 2)),  # the last test's labels
        # training reads the classifier's stored features; zero-shot, the search vectors: nothing else
        # needs computing at ingest (objects, poses, faces and OCR would triple the module's time)
        "FEEDLENS_ANALYZERS": ",".join(TRAINING_ANALYZERS),
    }
    return launch("models-api", env)


@pytest.fixture(scope="module")
def stamps() -> dict[str, list[Any]]:
    train, held = pick(CLASSES, PER_CLASS, 2)
    return {"train": train, "held": held}


@pytest.fixture(scope="module")
def labelled(client: httpx.Client, keys: dict[str, str], stamps: dict[str, list[Any]]) -> dict[str, str]:
    """Image id -> category, labelled through the API."""
    truth = {}
    for stamp in stamps["train"]:
        image_id = store(client, keys["write"], to_jpeg_bytes(render(stamp, 320)), f"{stamp.key}.jpg")
        response = client.post(
            f"/v1/images/{image_id}/labels",
            headers=auth(keys["write"]),
            json={"categories": [stamp.category]},
        )
        assert response.status_code == 200, response.text
        truth[image_id] = stamp.category
    return truth


def finish(client: httpx.Client, key: str, response: httpx.Response, timeout: float = 300) -> dict[str, Any]:
    """Poll a 202 run until it ends."""
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(location, headers=auth(key)).json()
        if run["status"] in ("succeeded", "failed"):
            return dict(run)
        time.sleep(0.5)
    raise AssertionError(f"run {location} did not finish in {timeout} s")


def png_of(stamp: Any) -> bytes:
    buffer = io.BytesIO()
    render(stamp, 320).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


def test_train_report_promote_classify(
    client: httpx.Client, keys: dict[str, str], labelled: dict[str, str], stamps: dict[str, list[Any]]
) -> None:
    w, r, a = keys["write"], keys["read"], keys["admin"]
    held = stamps["held"][0]
    is_problem(
        client.post("/v1/classify", headers=auth(r), files={"file": ("x.png", png_of(held))}),
        409,
        "no_production_model",
    )
    is_problem(client.post("/v1/models/train", headers=auth(r), json={}), 403, "forbidden")
    run = finish(client, w, client.post("/v1/models/train", headers=auth(w), json={"mode": "probe"}))
    assert run["status"] == "succeeded", run
    model = run["result"]
    assert model["version"] == 1 and model["classes"] == [c for c in model["classes"] if c in CLASSES]
    assert sorted(model["classes"]) == sorted(CLASSES)

    listing = client.get("/v1/models", headers=auth(r)).json()
    assert [m["version"] for m in listing["models"]] == [1] and listing["production"] is None
    page = client.get("/v1/models/1/report", headers=auth(r))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for section in ("Confusion", "Calibration", "ROC"):
        assert section.lower() in page.text.lower()
    metrics = client.get("/v1/models/1/metrics", headers=auth(r)).json()
    assert metrics["accuracy"] == pytest.approx(model["metrics"]["accuracy"])

    is_problem(client.post("/v1/models/1/promote", headers=auth(w)), 403, "forbidden")
    promoted = client.post("/v1/models/1/promote", headers=auth(a))
    assert promoted.status_code == 200 and promoted.json()["aliases"] == ["production"]
    run_url = f"/v1/models/runs/{promoted.json()['recategorize']['id']}"  # the categories follow production
    deadline = time.monotonic() + 300
    while (run := client.get(run_url, headers=auth(r)).json())["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, run
        time.sleep(0.5)
    assert run["status"] == "succeeded" and run["result"] >= 1, run
    stored_categories = client.get(f"/v1/images/{next(iter(labelled))}", headers=auth(r)).json()
    assert stored_categories["results"]["categories"]["model_version"] == 1
    answer = client.post("/v1/classify", headers=auth(r), files={"file": ("x.png", png_of(held))})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["version"] == 1 and body["served"] and body["label"] in CLASSES and body["also"] == []
    assert body["scores"][0]["category"] == body["label"]
    # a stored image's prediction is recorded
    image_id = next(iter(labelled))
    stored = client.post(f"/v1/classify?image_id={image_id}", headers=auth(r)).json()
    recorded = client.get(f"/v1/images/{image_id}/predictions", headers=auth(r)).json()["predictions"]
    assert [(p["version"], p["label"]) for p in recorded] == [(1, stored["label"])]
    # the other workspace sees none of it
    assert client.get("/v1/models", headers=auth(keys["other"])).json()["models"] == []
    is_problem(client.get("/v1/models/1", headers=auth(keys["other"])), 404, "model_not_found")
    is_problem(
        client.get(f"/v1/images/{image_id}/predictions", headers=auth(keys["other"])), 404, "not_found"
    )


def test_second_version_ab_split_and_rollback(
    client: httpx.Client, keys: dict[str, str], labelled: dict[str, str]
) -> None:
    w, r, a = keys["write"], keys["read"], keys["admin"]
    run = finish(
        client,
        w,
        client.post("/v1/models/train", headers=auth(w), json={"mode": "probe", "seed": 3, "int8": False}),
    )
    assert run["status"] == "succeeded" and run["result"]["version"] == 2
    parent = client.get("/v1/models/2", headers=auth(r)).json()["parent"]
    assert parent is not None
    ab = client.put("/v1/models/ab", headers=auth(a), json={"candidate": 2, "mode": "split", "share": 0.5})
    assert ab.status_code == 200 and ab.json()["mode"] == "split", ab.text
    served = [client.post(f"/v1/classify?image_id={i}", headers=auth(r)).json() for i in labelled]
    by_candidate = sum(s["arm"] == "candidate" for s in served)
    # 32 images at share 0.5: the binomial's 99.9% range is about 7..25
    assert 7 <= by_candidate <= 25, by_candidate
    assert all(len(s["also"]) == 1 and not s["also"][0]["served"] for s in served)
    status = client.get("/v1/models/ab", headers=auth(r)).json()
    assert status["candidate"]["served"] == by_candidate
    # the first test recorded one v1 prediction already; a recorded prediction is kept, not re-recorded
    assert status["production"]["served"] - (len(labelled) - by_candidate) in (0, 1)
    expected = np.mean(
        [
            (s if s["version"] == 1 else s["also"][0])["label"] == labelled[i]
            for i, s in zip(labelled, served, strict=True)
        ]
    )
    assert status["production"]["accuracy"] == pytest.approx(expected)
    assert status["paired"]["images"] == len(labelled)

    promoted = client.post("/v1/models/2/promote", headers=auth(a)).json()
    assert promoted["aliases"] == ["production"]
    assert client.get("/v1/models/ab", headers=auth(r)).json()["mode"] == "off"
    one = next(iter(labelled))
    assert client.post(f"/v1/classify?image_id={one}", headers=auth(r)).json()["version"] == 2
    back = client.post("/v1/models/rollback", headers=auth(a))
    assert back.status_code == 200 and back.json()["version"] == 1
    assert client.post(f"/v1/classify?image_id={one}", headers=auth(r)).json()["version"] == 1
    is_problem(client.post("/v1/models/rollback", headers=auth(a)), 409, "nothing_to_roll_back")
    events = client.get("/v1/models/history", headers=auth(r)).json()["events"]
    assert [e["action"] for e in events] == ["promote", "ab", "promote", "rollback"]


def test_evaluate_and_explain(
    client: httpx.Client, keys: dict[str, str], stamps: dict[str, list[Any]]
) -> None:
    w, r = keys["write"], keys["read"]
    run = finish(client, w, client.post("/v1/models/2/evaluate", headers=auth(w), json={"against": 1}))
    assert run["status"] == "succeeded", run
    # the labels v2 was trained on: with a test split only that is fair; with few labels (all trained it)
    # the figures are on training images and say so
    assert run["result"]["evaluated_on"] in ("test", "training")
    assert run["result"]["comparison"]["baseline_model"]["version"] == "v1"
    held = stamps["held"][0]
    picture = client.post(
        "/v1/models/explain?version=1", headers=auth(r), files={"file": ("x.png", png_of(held))}
    )
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(picture.content)).size == render(held, 320).size
    assert picture.headers["x-feedlens-category"] in CLASSES


def test_bad_requests(client: httpx.Client, keys: dict[str, str], server: Server) -> None:
    w, r, a = keys["write"], keys["read"], keys["admin"]
    is_problem(client.get("/v1/models/99", headers=auth(r)), 404, "model_not_found")
    for huge in ("0", str(2**31), "99999999999999999999999"):  # not a database error: refused up front
        is_problem(client.get(f"/v1/models/{huge}", headers=auth(r)), 422, "invalid_request")
    ab_huge = {"candidate": 2**40, "mode": "shadow"}
    is_problem(client.put("/v1/models/ab", headers=auth(a), json=ab_huge), 422, "invalid_request")
    is_problem(client.get("/v1/models?task=faces", headers=auth(r)), 422, "invalid_request")
    is_problem(
        client.post("/v1/models/train", headers=auth(w), json={"mode": "deep"}), 422, "invalid_request"
    )
    is_problem(client.post("/v1/models/train", headers=auth(w), json={"epochs": 0}), 422, "invalid_request")
    few = client.post("/v1/models/train", headers=auth(w), json={"mode": "finetune"})  # 8 labels a category
    is_problem(few, 409, "not_enough_labels")
    assert "at least 10 labelled images in every category" in few.json()["detail"]
    is_problem(
        client.put("/v1/models/ab", headers=auth(a), json={"candidate": 2, "mode": "split", "share": 2}),
        422,
        "invalid_request",
    )
    is_problem(
        client.put("/v1/models/ab", headers=auth(a), json={"candidate": 1, "mode": "split", "share": 0.2}),
        422,
        "invalid_ab",
    )
    is_problem(
        client.put("/v1/models/ab", headers=auth(a), json={"candidate": 7, "mode": "shadow"}),
        404,
        "model_not_found",
    )
    is_problem(client.get("/v1/models/runs/nope", headers=auth(r)), 404, "run_not_found")
    is_problem(
        client.post("/v1/classify", headers=auth(r), files={"file": ("x.png", b"not an image")}),
        415,
        "unsupported_format",
    )
    is_problem(client.post("/v1/classify?image_id=0000", headers=auth(r)), 404, "not_found")
    is_problem(client.get("/v1/models/1/report", headers=auth(keys["other"])), 404, "model_not_found")
    # a workspace with labels of one category only: the run fails with the dataset's problems
    other = keys["other"]
    image_id = store(client, other, to_jpeg_bytes(Image.new("RGB", (400, 300), "red")), "red.jpg")
    client.post(f"/v1/images/{image_id}/labels", headers=auth(other), json={"categories": [FOOD]})
    run = finish(client, other, client.post("/v1/models/train", headers=auth(other), json={}))
    assert run["status"] == "failed" and run["error"]["code"] == "dataset_invalid"
    assert "too_few_classes" in {p["code"] for p in run["error"]["problems"]}
    assert client.get("/v1/models", headers=auth(other)).json()["models"] == []  # nothing half-made


def test_labeling_queue_and_retraining_loop(
    client: httpx.Client, keys: dict[str, str], labelled: dict[str, str], stamps: dict[str, list[Any]]
) -> None:
    """Unlabelled held-out stamps enter the labelling queue; labelling them crosses RETRAIN_AFTER, which
    starts a cycle in the server; a cycle on command follows; the learning curve lists both."""
    w, r = keys["write"], keys["read"]
    held = {
        store(client, w, to_jpeg_bytes(render(s, 320)), f"{s.key}.jpg"): s.category for s in stamps["held"]
    }
    queue = client.get("/v1/review/labeling?n=4", headers=auth(r)).json()
    assert queue["strategy"] == "margin" and not queue["cold_start"]
    assert len(queue["picks"]) == 4 and {p["image_id"] for p in queue["picks"]} <= set(held)
    assert queue["progress"]["unlabelled"] == len(held)
    assert queue["picks"][0]["predicted"][0]["category"] in CLASSES
    for image_id, category in held.items():
        response = client.post(
            f"/v1/images/{image_id}/labels", headers=auth(w), json={"categories": [category]}
        )
        assert response.status_code == 200
    deadline = time.monotonic() + 300
    cycles: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not cycles:
        cycles = client.get("/v1/review/learning", headers=auth(r)).json()["cycles"]
        time.sleep(1)
    assert cycles and cycles[0]["trigger"] == "labels" and cycles[0]["labels"] == len(labelled) + len(held)
    first = cycles[0]
    assert first["production_version"] == 1
    # production v1 learnt from every label (few labels: cross-validated), so only new labels that fall in
    # the stable test part can be held out; with none, the cycle says so and promotes nothing
    assert first["holdout"] > 0 or ("no held-out images" in first["reason"] and not first["promoted"]), first
    run = finish(client, w, client.post("/v1/review/retrain", headers=auth(w), json={"margin": 1.0}))
    assert run["status"] == "succeeded", run
    assert not run["result"]["promoted"]  # nothing improves by a whole point of macro-F1
    status = client.get("/v1/review/learning", headers=auth(r)).json()
    assert [c["trigger"] for c in status["cycles"]] == ["labels", "command"] and len(status["curve"]) == 2
    is_problem(client.get("/v1/review/labeling?n=0", headers=auth(r)), 422, "invalid_request")
    is_problem(client.get("/v1/review/labeling?strategy=bogus", headers=auth(r)), 422, "invalid_request")
    is_problem(
        client.post("/v1/review/retrain", headers=auth(w), json={"metric": "f2"}), 422, "invalid_request"
    )
