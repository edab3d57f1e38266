"""Issue 21's node-kill test: a real two-node Ray cluster on loopback (a head and a second node, 1 CPU
each, one analysis actor on each), a real PostgreSQL, and `feedlens ingest --ray` run as a user runs it. The
second node's raylet is SIGKILLed mid-ingest; the command must still finish with every image stored once.

The head declares a silent node dead after about 4 s here (tests/e2e/ray_cluster.py QUICK_NODE_DEATH) instead
of Ray's default of about 15 s, to keep the test short; the recovery path is the same.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from feedlens.storage.database import Database
from feedlens.storage.tables import Image as ImageRow
from tests.e2e.ray_cluster import QUICK_NODE_DEATH, RayNode, node_env

pytest.importorskip("ray", reason="the `cluster` extra is not installed")
pytestmark = pytest.mark.slow

FEEDLENS = str(Path(sys.executable).parent / "feedlens")
COPIES = 10  # crops of each sample photo: 100 distinct images, several seconds of analysis on two actors
BATCH = 4  # small batches, so that work is in flight on both nodes when one dies
INGEST_TIMEOUT_S = 120


def crops(sample_dir: Path, dest: Path) -> list[Path]:
    """COPIES distinct ~0.2 MP JPEG crops of every sample photo (different bytes, so each is analysed)."""
    dest.mkdir()
    made: list[Path] = []
    for photo in sorted(sample_dir.iterdir()):
        with Image.open(photo) as im:
            rgb = im.convert("RGB")
        for k in range(COPIES):
            side = 1.0 - 0.05 * k
            w, h = round(rgb.width * side), round(rgb.height * side)
            left, top = (rgb.width - w) * k // COPIES, (rgb.height - h) * (COPIES - k) // COPIES
            crop = rgb.crop((left, top, left + w, top + h))
            crop.thumbnail((640, 640))
            out = io.BytesIO()
            crop.save(out, "JPEG", quality=88)
            made.append(dest / f"{photo.stem}-{k}.jpg")
            made[-1].write_bytes(out.getvalue())
    return made


@pytest.fixture
def cluster() -> Iterator[tuple[RayNode, RayNode]]:
    """A head and a second node, 1 CPU each; every process of both is gone afterwards."""
    head = RayNode(cpus=1, system_config=QUICK_NODE_DEATH)
    second = RayNode(cpus=1, head=head.address)
    try:
        head.start()
        second.start()
        yield head, second
    finally:
        second.stop()
        head.stop()
        assert not head.processes() and not second.processes()


def stored(database: Database) -> tuple[int, int]:
    """(image rows, distinct SHA-256 among them)."""
    with database.session() as session:
        rows = session.execute(select(func.count(), func.count(ImageRow.sha256.distinct()))).one()
    return int(rows[0]), int(rows[1])


def test_ingest_finishes_when_a_node_is_killed_mid_ingest(
    cluster: tuple[RayNode, RayNode], sample_dir: Path, postgres_url: str, tmp_path: Path
) -> None:
    head, second = cluster
    images = crops(sample_dir, tmp_path / "photos")
    env = node_env() | {
        "FEEDLENS_DATABASE_URL": postgres_url,
        "FEEDLENS_DATA_DIR": str(tmp_path / "data"),
        "FEEDLENS_ANALYZERS": "labels,properties",
        "FEEDLENS_BATCH_SIZE": str(BATCH),
    }
    database = Database(postgres_url)
    database.migrate()  # here rather than by the driver, so that the rows can be counted from the start
    log = tmp_path / "ingest.log"
    command = [FEEDLENS, "ingest", str(tmp_path / "photos"), "-w", "nodeloss", "--ray", head.address]
    with log.open("wb") as out:
        driver = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + INGEST_TIMEOUT_S
        # kill once the second node's actor has loaded its models and a batch is stored: work is in flight
        while (before := stored(database)[0]) < BATCH or not second.analysing():
            assert driver.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        second.kill_raylet()
        killed_at = time.monotonic()
        code = driver.wait(INGEST_TIMEOUT_S)
        recovered_in = time.monotonic() - killed_at
        output = log.read_text()
        assert code == 0, output
        assert before < len(images), "the ingest finished before the kill: the test proves nothing"
        assert f"images: {len(images)} added, 0 already stored, 0 failed" in output, output
        assert stored(database) == (len(images), len(images))  # every image once, none twice
        print(f"node lost after {before} of {len(images)} images stored; finished {recovered_in:.1f} s later")
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(10)
        database.dispose()
