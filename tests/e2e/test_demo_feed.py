"""The `make run` demo's feed: valid under docs/feeds.md, dated back from today, and ingested with the sample
photos it links posts to (so the demo's engagement and hashtag charts have data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from feedlens.cli.serve import DEMO_POSTS, demo_feed
from feedlens.services.factory import Services
from feedlens.services.feeds import read_feed
from feedlens.storage.tables import Post
from tests.support.cli import Cli


def test_demo_feed_is_valid_recent_and_ingests(
    feedlens: Cli, cli_services: Services, sample_dir: Path, tmp_path: Path
) -> None:
    today = datetime(2026, 11, 23, 12, tzinfo=UTC)
    path = demo_feed(sample_dir, tmp_path / "demo", today)
    rows = list(read_feed(path))
    assert len(rows) == len(DEMO_POSTS) and all(r.ok for r in rows), [r.error for r in rows if not r.ok]
    records = [r.record for r in rows if r.record is not None]
    assert all(today - timedelta(days=30) <= r.created_at <= today for r in records if r.created_at)
    assert {"caturday", "coffee", "space"} <= {tag for r in records for tag in r.hashtags}
    run = feedlens("ingest", sample_dir, path, "-w", "demo")
    assert run.code == 0, run.stderr
    with cli_services.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Post)) == len(DEMO_POSTS)
    # a missing photo is left out, not a broken row
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "chelsea.png").write_bytes((sample_dir / "chelsea.png").read_bytes())
    assert [r.record.images for r in read_feed(demo_feed(partial, tmp_path / "p", today)) if r.record] == [
        [str((partial / "chelsea.png").resolve())]
    ]
