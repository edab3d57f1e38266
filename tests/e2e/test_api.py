"""The HTTP API as a client sees it: a real server process with real models, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from feedlens.storage.database import Database
from feedlens.storage.tables import JobItem
from tests.conftest import encode
from tests.e2e.server import Launch, Server, Team, on_postgres, wait_for_job
from tests.support.api import auth, is_problem
from tests.support.images import png_with_bad_crc, truncated_jpeg

FAST = "labels,safety,faces,properties"  # OCR costs ~0.5 s an image; tested where it matters


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, launch: Launch) -> Iterator[Server]:
    """Its own server, on SQLite and on PostgreSQL: URL fetching on, a queue of one, a 200-request burst
    and 4 MB / 8 MB byte limits, the limits these tests run into."""
    env = {
        "FEEDLENS_FETCH__ENABLED": "true",
        "FEEDLENS_FETCH__ALLOWED_NETWORKS": '["127.0.0.1/32"]',
        "FEEDLENS_API__QUEUE_SIZE": "1",
        "FEEDLENS_API__BURST": "200",
        "FEEDLENS_API__MAX_REQUEST_BYTES": str(8 * 1024 * 1024),
        "FEEDLENS_DECODE__MAX_BYTES": str(4 * 1024 * 1024),
        "FEEDLENS_DECODE__MAX_PIXELS": "50000000",
    }
    if request.param == "postgresql":
        env |= on_postgres(request, "api")
    process = launch(f"api-{request.param}", env)
    yield process
    process.stop()  # now, not at the module's end: one parametrisation's server at a time


def upload(
    client: httpx.Client, key: str, data: bytes, name: str = "a.png", path: str = "/v1/analyze", **form: str
) -> httpx.Response:
    return client.post(path, headers=auth(key), files={"file": (name, data)}, data=form or None)


class _Files(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}  # noqa: RUF012 - set per server below

    def do_GET(self) -> None:
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", self.path.split("to=", 1)[1])
            self.end_headers()
            return
        data = self.files.get(self.path)
        self.send_response(200 if data else 404)
        self.send_header("Content-Length", str(len(data or b"")))
        self.end_headers()
        self.wfile.write(data or b"")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def file_server(sample_dir: Path) -> Iterator[str]:
    handler = type("Files", (_Files,), {"files": {"/cat.png": (sample_dir / "chelsea.png").read_bytes()}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


# -- health, docs, metrics -------------------------------------------------------------------------------
def test_health_docs_metrics(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/analyze", "/v1/images", "/v1/images/{image_id}", "/v1/batches", "/v1/jobs/{job_id}"} <= set(
        paths
    )
    metrics = client.get("/metrics").text
    assert "feedlens_http_requests_total" in metrics and 'route="/healthz"' in metrics


# -- access ----------------------------------------------------------------------------------------------
def test_auth_scopes_and_workspace_isolation(
    client: httpx.Client, keys: dict[str, str], sample_dir: Path
) -> None:
    is_problem(client.get("/v1/images"), 401, "unauthorized")
    is_problem(client.get("/v1/images", headers=auth("fl_not-a-real-key")), 401, "unauthorized")
    data = (sample_dir / "coffee.png").read_bytes()
    is_problem(upload(client, keys["read"], data, path="/v1/images"), 403, "forbidden")
    stored = upload(client, keys["write"], data, path="/v1/images", analyzers=FAST)
    assert stored.status_code in (200, 201), stored.text
    image_id = stored.json()["id"]
    assert client.get(f"/v1/images/{image_id}", headers=auth(keys["read"])).status_code == 200
    # another workspace's key: not found, not forbidden (it must not learn the id exists)
    is_problem(client.get(f"/v1/images/{image_id}", headers=auth(keys["other"])), 404, "not_found")
    is_problem(client.delete(f"/v1/images/{image_id}", headers=auth(keys["other"])), 404, "not_found")
    assert client.get(f"/v1/images/{image_id}/thumbnail", headers=auth(keys["other"])).status_code == 404
    listed = client.get("/v1/images", headers=auth(keys["other"])).json()["items"]
    assert image_id not in {i["id"] for i in listed}
    # erasing an author needs admin
    is_problem(client.delete("/v1/authors/someone", headers=auth(keys["write"])), 403, "forbidden")


def test_rate_limit_answers_429_with_retry_after(server: Server, client: httpx.Client, team: Team) -> None:
    key = server.key(team.a, "read")
    # Ask until refused: the bucket (burst 200, 600/min refill) empties once requests outpace the refill,
    # however slowly a loaded machine serves them (a fixed count of 230 was not enough under load).
    codes: list[int] = []
    refused: httpx.Response | None = None
    deadline = time.monotonic() + 120
    while refused is None and time.monotonic() < deadline:
        response = client.get("/v1/images?limit=1", headers=auth(key))
        codes.append(response.status_code)
        if response.status_code == 429:
            refused = response  # checked as it came: a later request may find a refilled token
    assert refused is not None and 500 not in codes and len(codes) > 200
    is_problem(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1


# -- analyze ---------------------------------------------------------------------------------------------
def test_analyze_multipart_base64_and_url(
    client: httpx.Client, keys: dict[str, str], sample_dir: Path, file_server: str
) -> None:
    data = (sample_dir / "chelsea.png").read_bytes()
    by_upload = upload(client, keys["read"], data, analyzers=FAST)
    assert by_upload.status_code == 200, by_upload.text
    body = by_upload.json()
    assert set(body["results"]) == set(FAST.split(","))
    assert body["results"]["labels"]["labels"][0]["name"] == "Cat"  # everyday words, specific first
    assert body["width"] == 451 and body["versions"]["labels"]
    b64 = client.post(
        "/v1/analyze",
        headers=auth(keys["read"]),
        json={"image": {"content": base64.b64encode(data).decode()}, "analyzers": ["labels"]},
    )
    assert b64.status_code == 200 and b64.json()["results"]["labels"] == body["results"]["labels"]
    by_url = client.post(
        "/v1/analyze",
        headers=auth(keys["read"]),
        json={"image": {"url": f"{file_server}/cat.png"}, "analyzers": ["labels"]},
    )
    assert by_url.status_code == 200, by_url.text
    assert by_url.json()["sha256"] == body["sha256"]
    # nothing was stored
    listed = client.get("/v1/images", headers=auth(keys["read"])).json()["items"]
    assert body["sha256"] not in {i["sha256"] for i in listed}


def test_every_bad_input_gets_its_4xx(
    client: httpx.Client, keys: dict[str, str], chelsea: Image.Image
) -> None:
    key = keys["read"]
    huge_pixels = encode(Image.new("1", (10_000, 10_000)), "PNG")  # tiny file, 100 Mpx header
    cases: list[tuple[bytes, int, str]] = [
        (b"", 422, "empty"),
        (b"just some text, not an image at all", 415, "unsupported_format"),
        (
            b"\x00" * (5 * 1024 * 1024),
            413,
            "too_large",
        ),  # over the decoder's 4 MB, under the 8 MB request cap
        (huge_pixels, 413, "too_many_pixels"),
        (encode(Image.new("RGB", (8, 8)), "PNG"), 422, "too_small"),
        (png_with_bad_crc(chelsea), 422, "corrupt"),
        (truncated_jpeg(chelsea), 422, "truncated"),
    ]
    for data, status, code in cases:
        is_problem(upload(client, key, data, analyzers="labels"), status, code)
    is_problem(
        client.post("/v1/analyze", headers=auth(key), json={"image": {"content": "%%% not base64"}}),
        422,
        "invalid_base64",
    )
    is_problem(
        client.post(
            "/v1/analyze", headers={**auth(key), "content-type": "application/json"}, content=b"{oops"
        ),
        422,
        "invalid_json",
    )
    is_problem(client.post("/v1/analyze", headers=auth(key), json={"image": {}}), 422, "invalid_request")
    is_problem(
        client.post("/v1/analyze", headers={**auth(key), "content-type": "text/plain"}, content=b"x"),
        415,
        "unsupported_media_type",
    )
    is_problem(
        upload(client, key, encode(chelsea, "PNG"), analyzers="labels,unicorns"), 422, "unknown_analyzer"
    )
    is_problem(
        client.post(
            "/v1/analyze", headers=auth(key), data={"analyzers": "labels"}, files={"other": ("x", b"1")}
        ),
        422,
        "missing_file",
    )
    # over the request cap: refused before the body is read
    is_problem(upload(client, key, b"\x00" * (9 * 1024 * 1024)), 413, "request_too_large")
    for path in ("/v1/images?author=a%00b", "/v1/images/ab%00cd", "/v1/jobs/%00"):
        is_problem(client.get(path, headers=auth(key)), 422, "invalid_request")
    assert client.get("/readyz").status_code == 200  # and the server is still fine


def test_ssrf_attempts_are_refused(client: httpx.Client, keys: dict[str, str], file_server: str) -> None:
    port = file_server.rsplit(":", 1)[1]
    refused = [
        f"http://127.0.0.2:{port}/cat.png",  # loopback outside the allowed 127.0.0.1/32
        f"{file_server}/redirect?to=http://127.0.0.2:{port}/cat.png",  # allowed host redirecting inside
        "file:///etc/passwd",
        "http://10.0.0.1/x.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x.jpg",
        "gopher://127.0.0.1/",
    ]
    for url in refused:
        response = client.post("/v1/analyze", headers=auth(keys["read"]), json={"image": {"url": url}})
        assert response.status_code == 400, (url, response.text)
        assert response.json()["code"] in {"address_refused", "url_scheme_refused"}, url


def test_overload_gets_429_not_5xx(client: httpx.Client, keys: dict[str, str], chelsea: Image.Image) -> None:
    data = encode(chelsea.resize((1600, 1064)), "JPEG", quality=90)
    # the server admits 1 running + 1 queued (FEEDLENS_API__QUEUE_SIZE=1); send 8 at once
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: upload(client, keys["read"], data, "big.jpg"), range(8)))
    codes = [r.status_code for r in responses]
    assert all(c in (200, 429) for c in codes), codes
    assert codes.count(429) >= 1 and codes.count(200) >= 2
    busy = next(r for r in responses if r.status_code == 429)
    is_problem(busy, 429, "server_busy")
    assert int(busy.headers["Retry-After"]) >= 1


# -- library ---------------------------------------------------------------------------------------------
def _post(**fields: Any) -> str:
    return json.dumps(fields)


def test_store_query_filter_paginate_and_erase(
    server: Server, client: httpx.Client, keys: dict[str, str], sample_dir: Path
) -> None:
    key = keys["write"]
    posts = {
        "chelsea.png": _post(
            id="p1", platform="instagram", author="@alice", caption="my cat #Caturday", likes=10
        ),
        "astronaut.png": _post(
            id="p2", platform="instagram", author="bob", hashtags=["space"], created_at="2026-01-02T10:00:00Z"
        ),
        "rocket.jpg": _post(id="p3", platform="x", author="alice", hashtags=["space", "launch"]),
        "motorcycle.png": _post(id="p4", platform="x", author="carol"),
    }
    ids = {}
    for name, post in posts.items():
        response = upload(
            client, key, (sample_dir / name).read_bytes(), name, "/v1/images", analyzers=FAST, post=post
        )
        assert response.status_code == 201, response.text
        ids[name] = response.json()["id"]
    again = upload(
        client, key, (sample_dir / "chelsea.png").read_bytes(), "again.png", "/v1/images", analyzers=FAST
    )
    assert (
        again.status_code == 200
        and again.json()["status"] == "duplicate"
        and again.json()["id"] == ids["chelsea.png"]
    )

    def find(**params: Any) -> set[str]:
        response = client.get("/v1/images", headers=auth(key), params=params)
        assert response.status_code == 200, response.text
        return {i["id"] for i in response.json()["items"]}

    assert find(label="cat") == {ids["chelsea.png"]}
    assert find(hashtag="#caturday") == {ids["chelsea.png"]}
    assert find(hashtag="space") == {ids["astronaut.png"], ids["rocket.jpg"]}
    assert find(author="@alice") == {ids["chelsea.png"], ids["rocket.jpg"]}
    assert find(platform="x") == {ids["rocket.jpg"], ids["motorcycle.png"]}
    assert find(posted_since="2026-01-01T00:00:00Z", posted_until="2026-01-03T00:00:00Z") == {
        ids["astronaut.png"]
    }
    assert ids["astronaut.png"] in find(min_faces=1) and ids["chelsea.png"] not in find(min_faces=1)
    assert find(safety="safe") >= set(ids.values())
    is_problem(
        client.get("/v1/images", headers=auth(key), params={"safety": "maybe"}), 422, "invalid_request"
    )
    is_problem(
        client.get("/v1/images", headers=auth(key), params={"cursor": "garbage"}), 422, "invalid_cursor"
    )

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/images", headers=auth(key), params=params).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) and set(ids.values()) <= set(seen)

    one = client.get(f"/v1/images/{ids['chelsea.png']}", headers=auth(key)).json()
    assert one["posts"][0]["author"] == "alice" and one["posts"][0]["hashtags"] == ["caturday"]
    assert one["stale"] == [] and "labels" in one["results"]
    thumb = client.get(f"/v1/images/{ids['chelsea.png']}/thumbnail", headers=auth(key))
    assert thumb.headers["content-type"] == "image/webp"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320

    # erasure: rows and files
    blob = one["sha256"]
    blobs_before = sum(1 for p in (server.data_dir / "blobs" / "originals").rglob("*") if p.is_file())
    assert client.delete(f"/v1/images/{ids['motorcycle.png']}", headers=auth(key)).status_code == 204
    is_problem(client.get(f"/v1/images/{ids['motorcycle.png']}", headers=auth(key)), 404, "not_found")
    blobs_after = sum(1 for p in (server.data_dir / "blobs" / "originals").rglob("*") if p.is_file())
    assert blobs_after == blobs_before - 1
    erased = client.delete("/v1/authors/@alice", headers=auth(keys["admin"])).json()
    assert erased["erased"] == {"posts": 2, "images": 2}
    assert find(author="alice") == set()
    assert ids["astronaut.png"] in find()
    assert blob  # the chelsea copy went with alice's post
    assert (
        sum(1 for p in (server.data_dir / "blobs" / "thumbnails").rglob("*") if p.is_file())
        == blobs_after - 2
    )


# -- batches ---------------------------------------------------------------------------------------------
def test_batch_job_with_good_and_bad_items(
    client: httpx.Client, keys: dict[str, str], sample_dir: Path, file_server: str
) -> None:
    b64 = lambda name: base64.b64encode((sample_dir / name).read_bytes()).decode()  # noqa: E731
    items = [
        {"content": b64("coffee.png"), "name": "coffee.png", "post": {"id": "b1", "author": "dan"}},
        {"content": b64("flower.jpg"), "name": "flower.jpg"},
        {"content": base64.b64encode(b"not an image").decode(), "name": "bad.txt"},
        {"url": f"{file_server}/cat.png"},
        {"url": f"{file_server}/missing.png"},
    ]
    created = client.post("/v1/batches", headers=auth(keys["write"]), json={"items": items})
    assert created.status_code == 202, created.text
    job = wait_for_job(client, keys["read"], created.json()["id"])
    assert (job["total"], job["done"], job["failed"], job["progress"]) == (5, 3, 2, 1.0)
    by_position = {i["position"]: i for i in job["items"]}
    assert by_position[2]["error"]["code"] == "unsupported_format"
    assert by_position[4]["error"]["code"] == "fetch_http_status"
    assert "labels" in by_position[0]["results"]
    is_problem(client.get(f"/v1/jobs/{created.json()['id']}", headers=auth(keys["other"])), 404, "not_found")
    is_problem(
        client.post("/v1/batches", headers=auth(keys["write"]), json={"items": []}), 422, "invalid_request"
    )
    is_problem(
        client.post(
            "/v1/batches", headers=auth(keys["write"]), json={"items": [{"content": "x", "url": "http://a"}]}
        ),
        422,
        "invalid_request",
    )


def test_job_resumes_after_server_killed(tmp_path: Path, sample_dir: Path, chelsea: Image.Image) -> None:
    # its own server, started here: this test kills it with -9 mid-job and starts it again
    server = Server(tmp_path / "restart", {"FEEDLENS_BATCH_SIZE": "2"}).start()
    try:
        key = server.key("team-r", "write")
        images = [encode(chelsea.rotate(angle, expand=True), "PNG") for angle in range(0, 120, 10)]
        items = [{"content": base64.b64encode(d).decode(), "name": f"r{n}.png"} for n, d in enumerate(images)]
        with httpx.Client(base_url=server.url, timeout=60) as client:
            job_id = client.post("/v1/batches", headers=auth(key), json={"items": items}).json()["id"]
            deadline = time.monotonic() + 120
            while client.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()["done"] < 2:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        server.kill()  # mid-job, with no chance to clean up
        database = Database(server.database_url)
        with database.session() as session:
            pending = session.scalar(
                select(func.count()).where(JobItem.job_id == job_id, JobItem.status == "pending")
            )
        database.dispose()
        assert pending and pending > 0, "the job finished before the kill: the test proves nothing"
        server.start()
        with httpx.Client(base_url=server.url, timeout=60) as client:
            job = wait_for_job(client, key, job_id)
            assert (job["done"], job["failed"]) == (12, 0)
            listed = client.get("/v1/images", headers=auth(key), params={"limit": 100}).json()["items"]
        assert len(listed) == 12 and len({i["sha256"] for i in listed}) == 12
        assert not list((server.data_dir / "blobs" / "staging").rglob("*.png"))
        staged = [p for p in (server.data_dir / "blobs" / "staging").rglob("*") if p.is_file()]
        assert staged == []
    finally:
        server.stop()


def test_concurrent_uploads_are_batched_and_each_gets_its_own_image(
    client: httpx.Client, server: Server, chelsea: Image.Image
) -> None:
    key = server.key("team-c", "write")
    images = [encode(chelsea.rotate(angle, expand=True), "PNG") for angle in (5, 15, 25, 35)]

    def polite(data: bytes) -> httpx.Response:  # a well-behaved client: on 429, wait and resend
        while (response := upload(client, key, data, "r.png", "/v1/images")).status_code == 429:
            time.sleep(0.2)
        return response

    with ThreadPoolExecutor(4) as pool:  # the server admits 2 at a time here (queue size 1)
        responses = list(pool.map(polite, images))
    assert [r.status_code for r in responses] == [201] * 4, [r.text for r in responses]
    ids = [r.json()["id"] for r in responses]
    assert len(set(ids)) == 4
    for data, response in zip(images, responses, strict=True):
        assert response.json()["size_bytes"] == len(data)  # each request got its own image back
