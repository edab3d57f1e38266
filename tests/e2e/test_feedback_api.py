"""Corrections and the moderation review queue as a client sees them: a real `feedlens serve` (SQLite, real
models) with FEEDLENS_REVIEW__HIDE_UNREVIEWED on, and the CLI against the same library.

The sample photos are all safe, so the tests give two of them chosen safety scores by writing `safety`
results into the server's database (the repository call the pipeline's results go through); re-sending
one image's bytes runs the ingest hook on it, a scan assesses the rest. Tests run in file order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedlens.storage.database import Database
from tests.e2e.server import RELAXED_LIMITS, Launch, Server, Team
from tests.support.api import auth, is_problem, store
from tests.support.category_stack import FOOD, PETS
from tests.support.safety import put_safety

NAMES = ("chelsea.png", "coffee.png", "astronaut.png")


@pytest.fixture(scope="module")
def server(launch: Launch) -> Server:
    """Its own server: hiding unreviewed images is a server-wide setting that would hide images of the
    modules sharing the e2e server."""
    return launch("feedback-api", {**RELAXED_LIMITS, "FEEDLENS_REVIEW__HIDE_UNREVIEWED": "true"})


@pytest.fixture(scope="module")
def ids(client: httpx.Client, keys: dict[str, str], sample_dir: Path) -> dict[str, str]:
    found = {name: store(client, keys["write"], (sample_dir / name).read_bytes(), name) for name in NAMES}
    found["b:chelsea"] = store(client, keys["other"], (sample_dir / "chelsea.png").read_bytes(), "c.png")
    return found


def get(client: httpx.Client, key: str, path: str, **params: Any) -> Any:
    response = client.get(path, headers=auth(key), params=params)
    assert response.status_code == 200, response.text
    return response.json()


def post(client: httpx.Client, key: str, path: str, body: Any = None, status: int = 200) -> Any:
    response = client.post(path, headers=auth(key), json=body)
    assert response.status_code == status, response.text
    return response.json()


def found_by_search(client: httpx.Client, key: str, query: str) -> set[str]:
    body = get(client, key, "/v1/search", q=query, min_score=0, limit=50)
    return {item["image_id"] for item in body["items"]}


def analytics_images(client: httpx.Client, key: str) -> int:
    """Images counted per category by the analytics API, summed over categories and days."""
    return sum(row["images"] for row in get(client, key, "/v1/analytics/categories", top=50)["rows"])


def test_queue_from_ingest_and_scan_hidden_until_reviewed(
    server: Server, client: httpx.Client, keys: dict[str, str], ids: dict[str, str], sample_dir: Path
) -> None:
    read, write = keys["read"], keys["write"]
    assert get(client, read, "/v1/review/moderation")["items"] == []  # safe photos: nothing queued
    assert ids["coffee.png"] in found_by_search(client, read, "a cup of coffee")
    database = Database(server.database_url)
    try:
        put_safety(database, ids["coffee.png"], 0.95, 0.1, "explicit")
        put_safety(database, ids["astronaut.png"], 0.0, 0.58, "safe")  # 0.02 under the threshold
    finally:
        database.dispose()
    # re-sending the coffee runs the ingest hook on it; the astronaut waits for a scan
    assert store(client, write, (sample_dir / "coffee.png").read_bytes(), "again.png") == ids["coffee.png"]
    queue = get(client, read, "/v1/review/moderation")
    assert [i["image_id"] for i in queue["items"]] == [ids["coffee.png"]]
    assert post(client, write, "/v1/review/moderation/scan") == {
        "scanned": 3,
        "queued": 2,
        "removed": 0,
        "pending": 2,
    }
    items = get(client, read, "/v1/review/moderation", limit=10)["items"]
    assert [i["image_id"] for i in items] == [ids["coffee.png"], ids["astronaut.png"]]
    assert items[0]["verdict"] == "explicit" and items[0]["priority"] == pytest.approx(0.95)
    assert items[1]["verdict"] == "safe" and items[1]["priority"] == pytest.approx(0.58 + 0.25 * 0.8)
    assert get(client, keys["other"], "/v1/review/moderation")["items"] == []  # team-b's queue is its own

    # hidden until reviewed: out of search, listings and analytics; approved: back
    assert ids["coffee.png"] not in found_by_search(client, read, "a cup of coffee")
    listed = {i["id"] for i in get(client, read, "/v1/images", limit=200)["items"]}
    assert ids["coffee.png"] not in listed and ids["chelsea.png"] in listed
    hidden_total = analytics_images(client, read)
    for path in ("/v1/clusters?min_size=2", "/v1/duplicates"):  # groups are built without hidden images
        assert ids["coffee.png"] not in json.dumps(get(client, read, path))
    decided = post(
        client,
        write,
        f"/v1/review/moderation/{ids['coffee.png']}",
        {"decision": "approve", "reason": "latte art"},
    )
    assert decided["state"] == "approved" and decided["verdict_before"] == "explicit"
    assert decided["created_by"].startswith("key:") and decided["reason"] == "latte art"
    assert ids["coffee.png"] in found_by_search(client, read, "a cup of coffee")
    assert ids["coffee.png"] in {i["id"] for i in get(client, read, "/v1/images", limit=200)["items"]}
    assert analytics_images(client, read) > hidden_total  # the coffee's categories count again
    assert ids["coffee.png"] in json.dumps(get(client, read, "/v1/clusters?min_size=2"))  # member or outlier
    status = get(client, read, f"/v1/review/moderation/{ids['coffee.png']}")
    assert status["state"] == "approved" and [d["decision"] for d in status["decisions"]] == ["approve"]


def test_cli_review_next_decide_and_calibration(
    server: Server, team: Team, client: httpx.Client, keys: dict[str, str], ids: dict[str, str]
) -> None:
    shown = server.cli("review", "next", "-w", team.a)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split("\t")[:2] == [ids["astronaut.png"], "safe"]
    assert ids["coffee.png"] not in shown.stdout
    decided = server.cli(
        "review", "decide", ids["astronaut.png"], "reject", "--reason", "swimwear", "-w", team.a
    )
    assert decided.returncode == 0, decided.stderr
    assert decided.stdout.split() == [ids["astronaut.png"], "reject", "rejected"]
    again = post_problem(client, keys["write"], f"/v1/review/moderation/{ids['astronaut.png']}", "approve")
    is_problem(again, 409, "not_in_review")
    found = get(client, keys["read"], "/v1/review/moderation/calibration")
    assert (found["decisions"], found["unsafe"], found["safe"]) == (2, 1, 1)
    # approved coffee at risk 0.95, rejected astronaut at 0.58: thresholds up to 0.55 flag both
    point = {p["threshold"]: p for p in found["grid"]}
    assert point[0.55]["precision"] == 0.5 and point[0.55]["recall"] == 1.0
    assert point[0.6]["recall"] == 0.0 and found["current"] == point[0.6]
    assert found["suggested"] is None  # no threshold separates them the right way round
    table = server.cli("review", "calibration", "-w", team.a)
    assert table.returncode == 0, table.stderr
    assert "0.60 (current)" in table.stdout and "2 decisions (1 rejected, 1 approved)" in table.stderr


def post_problem(client: httpx.Client, key: str, path: str, decision: str) -> httpx.Response:
    return client.post(path, headers=auth(key), json={"decision": decision})


def test_corrections_api_and_cli(
    server: Server, team: Team, client: httpx.Client, keys: dict[str, str], ids: dict[str, str]
) -> None:
    write, cat = keys["write"], ids["chelsea.png"]
    done = post(client, write, f"/v1/images/{cat}/corrections", {"confirm": True}, status=201)
    (record,) = done["corrections"]
    assert record["kind"] == "categories" and PETS in record["previous"]["assigned"]
    assert record["value"]["confirm"] and PETS in record["value"]["categories"]
    assert any(label["category"] == PETS and label["positive"] for label in done["labels"])
    verdict = post(client, write, f"/v1/images/{cat}/corrections", {"safety": "safe"}, status=201)
    assert verdict["decision"]["decision"] == "approve" and verdict["corrections"][0]["value"]["confirmed"]
    # the CLI: a correction by `cli`
    corrected = server.cli("correct", cat, "--category", FOOD, "--not", PETS, "-w", team.a)
    assert corrected.returncode == 0, corrected.stderr
    assert f"{FOOD}\tyes\tcli" in corrected.stdout and f"{PETS}\tno\tcli" in corrected.stdout
    history = get(client, keys["read"], f"/v1/images/{cat}/corrections")["corrections"]
    assert [(h["kind"], h["created_by"]) for h in history] == [
        ("categories", "cli"),
        ("safety", record["created_by"]),
        ("categories", record["created_by"]),
    ]
    labels = get(client, keys["read"], f"/v1/images/{cat}/labels")["labels"]
    assert {(row["category"], row["positive"]) for row in labels} >= {(FOOD, True), (PETS, False)}


def test_bad_requests_are_problems(client: httpx.Client, keys: dict[str, str], ids: dict[str, str]) -> None:
    write, cat = keys["write"], ids["chelsea.png"]
    cases: list[tuple[str, str, Any, int, str]] = [
        ("POST", "/v1/images/nope/corrections", {"confirm": True}, 404, "not_found"),
        ("GET", "/v1/images/nope/corrections", None, 404, "not_found"),
        ("POST", f"/v1/images/{ids['b:chelsea']}/corrections", {"confirm": True}, 404, "not_found"),
        ("GET", f"/v1/images/{ids['b:chelsea']}/corrections", None, 404, "not_found"),
        ("POST", f"/v1/review/moderation/{ids['b:chelsea']}", {"decision": "approve"}, 404, "not_found"),
        ("POST", "/v1/review/moderation/nope", {"decision": "approve"}, 404, "not_found"),
        ("GET", "/v1/review/moderation/nope", None, 404, "not_found"),
        ("POST", f"/v1/images/{cat}/corrections", {}, 422, "invalid_request"),
        ("POST", f"/v1/images/{cat}/corrections", {"safety": "nsfw"}, 422, "invalid_request"),
        ("POST", f"/v1/images/{cat}/corrections", {"confirm": True, "extra": 1}, 422, "invalid_request"),
        ("POST", f"/v1/images/{cat}/corrections", {"categories": ["unicorns"]}, 422, "unknown_category"),
        (
            "POST",
            f"/v1/images/{cat}/corrections",
            {"categories": [FOOD], "not": [FOOD]},
            422,
            "label_conflict",
        ),
        ("POST", f"/v1/review/moderation/{cat}", {"decision": "delete"}, 422, "invalid_request"),
        ("POST", f"/v1/review/moderation/{cat}", {"decision": "approve"}, 409, "not_in_review"),
        ("GET", "/v1/review/moderation?state=approved", None, 422, "invalid_request"),
        ("GET", "/v1/review/moderation/calibration?target_precision=2", None, 422, "invalid_request"),
    ]
    for method, path, body, status, code in cases:
        response = client.request(method, path, headers=auth(write), json=body)
        is_problem(response, status, code)
    is_problem(
        client.post(f"/v1/images/{cat}/corrections", headers=auth(keys["read"]), json={"confirm": True}),
        403,
        "forbidden",
    )
    is_problem(client.post("/v1/review/moderation/scan", headers=auth(keys["read"])), 403, "forbidden")
