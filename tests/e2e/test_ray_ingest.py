"""`feedlens ingest --ray` against a real Ray head node on loopback and a real PostgreSQL.

The head (`ray start --head --block`, 2 CPUs, no dashboard, usage stats off) runs in its own process group
from a temporary folder; the in-process CLI is the driver. Only `labels` and `properties` are switched on
to keep model loading (once per actor) short.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from feedlens.config import Settings
from feedlens.services.access import AccessService
from feedlens.services.factory import Services
from feedlens.storage.tables import Analysis, Image
from tests.support.cli import in_process_cli

pytest.importorskip("ray", reason="the `cluster` extra is not installed")
pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).parent / "ray")
SRC = Path(__file__).resolve().parents[2] / "src"  # the nodes import this checkout's feedlens
ANALYZERS = ("labels", "properties")
START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a one-node Ray cluster on loopback; stopped (its whole process group) afterwards."""
    folder = tmp_path_factory.mktemp("ray")
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    log = folder / "head.log"
    command = [RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port)]
    command += ["--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"]
    # Ray's unix sockets live under its temp dir and their paths may not pass 107 bytes: pytest's own
    # folders (deeper under pytest-xdist) are too long, so a short one of its own, removed afterwards
    short = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    command += ["--temp-dir", str(short)]
    with log.open("w") as out:
        head = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Ray runtime started" not in log.read_text():
            assert head.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(head)
        shutil.rmtree(short, ignore_errors=True)


def _stop(head: subprocess.Popen[bytes]) -> None:
    """SIGTERM the head's process group (its raylet, GCS and workers), SIGKILL what is left after 1 s."""
    for sig, wait in ((signal.SIGTERM, 1), (signal.SIGKILL, 10)):
        try:
            os.killpg(head.pid, sig)
        except ProcessLookupError:
            return
        try:
            head.wait(wait)
            os.killpg(head.pid, 0)  # raises once the whole group is gone
        except (subprocess.TimeoutExpired, PermissionError):
            continue
        except ProcessLookupError:
            return


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


def test_cluster_ingest_refuses_sqlite(
    services: Services, settings: Settings, sample_dir: Path, tmp_path: Path
) -> None:
    wired = _wired(services, settings, tmp_path, f"sqlite:///{tmp_path / 'feedlens.db'}")
    run = in_process_cli(wired)("ingest", sample_dir, "-w", "cluster", "--ray", "127.0.0.1:1")
    assert run.code == 2
    assert "[cluster_needs_postgresql]" in run.stderr and "PostgreSQL" in run.stderr


def test_unreachable_cluster_is_a_clear_error(
    services: Services, settings: Settings, sample_dir: Path, postgres_url: str, tmp_path: Path
) -> None:
    wired = _wired(services, settings, tmp_path, postgres_url)
    run = in_process_cli(wired)("ingest", sample_dir, "-w", "nowhere", "--ray", f"127.0.0.1:{_free_port()}")
    assert run.code == 2
    assert "[cluster_failed] cannot reach the Ray cluster" in run.stderr
