"""Two real `feedlens serve` replicas on one PostgreSQL database and one data folder (issue 21): an image
stored through one is found by a search on the other, and a batch job whose replica is killed with -9 in
the middle of a chunk is finished by the other, every item exactly once."""

from __future__ import annotations

import base64
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from feedlens.storage.database import Database
from feedlens.storage.tables import Image as ImageRow
from feedlens.storage.tables import JobItem, utcnow
from tests.conftest import encode
from tests.e2e.server import RELAXED_LIMITS, Server, on_postgres, wait_for_job
from tests.support.api import auth, store

LEASE_S = 3
# Only the models the checks need, so both replicas start in seconds; a short lease so the take-over
# happens within the test (the default is 60 s).
SETTINGS = {
    **RELAXED_LIMITS,
    "FEEDLENS_ANALYZERS": "labels,embedding",
    "FEEDLENS_BATCH_SIZE": "2",
    "FEEDLENS_JOBS__LEASE_SECONDS": str(LEASE_S),
    "FEEDLENS_JOBS__POLL_SECONDS": "0.2",
}


def similar(client: httpx.Client, key: str, data: bytes) -> list[str]:
    """Ids of the stored images that look like this upload, best first."""
    response = client.post("/v1/search/similar", headers=auth(key), files={"file": ("q.png", data)})
    assert response.status_code == 200, response.text
    return [hit["image_id"] for hit in response.json()["items"]]


def held_by(database: Database, replica: str, job_id: str, fresh: float | None = None) -> list[int]:
    """Items of the job the replica has claimed and not finished (`fresh`: claimed in the last seconds)."""
    query = select(JobItem.id).where(
        JobItem.job_id == job_id, JobItem.claimed_by == replica, JobItem.status == "pending"
    )
    if fresh is not None:  # the lease ends LEASE_SECONDS after the claim
        query = query.where(JobItem.lease_until > utcnow() + timedelta(seconds=LEASE_S - fresh))
    with database.session() as session:
        return list(session.scalars(query))


def test_two_replicas_share_search_and_finish_a_killed_replicas_job(
    request: pytest.FixtureRequest, tmp_path: Path, chelsea: Image.Image
) -> None:
    env = {**SETTINGS, **on_postgres(request, "replicas")}
    a, b = Server(tmp_path, env), Server(tmp_path, env)  # one data folder: the shared blob store
    for server in (a, b):
        request.addfinalizer(server.stop)  # also when the other one failed to start
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(Server.start, (a, b)))
    database = Database(a.database_url)
    try:
        key = a.key("replicas", "write")
        images = [encode(chelsea.rotate(angle, expand=True), "PNG") for angle in range(0, 240, 20)]
        with (
            httpx.Client(base_url=a.url, timeout=60) as on_a,
            httpx.Client(base_url=b.url, timeout=60) as on_b,
        ):
            first = store(on_a, key, images[0], "first.png")
            assert similar(on_b, key, images[0])[:1] == [first]  # B's index loads what A stored
            second = store(on_a, key, images[1], "second.png")
            assert similar(on_b, key, images[1])[:1] == [second]  # and catches up with what A adds later
            # a web-app session made on A is good on B (one signing secret in the shared data folder)
            assert on_a.post("/v1/session", json={"key": key}).status_code == 200
            cookie = {"feedlens_session": on_a.cookies["feedlens_session"]}
            assert httpx.get(f"{b.url}/v1/session", cookies=cookie).json()["workspace"] == "replicas"
            assert httpx.get(f"{b.url}/v1/session", cookies={"feedlens_session": "forged"}).status_code == 401

            items = [
                {"content": base64.b64encode(d).decode(), "name": f"r{n}.png"} for n, d in enumerate(images)
            ]
            job_id = on_a.post("/v1/batches", headers=auth(key), json={"items": items}).json()["id"]
            replica_a = f"{socket.gethostname()[:40]}:{a.port}"
            deadline = time.monotonic() + 60
            # a chunk claimed this instant: far from its commit (a chunk takes several hundred ms here)
            while not held_by(database, replica_a, job_id, fresh=0.1):
                assert time.monotonic() < deadline, "replica A never claimed a chunk"
                time.sleep(0.02)
            a.kill()  # mid-chunk: its claim stays in the table until the lease runs out
            killed_at = time.monotonic()
            claimed = held_by(database, replica_a, job_id)
            assert claimed, "A finished its chunk before the kill: the test proves nothing"
            job = wait_for_job(on_b, key, job_id, timeout=60)
            recovered_in = time.monotonic() - killed_at
        assert (job["done"], job["failed"], job["pending"]) == (12, 0, 0)
        with database.session() as session:
            retried = session.execute(
                select(JobItem.id, JobItem.attempts).where(JobItem.id.in_(claimed))
            ).all()
            stored = session.scalar(select(func.count()).select_from(ImageRow))
        assert retried and all(attempts == 2 for _, attempts in retried)  # A's chunk: started by A, then B
        assert stored == len(images)  # nothing stored twice (the first two uploads are in the batch too)
        assert len({i["image_id"] for i in job["items"]}) == len(images)
        assert recovered_in < 30, recovered_in
    finally:
        database.dispose()
