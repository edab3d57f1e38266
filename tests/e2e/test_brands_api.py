"""The brands API against a real server (the e2e shared one, in this module's workspaces): register with a
logo, see mentions in results, filters, search and counts; every bad input refused with its code and
nothing half-stored."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from tests.support.api import auth, is_problem, store
from tests.support.logos import composite, logo, png, words


@pytest.fixture(scope="module")
def images(client: httpx.Client, keys: dict[str, str], sample_dir: Path) -> dict[str, str]:
    """Stored before the brand exists: registering it must find them (the rescan)."""
    key = keys["write"]
    return {
        "composite": store(client, key, composite(sample_dir / "chelsea.png", logo()), "composite.jpg"),
        "coffee": store(client, key, (sample_dir / "coffee.png").read_bytes(), "coffee.png"),
        "sign": store(client, key, words("Drink ZORBLAX today"), "sign.png"),
    }


def ids(body: dict) -> set[str]:  # type: ignore[type-arg]
    return {item["id"] for item in body["items"]}


def test_register_and_find(client: httpx.Client, keys: dict[str, str], images: dict[str, str]) -> None:
    response = client.post(
        "/v1/brands",
        headers=auth(keys["write"]),
        data={"name": "Zorblax", "aliases": ["Zorblax Cola"], "hashtags": ["#ZorblaxLife"]},
        files=[("logos", ("zorblax.png", png(logo()), "image/png"))],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["brand"]["name"] == "Zorblax" and body["brand"]["hashtags"] == ["ZorblaxLife"]
    assert body["scanned"] == 3
    listed = client.get("/v1/brands", headers=auth(keys["read"])).json()
    assert listed["version"] == 1 and [b["name"] for b in listed["brands"]] == ["Zorblax"]

    found = client.get("/v1/images", params={"brand": "zorblax"}, headers=auth(keys["read"])).json()
    assert ids(found) == {images["composite"], images["sign"]}
    one = client.get(f"/v1/images/{images['composite']}", headers=auth(keys["read"])).json()
    mention = one["results"]["brands"]["mentions"][0]
    assert mention["brand"] == "Zorblax" and "logo" in mention["kinds"]
    counts = client.get("/v1/brands/counts", headers=auth(keys["read"])).json()["counts"]
    assert sum(c["images"] for c in counts) == 2 and {c["brand"] for c in counts} == {"Zorblax"}
    search = client.get("/v1/search", params={"q": "cat", "brand": "Zorblax"}, headers=auth(keys["read"]))
    assert search.status_code == 200 and {h["image_id"] for h in search.json()["items"]} <= {
        images["composite"]
    }
    # a new image is scanned at ingest; another workspace sees neither brand nor mentions
    posted = store(client, keys["write"], words("ZORBLAX COLA"), "cola.png")
    assert posted in ids(
        client.get("/v1/images", params={"brand": "Zorblax"}, headers=auth(keys["read"])).json()
    )
    assert client.get("/v1/brands", headers=auth(keys["other"])).json()["brands"] == []
    assert client.get("/v1/brands/Zorblax", headers=auth(keys["other"])).status_code == 404


def test_json_registration_and_removal(
    client: httpx.Client, keys: dict[str, str], images: dict[str, str]
) -> None:
    payload = {"name": "Acme", "aliases": ["Acme Inc"], "logos": [base64.b64encode(png(logo())).decode()]}
    response = client.post(
        "/v1/brands", params={"rescan": "false"}, headers=auth(keys["write"]), json=payload
    )
    assert response.status_code == 200 and response.json()["scanned"] is None
    logo_id = response.json()["brand"]["logos"][0]["id"]
    assert client.delete(f"/v1/brands/Acme/logos/{logo_id}", headers=auth(keys["write"])).status_code == 204
    assert client.get("/v1/brands/acme", headers=auth(keys["read"])).json()["logos"] == []
    assert client.delete("/v1/brands/Acme", headers=auth(keys["write"])).status_code == 204
    is_problem(client.delete("/v1/brands/Acme", headers=auth(keys["write"])), 404, "not_found")


@pytest.mark.parametrize(
    ("logo_bytes", "status", "code"),
    [
        (b"%PDF-1.4 not an image", 422, "logo_unreadable"),
        (b"", 422, "logo_unreadable"),
        (png(logo().resize((10, 6))), 422, "logo_too_small"),
        (png(logo().convert("RGB").point(lambda _: 128)), 422, "logo_no_features"),
    ],
)
def test_bad_logos(
    client: httpx.Client, keys: dict[str, str], logo_bytes: bytes, status: int, code: str
) -> None:
    files = [
        ("logos", ("good.png", png(logo()), "image/png")),
        ("logos", ("bad.png", logo_bytes, "image/png")),
    ]
    response = client.post("/v1/brands", headers=auth(keys["write"]), data={"name": "Bad Co"}, files=files)
    is_problem(response, status, code)
    assert "bad.png" in response.json()["detail"]
    assert client.get("/v1/brands/Bad Co", headers=auth(keys["read"])).status_code == 404  # nothing stored


def test_bad_requests(client: httpx.Client, keys: dict[str, str]) -> None:
    write = auth(keys["write"])
    is_problem(client.post("/v1/brands", headers=write, data={"aliases": ["x"]}), 422, "invalid_request")
    is_problem(client.post("/v1/brands", headers=write, json={"name": ""}), 422, "invalid_request")
    is_problem(
        client.post("/v1/brands", headers=write, json={"name": "x", "logos": ["%%%"]}), 422, "invalid_base64"
    )
    is_problem(
        client.post("/v1/brands", headers=write, json={"name": "x", "colour": "red"}), 422, "invalid_request"
    )
    is_problem(
        client.post("/v1/brands", headers=write, content=b"name=x", params={}), 415, "unsupported_media_type"
    )
    is_problem(
        client.post("/v1/brands", headers={**write, "content-type": "application/json"}, content=b"{"),
        422,
        "invalid_request",
    )
    is_problem(client.post("/v1/brands", headers=write, json={"name": "x" * 200}), 422, "invalid_request")
    is_problem(client.post("/v1/brands", headers=auth(keys["read"]), json={"name": "x"}), 403, "forbidden")
    is_problem(client.post("/v1/brands/rescan", headers=auth(keys["read"])), 403, "forbidden")
    is_problem(
        client.get("/v1/brands/counts", params={"since": "2026-02-01", "until": "2026-01-01"}, headers=write),
        422,
        "invalid_request",
    )
    is_problem(client.delete("/v1/brands/nobody/logos/1", headers=write), 404, "not_found")
