"""`feedlens ingest --ray` against a real Ray head node on loopback and a real PostgreSQL.

The head (`ray start --head --block`, 2 CPUs, no dashboard, usage stats off; tests/e2e/ray_cluster.py) runs
in its own process group from a temporary folder; the in-process CLI is the driver. Only `labels` and
`properties` are switched on to keep model loading (once per actor) short.
"""

from __future__ import annotations

import base64
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select

from feedlens.config import Settings
from feedlens.services.access import AccessService
from feedlens.services.factory import Services
from feedlens.storage.tables import Analysis, Image
from tests.e2e.ray_cluster import RayNode, free_port
from tests.e2e.server import RELAXED_LIMITS, Server, on_postgres, wait_for_job
from tests.support.api import auth
from tests.support.cli import in_process_cli

pytest.importorskip("ray", reason="the `cluster` extra is not installed")
pytestmark = pytest.mark.slow

ANALYZERS = ("labels", "properties")
FEEDLENS = str(Path(sys.executable).parent / "feedlens")


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """The address of a one-node Ray cluster on loopback; every process of it is stopped afterwards."""
    head = RayNode(cpus=2)
    try:
        yield head.start().address
    finally:
        head.stop()


def _wired(services: Services, settings: Settings, folder: Path, url: str) -> Services:
    update = {"data_dir": folder, "database_url": url, "analyzers": ANALYZERS}
    wired = services.with_settings(settings.model_copy(update=update))
    wired.database.migrate()
    return wired


def _stored(services: Services, workspace: str) -> dict[tuple[str, str], tuple[str, Any]]:
    """(file name, analyzer) -> (version, result) of a workspace's stored analyses."""
    workspace_id = AccessService(services.database).workspace_id(workspace)
    with services.database.session() as session:
        rows = session.execute(
            select(Image.source, Analysis.analyzer, Analysis.version, Analysis.result)
            .join(Analysis, Analysis.image_id == Image.id)
            .where(Image.workspace_id == workspace_id)
        )
        return {
            (Path(source).name, analyzer): (version, result) for source, analyzer, version, result in rows
        }


def _close(a: Any, b: Any) -> bool:
    """Equal, floats within 1e-4 (model threads and batch make differ in the last bits)."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, abs_tol=1e-4)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def test_cluster_ingest_stores_what_local_ingest_stores_exactly_once(
    services: Services, settings: Settings, sample_dir: Path, postgres_url: str, ray_head: str, tmp_path: Path
) -> None:
    wired = _wired(services, settings, tmp_path, postgres_url)
    feedlens = in_process_cli(wired)
    images = len(list(sample_dir.iterdir()))

    first = feedlens("ingest", sample_dir, "-w", "cluster", "--ray", ray_head)
    assert first.code == 0, first.stderr
    assert f"images: {images} added, 0 already stored, 0 failed" in first.stderr
    again = feedlens("ingest", sample_dir, "-w", "cluster", "--ray", ray_head)
    assert again.code == 0, again.stderr
    assert f"images: 0 added, {images} already stored, 0 failed" in again.stderr

    local = feedlens("ingest", sample_dir, "-w", "local")
    assert local.code == 0, local.stderr
    on_cluster, here = _stored(wired, "cluster"), _stored(wired, "local")
    names = {path.name for path in sample_dir.iterdir()}
    assert {(name, a) for name in names for a in ANALYZERS} <= on_cluster.keys()  # (hooks store more)
    assert on_cluster.keys() == here.keys()
    for key, (version, result) in on_cluster.items():
        assert version == here[key][0], key
        assert _close(result, here[key][1]), key

    # reanalysis on the cluster: the labels results are gone (as after a model update), recomputed there
    workspace_id = AccessService(wired.database).workspace_id("cluster")
    with wired.database.session() as session:
        ids = select(Image.id).where(Image.workspace_id == workspace_id)
        session.execute(delete(Analysis).where(Analysis.analyzer == "labels", Analysis.image_id.in_(ids)))
    redo = feedlens("reanalyze", "--analyzer", "labels", "-w", "cluster", "--ray", ray_head)
    assert redo.code == 0, redo.stderr
    assert f": {images} recomputed, 0 failed" in redo.stderr, redo.stderr
    again_stored = _stored(wired, "cluster")
    for name in names:
        version, result = again_stored[(name, "labels")]
        assert version == on_cluster[(name, "labels")][0] and _close(result, on_cluster[(name, "labels")][1])


def test_cluster_ingest_refuses_sqlite(
    services: Services, settings: Settings, sample_dir: Path, tmp_path: Path
) -> None:
    wired = _wired(services, settings, tmp_path, f"sqlite:///{tmp_path / 'feedlens.db'}")
    feedlens = in_process_cli(wired)
    run = feedlens("ingest", sample_dir, "-w", "cluster", "--ray", "127.0.0.1:1")
    assert run.code == 2
    assert "[cluster_needs_postgresql]" in run.stderr and "PostgreSQL" in run.stderr
    redo = feedlens("reanalyze", "--analyzer", "labels", "--ray", "127.0.0.1:1")
    assert redo.code == 2 and "[cluster_needs_postgresql]" in redo.stderr


def test_unreachable_cluster_is_a_clear_error(
    services: Services, settings: Settings, sample_dir: Path, postgres_url: str, tmp_path: Path
) -> None:
    wired = _wired(services, settings, tmp_path, postgres_url)
    run = in_process_cli(wired)("ingest", sample_dir, "-w", "nowhere", "--ray", f"127.0.0.1:{free_port()}")
    assert run.code == 2
    assert "[cluster_failed] cannot reach the Ray cluster" in run.stderr


def test_a_replica_with_a_cluster_analyses_batch_jobs_there(
    request: pytest.FixtureRequest, ray_head: str, sample_dir: Path, tmp_path: Path
) -> None:
    """`feedlens serve` with FEEDLENS_RAY_ADDRESS: the items of a batch it claims are analysed by the
    cluster's actors and stored by the replica, every one once."""
    env = {
        **RELAXED_LIMITS,
        **on_postgres(request, "ray-batches"),
        "FEEDLENS_ANALYZERS": ",".join(ANALYZERS),
        "FEEDLENS_RAY_ADDRESS": ray_head,
    }
    server = Server(tmp_path, env)
    request.addfinalizer(server.stop)
    server.start()
    key = server.key("ray-batches", "write")
    files = sorted(sample_dir.iterdir())[:4]
    items = [{"content": base64.b64encode(f.read_bytes()).decode(), "name": f.name} for f in files]
    items.append(dict(items[0]))  # the same bytes twice: one image
    with httpx.Client(base_url=server.url, timeout=60) as client:
        job_id = client.post("/v1/batches", headers=auth(key), json={"items": items}).json()["id"]
        job = wait_for_job(client, key, job_id, timeout=120)
    assert (job["done"], job["failed"], job["pending"]) == (5, 0, 0)
    assert len({i["image_id"] for i in job["items"]}) == 4
    assert "4 images of a batch job analysed on the Ray cluster" in server.log.read_text()


def test_a_replica_with_a_cluster_refuses_sqlite(tmp_path: Path) -> None:
    env = {"FEEDLENS_RAY_ADDRESS": "127.0.0.1:1", "FEEDLENS_DATA_DIR": str(tmp_path)}
    run = subprocess.run(
        [FEEDLENS, "serve", "--port", str(free_port())],
        check=False,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "[cluster_needs_postgresql]" in run.stderr, run.stderr
