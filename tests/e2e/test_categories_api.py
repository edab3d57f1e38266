"""Categories as a client sees them: a real `feedlens serve` (SQLite, the e2e shared one) with real
models. The taxonomy, the category filter of /v1/images and search, labels, training and every bad input a
client can send.

Team-a's library (workspace `team.a`): chelsea (the cat, posted "lazy sunday #Caturday"), coffee, the
cameraman and the motorcycle; team-b (`team.b`) holds chelsea as well. Tests run in file order and build
on each other: the default taxonomy (version 1), then a custom one (version 2), then labels and a trained
model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server
from tests.support.api import Library, auth, is_problem, store

NAMES = ("chelsea.png", "coffee.png", "camera.png", "motorcycle.png")
YAML = {"Content-Type": "application/yaml"}
CUSTOM = """\
# what a camera maker's social team sorts mentions into; `vehicles` of the default is gone
name: brand-team
description: our product, and what else people post
categories:
  - name: our product
    description: a camera, a photographer or someone taking photographs
    phrases: [a camera, a photographer with a camera, a camera on a tripod, taking a photo, photography]
    keywords: [camera, photography, photooftheday]
  - name: animals & pets
    description: an animal, a pet or wildlife
    phrases: [a dog, a cat, a pet, wildlife]
    concepts: [animal]
  - name: cats
    parent: animals & pets
    description: a cat or a kitten
    phrases: [a cat, a kitten]
    keywords: [cat, caturday]
  - name: food & drink
    description: food, a meal or a drink
    phrases: [a cup of coffee, a meal, a dessert, a plate of food]
    concepts: [n00021265]
    keywords: [food, coffee, latte]
"""


@pytest.fixture(scope="module")
def library(client: httpx.Client, keys: dict[str, str], sample_dir: Path) -> Library:
    ids = {name: store(client, keys["write"], (sample_dir / name).read_bytes(), name) for name in NAMES}
    post = {"id": "p1", "platform": "x", "author": "alice", "caption": "lazy sunday #Caturday"}
    data = (sample_dir / "chelsea.png").read_bytes()
    assert store(client, keys["write"], data, "repost.png", post) == ids["chelsea.png"]
    return Library(ids, {"chelsea.png": store(client, keys["other"], data, "chelsea.png")})


def get(client: httpx.Client, key: str, path: str, **params: Any) -> Any:
    response = client.get(path, headers=auth(key), params=params)
    assert response.status_code == 200, response.text
    return response.json()


def categories_of(client: httpx.Client, key: str, image_id: str) -> dict[str, Any]:
    result: dict[str, Any] = get(client, key, f"/v1/images/{image_id}")["results"]["categories"]
    return result


def listed(client: httpx.Client, key: str, library: Library, category: str) -> set[str]:
    body = get(client, key, "/v1/images", category=category, limit=200)
    return {library.name(item["id"]) for item in body["items"]}


def put_taxonomy(client: httpx.Client, key: str, body: str | bytes, content_type: str) -> httpx.Response:
    return client.put("/v1/taxonomy", headers={**auth(key), "Content-Type": content_type}, content=body)


def invalid(response: httpx.Response, *expected: str) -> list[str]:
    """A 422 taxonomy_invalid whose `problems` mention each expected fragment."""
    is_problem(response, 422, "taxonomy_invalid")
    problems: list[str] = response.json()["problems"]
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)
    return problems


# -- the default taxonomy ------------------------------------------------------------------------------
def test_default_taxonomy_sorts_the_sample_photos(
    client: httpx.Client, keys: dict[str, str], library: Library
) -> None:
    body = get(client, keys["read"], "/v1/taxonomy")
    assert body["version"] == 1 and body["taxonomy"]["name"] == "social-media"
    names = [c["name"] for c in body["taxonomy"]["categories"]]
    assert {"animals & pets", "food & drink", "vehicles", "technology"} <= set(names)
    versions = get(client, keys["read"], "/v1/taxonomy/versions")["versions"]
    assert [v["version"] for v in versions] == [1] and versions[0]["categories"] == names

    cat = categories_of(client, keys["read"], library.ids["chelsea.png"])
    assert "animals & pets" in cat["assigned"], cat["assigned"]
    assert cat["taxonomy"] == "social-media" and cat["taxonomy_version"] == 1 and cat["model_version"] is None
    assert {c["name"] for c in cat["categories"]} == set(names)
    coffee = categories_of(client, keys["read"], library.ids["coffee.png"])
    assert "food & drink" in coffee["assigned"] and "animals & pets" not in coffee["assigned"]
    assert "vehicles" in categories_of(client, keys["read"], library.ids["motorcycle.png"])["assigned"]

    listing = get(client, keys["read"], "/v1/categories")
    assert listing["version"] == 1 and [c["name"] for c in listing["categories"]] == [*names, "other"]
    images = {c["name"]: c["images"] for c in listing["categories"]}
    assert images["animals & pets"] >= 1 and images["food & drink"] >= 1 and images["vehicles"] >= 1
    assert sum(images.values()) >= len(NAMES)  # every image has at least one category, or other


def test_category_filter_in_listing_and_search(
    client: httpx.Client, keys: dict[str, str], library: Library
) -> None:
    food = listed(client, keys["read"], library, "food & drink")
    assert "coffee.png" in food and "chelsea.png" not in food
    assert listed(client, keys["read"], library, "Food & Drink") == food  # names compare case-blind
    assert "chelsea.png" in listed(client, keys["read"], library, "animals & pets")
    assert listed(client, keys["read"], library, "no such category") == set()
    assert listed(client, keys["other"], library, "food & drink") == set()  # team-b has no coffee

    def searched(**params: Any) -> list[str]:
        return library.names(get(client, keys["read"], "/v1/search", **params))

    assert searched(q="coffee", category="food & drink")[0] == "coffee.png"
    assert searched(q="coffee", category="animals & pets", min_score=0) == ["chelsea.png"]
    assert searched(q="cat", category="animals & pets")[0] == "chelsea.png"
    assert searched(q="cat", category="food & drink", min_score=0) == ["coffee.png"]


def test_counts_per_day(client: httpx.Client, keys: dict[str, str], library: Library) -> None:
    now = datetime.now(UTC)
    window = {"since": (now - timedelta(days=2)).isoformat(), "until": (now + timedelta(days=1)).isoformat()}
    counts = get(client, keys["read"], "/v1/categories/counts", **window)["counts"]
    assert counts and all(set(row) == {"day", "category", "images"} for row in counts)
    days = {row["day"] for row in counts}
    assert days <= {(now - timedelta(days=d)).date().isoformat() for d in range(3)}  # ingested just now
    assert any(row["category"] == "food & drink" and row["images"] >= 1 for row in counts)
    everything = get(client, keys["read"], "/v1/categories/counts")["counts"]
    assert everything == counts
    later = {"since": (now + timedelta(days=1)).isoformat()}
    assert get(client, keys["read"], "/v1/categories/counts", **later)["counts"] == []
    since_naive = {"since": (now + timedelta(days=1)).replace(tzinfo=None).isoformat()}  # naive is UTC
    assert get(client, keys["read"], "/v1/categories/counts", **since_naive)["counts"] == []
    backwards = {"since": window["until"], "until": window["since"]}
    headers = auth(keys["read"])
    is_problem(client.get("/v1/categories/counts", headers=headers, params=backwards), 422, "invalid_request")
    is_problem(
        client.get("/v1/categories/counts", headers=headers, params={"since": "yesterday"}),
        422,
        "invalid_request",
    )


# -- bad inputs ----------------------------------------------------------------------------------------
def test_bad_taxonomies_are_refused_with_every_problem(
    client: httpx.Client, keys: dict[str, str], library: Library
) -> None:
    admin = keys["admin"]
    yaml_type = "application/yaml"
    invalid(put_taxonomy(client, admin, "categories: [a, b\n  - c: :", yaml_type), "not valid YAML")
    invalid(put_taxonomy(client, admin, '{"categories": [', "application/json"), "not valid JSON")
    invalid(put_taxonomy(client, admin, "", yaml_type), "the document is empty")
    invalid(put_taxonomy(client, admin, "  \n", "text/yaml"), "the document is empty")
    invalid(put_taxonomy(client, admin, "categories: []", yaml_type), "`categories` must be a non-empty list")
    invalid(put_taxonomy(client, admin, "- just a list", yaml_type), "must be a mapping")
    invalid(put_taxonomy(client, admin, b"categories: [\xff\xfe]", yaml_type), "not UTF-8")
    duplicates = "categories:\n  - name: Food\n    phrases: [a meal]\n  - name: food\n    phrases: [a dish]"
    invalid(put_taxonomy(client, admin, duplicates, yaml_type), "duplicate category name 'food'")
    cycle = {
        "categories": [
            {"name": "a", "parent": "b", "phrases": ["x"]},
            {"name": "b", "parent": "a", "phrases": ["y"]},
        ]
    }
    invalid(put_taxonomy(client, admin, json.dumps(cycle), "application/json"), "parent cycle")
    several = (
        "categories:\n"
        "  - {name: pets, parent: animals, phrases: [a dog]}\n"
        "  - {name: other, phrases: [misc]}\n"
        "  - {name: pets, phrases: [a cat]}\n"
    )
    problems = invalid(
        put_taxonomy(client, admin, several, "application/yaml; charset=utf-8"),
        "unknown parent 'animals'",
        "`other` is reserved",
        "duplicate category name 'pets'",
    )
    assert len(problems) >= 3  # all at once, not the first only
    unknown_concept = "categories:\n  - {name: gadgets, concepts: [flibbertigibbet widgetry]}"
    invalid(put_taxonomy(client, admin, unknown_concept, yaml_type), "flibbertigibbet")

    is_problem(put_taxonomy(client, admin, CUSTOM, "text/plain"), 415, "unsupported_media_type")
    no_type = client.put("/v1/taxonomy", headers=auth(admin), content=CUSTOM.encode())
    is_problem(no_type, 415, "unsupported_media_type")
    huge = CUSTOM + "# " + "x" * (300 * 1024) + "\n"
    is_problem(put_taxonomy(client, admin, huge, yaml_type), 413, "request_too_large")
    chunked = client.put(  # no Content-Length: refused while streaming
        "/v1/taxonomy",
        headers={**auth(admin), **YAML},
        content=iter([CUSTOM.encode(), b"#" + b"x" * (300 * 1024)]),
    )
    is_problem(chunked, 413, "request_too_large")
    is_problem(put_taxonomy(client, keys["read"], CUSTOM, yaml_type), 403, "forbidden")
    is_problem(put_taxonomy(client, keys["write"], CUSTOM, yaml_type), 403, "forbidden")
    is_problem(client.put("/v1/taxonomy", content=CUSTOM, headers=YAML), 401, "unauthorized")

    assert [v["version"] for v in get(client, keys["read"], "/v1/taxonomy/versions")["versions"]] == [1]


def test_bad_labels_are_refused(client: httpx.Client, keys: dict[str, str], library: Library) -> None:
    cat = library.ids["chelsea.png"]

    def label(body: Any, image_id: str = cat, key: str = keys["write"]) -> httpx.Response:
        return client.post(f"/v1/images/{image_id}/labels", headers=auth(key), json=body)

    unknown = label({"categories": ["animals & pets", "dinosaurs"]})
    is_problem(unknown, 422, "unknown_category")
    assert "dinosaurs" in unknown.json()["detail"]
    is_problem(label({"categories": ["other"]}), 422, "unknown_category")
    conflict = label({"categories": ["animals & pets"], "not": ["Animals & Pets"]})
    is_problem(conflict, 422, "label_conflict")
    bad_bodies: list[dict[str, Any]] = [
        {},
        {"categories": [], "not": []},
        {"categories": [""]},
        {"categories": ["x" * 65]},
        {"categories": ["food & drink"] * 51},
        {"categories": "animals & pets"},
        {"categories": ["animals & pets"], "extra": 1},
    ]
    for body in bad_bodies:
        is_problem(label(body), 422, "invalid_request")
    is_problem(label({"categories": ["animals & pets"]}, "no-such-image"), 404, "not_found")
    is_problem(label({"categories": ["animals & pets"]}, library.b_ids["chelsea.png"]), 404, "not_found")
    is_problem(label({"categories": ["animals & pets"]}, key=keys["read"]), 403, "forbidden")
    is_problem(
        client.get(f"/v1/images/{library.b_ids['chelsea.png']}/labels", headers=auth(keys["read"])),
        404,
        "not_found",
    )
    assert get(client, keys["read"], f"/v1/images/{cat}/labels") == {"image_id": cat, "labels": []}
    # team-b has labelled nothing: nothing to train on
    is_problem(client.post("/v1/categories/train", headers=auth(keys["other"])), 409, "not_enough_labels")
    is_problem(client.post("/v1/categories/train", headers=auth(keys["read"])), 403, "forbidden")
    is_problem(client.post("/v1/categories/recategorize", headers=auth(keys["read"])), 403, "forbidden")
    assert get(client, keys["other"], "/v1/categories/models") == {"models": []}


# -- a custom taxonomy, labels and a trained model -------------------------------------------------------
def test_custom_taxonomy_end_to_end(client: httpx.Client, keys: dict[str, str], library: Library) -> None:
    assert "motorcycle.png" in listed(client, keys["read"], library, "vehicles")
    response = put_taxonomy(client, keys["admin"], CUSTOM, "application/yaml")
    assert response.status_code == 200, response.text
    assert response.json() == {"version": 2, "recategorized": len(NAMES)}

    body = get(client, keys["read"], "/v1/taxonomy")
    assert body["version"] == 2 and body["taxonomy"]["name"] == "brand-team"
    names = ["our product", "animals & pets", "cats", "food & drink"]
    assert [c["name"] for c in body["taxonomy"]["categories"]] == names
    assert [v["version"] for v in get(client, keys["read"], "/v1/taxonomy/versions")["versions"]] == [2, 1]

    camera = categories_of(client, keys["read"], library.ids["camera.png"])
    assert camera["taxonomy_version"] == 2 and camera["taxonomy"] == "brand-team"
    assert "our product" in camera["assigned"], camera
    cat = categories_of(client, keys["read"], library.ids["chelsea.png"])
    assert {"animals & pets", "cats"} <= set(cat["assigned"]) and "our product" not in cat["assigned"]
    coffee = categories_of(client, keys["read"], library.ids["coffee.png"])
    assert "food & drink" in coffee["assigned"] and "our product" not in coffee["assigned"]
    assert {c["name"] for c in coffee["categories"]} == set(names)

    # the deleted category: no image carries it any more, and filtering by it finds nothing
    assert listed(client, keys["read"], library, "vehicles") == set()
    assert listed(client, keys["read"], library, "our product") >= {"camera.png"}
    listing = get(client, keys["read"], "/v1/categories")
    assert [c["name"] for c in listing["categories"]] == [*names, "other"]
    parents = {c["name"]: c["parent"] for c in listing["categories"]}
    assert parents["cats"] == "animals & pets" and parents["our product"] is None
    images = {c["name"]: c["images"] for c in listing["categories"]}
    assert images["our product"] >= 1 and images["cats"] >= 1
    counted = {row["category"] for row in get(client, keys["read"], "/v1/categories/counts")["counts"]}
    assert "vehicles" not in counted and "our product" in counted
    # team-b keeps the default taxonomy
    assert get(client, keys["other"], "/v1/taxonomy")["taxonomy"]["name"] == "social-media"

    # what GET returns, PUT accepts as JSON (a new version, the same categories)
    again = put_taxonomy(client, keys["admin"], json.dumps(body["taxonomy"]), "application/json")
    assert again.status_code == 200 and again.json() == {"version": 3, "recategorized": len(NAMES)}
    assert get(client, keys["read"], "/v1/taxonomy")["taxonomy"] == body["taxonomy"]
    assert categories_of(client, keys["read"], library.ids["camera.png"])["taxonomy_version"] == 3


def test_labels_then_training(client: httpx.Client, keys: dict[str, str], library: Library) -> None:
    statements = {
        "chelsea.png": {"categories": ["Animals & Pets", "cats"], "not": ["food & drink", "our product"]},
        "coffee.png": {"categories": ["food & drink"], "not": ["animals & pets", "our product"]},
        "camera.png": {"categories": ["our product"], "not": ["food & drink"]},
        "motorcycle.png": {"not": ["our product", "animals & pets"]},
    }
    for name, body in statements.items():
        image_id = library.ids[name]
        response = client.post(f"/v1/images/{image_id}/labels", headers=auth(keys["write"]), json=body)
        assert response.status_code == 200, response.text
        out = response.json()
        assert out["image_id"] == image_id
        shown = {row["category"] for row in out["labels"] if row["positive"]}
        assert shown == {n.lower() for n in body.get("categories", [])}  # canonical spelling
        assert all(row["source"] == "api" and row["created_by"].startswith("key:") for row in out["labels"])
    # a new statement about a category replaces the earlier one
    camera = library.ids["camera.png"]
    flip = {"categories": ["food & drink"], "not": ["our product"]}
    assert (
        client.post(f"/v1/images/{camera}/labels", headers=auth(keys["write"]), json=flip).status_code == 200
    )
    back = {"categories": ["our product"], "not": ["food & drink"]}
    assert (
        client.post(f"/v1/images/{camera}/labels", headers=auth(keys["write"]), json=back).status_code == 200
    )
    labels = get(client, keys["read"], f"/v1/images/{camera}/labels")["labels"]
    assert {(row["category"], row["positive"]) for row in labels} == {
        ("our product", True),
        ("food & drink", False),
    }

    response = client.post("/v1/categories/train", headers=auth(keys["write"]))
    assert response.status_code == 200, response.text
    report = response.json()  # the registry's route: a registered version, now production
    assert report["version"] == 1 and report["taxonomy_version"] == 3 and report["source"] == "registry"
    # images with one category train it (chelsea has two, motorcycle only "not" labels)
    assert report["images"] == 2 and report["recategorized"] == len(NAMES)
    assert report["positives"] == {"our product": 1, "food & drink": 1} and report["mode"] == "probe"
    assert set(report["skipped"]) == {"animals & pets", "cats"}  # zero-shot only
    production = get(client, keys["read"], "/v1/models")
    assert production["production"] == 1 and production["models"][0]["created_by"].startswith("key:")

    models = get(client, keys["read"], "/v1/categories/models")["models"]
    assert [(m["version"], m["source"], m["current"]) for m in models] == [(1, "registry", True)]
    assert sorted(models[0]["classes"]) == ["food & drink", "our product"]
    too_few = client.post("/v1/categories/train", headers=auth(keys["write"]), json={"mode": "finetune"})
    is_problem(too_few, 409, "not_enough_labels")
    assert "at least 10 labelled images in every category" in too_few.json()["detail"]
    is_problem(
        client.post("/v1/categories/train", headers=auth(keys["write"]), json={"mode": "deep"}),
        422,
        "invalid_request",
    )
    cat = categories_of(client, keys["read"], library.ids["chelsea.png"])
    assert cat["model_version"] == 1 and cat["taxonomy_version"] == 3
    assert "animals & pets" in cat["assigned"]
    trained = [c for c in cat["categories"] if "trained" in c]
    assert trained and all(0 <= c["trained"] <= 1 and 0 <= c["trained_weight"] <= 1 for c in trained)
    assert "our product" in categories_of(client, keys["read"], camera)["assigned"]

    response = client.post("/v1/categories/recategorize", headers=auth(keys["write"]))
    assert response.status_code == 200 and response.json() == {"recategorized": len(NAMES)}
    # team-b's images are untouched by team-a's model and taxonomy
    other = categories_of(client, keys["other"], library.b_ids["chelsea.png"])
    assert other["taxonomy"] == "social-media" and other["model_version"] is None


def test_recategorize_an_empty_workspace(client: httpx.Client, server: Server) -> None:
    """Regression: schemathesis got 500 "no such table: category_stats" here; a workspace with no image
    recategorises nothing, and its statistics (migration 0009) are there to be written."""
    key = server.key("categories-api-empty", "write")
    response = client.post("/v1/categories/recategorize", headers=auth(key))
    assert response.status_code == 200 and response.json() == {"recategorized": 0}
    listed = client.get("/v1/categories", headers=auth(key))
    assert listed.status_code == 200
