"""`feedlens ingest` killed with SIGKILL mid-run, then rerun: nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from PIL import Image
from sqlalchemy import func, select

from feedlens.analyzers.registry import DEFAULT_ANALYZERS
from feedlens.storage.database import Database
from feedlens.storage.tables import Analysis, Post, PostImage
from feedlens.storage.tables import Image as ImageRow
from tests.e2e.server import FEEDLENS


def _count(database: Database, table: type) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_kill_9_mid_ingest_then_rerun_completes_exactly_once(
    tmp_path: Path, sample_dir: Path, chelsea: Image.Image, database_url: str
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for angle in range(0, 160, 10):  # 16 distinct images
        chelsea.rotate(angle, expand=True).save(photos / f"cat-{angle:03d}.png")
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    feed = tmp_path / "feed.jsonl"
    rows = [
        {"id": "p1", "image": str(sample_dir / "coffee.png"), "author": "ann", "caption": "#coffee time"},
        {"id": "p2", "images": ["photos/cat-000.png", "photos/cat-010.png"], "author": "ben", "likes": 3},
        {"id": "p3", "image": str(sample_dir / "rocket.jpg"), "hashtags": ["space"]},
    ]
    feed.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken json\n")
    env = {
        **os.environ,
        "FEEDLENS_DATA_DIR": str(tmp_path / "data"),
        "FEEDLENS_DATABASE_URL": database_url,
        "FEEDLENS_BATCH_SIZE": "2",
    }
    command = [FEEDLENS, "ingest", str(photos), str(feed), "--workspace", "resume"]
    database = Database(database_url)
    try:
        first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 180
        while True:  # wait until some batches have committed, then kill without warning
            assert first.poll() is None, "ingest finished before it could be killed"
            assert time.monotonic() < deadline
            try:
                if _count(database, ImageRow) >= 4:
                    break
            except Exception:  # the schema may not exist yet
                pass
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        partial = _count(database, ImageRow)
        assert 4 <= partial < 18

        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert second.returncode == 0, second.stderr
        # the rerun names what cannot be stored: the broken file and the broken feed row (line 4)
        assert "broken.jpg" in second.stderr and f"{feed}:4" in second.stderr, second.stderr

        # 16 rotations + coffee + rocket; cat-000/010 are shared by the folder and post p2
        assert _count(database, ImageRow) == 18
        with database.session() as session:
            shas = list(session.scalars(select(ImageRow.sha256)))
            per_image = session.execute(
                select(Analysis.image_id, func.count()).group_by(Analysis.image_id)
            ).all()
        assert len(set(shas)) == 18
        # every analyzer, exactly once each, and the categories derived from them
        assert {n for _, n in per_image} == {len(DEFAULT_ANALYZERS) + 1}
        assert _count(database, Post) == 3
        assert _count(database, PostImage) == 4
        blobs = [p for p in (tmp_path / "data" / "blobs" / "originals").rglob("*") if p.is_file()]
        assert len(blobs) == 18 and not [p for p in blobs if p.name.startswith(".partial")]

        third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert "0 added" in third.stderr and _count(database, ImageRow) == 18
        # the bad file and the bad feed line are reported on every run, never stored
        assert "broken.jpg" in third.stderr and "feed_invalid_json" in third.stderr
    finally:
        database.dispose()
