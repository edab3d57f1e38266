"""Audience insights over a real feed export (the JSONL and CSV schema of docs/feeds.md, read by the real
reader) of invented but realistic posts about a coffee brand, on SQLite and PostgreSQL: sentiment per
image and post with its parts, monitoring per week, influencer rankings checked against sums done by
hand, author pages, filters, and places under each metadata policy.

The images are rows, not pixels: their text and faces results are typed results written as the analyzers
write them, and their brand and category facets as those services write them. The API, CLI and real
images are in tests/e2e/test_insights_api.py."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage

from feedlens.config import MetadataPolicy
from feedlens.core.filters import ImageFilter
from feedlens.services.analytics import Bucket, Window
from feedlens.storage import insights as rows_repo
from feedlens.storage import repositories as repo
from feedlens.storage.database import Database
from feedlens.storage.tables import Image
from tests.support.insights_feed import (
    Library,
    build,
)


@pytest.fixture
def library(database_url: str, tmp_path: Path) -> Iterator[Library]:
    built = build(database_url, tmp_path)
    yield built
    built.database.dispose()


def _post_sentiment(library: Library, post_id: str) -> dict[str, Any]:
    page = library.service.posts(library.workspace, rows_repo.SentimentQuery(limit=100), ImageFilter())
    return next(p for p in page["items"] if p["post_id"] == post_id)


def test_sentiment_of_posts_and_images_keeps_its_parts(library: Library) -> None:
    refresh = library.service.refresh
    assert refresh(library.workspace) == {"images": 25, "posts": 24, "places": 0}  # 24 posts, a carousel
    assert refresh(library.workspace) == {"images": 0, "posts": 0, "places": 0}  # all current: a query
    p1 = _post_sentiment(library, "p1")  # a glowing caption and a happy face
    assert p1["label"] == "positive" and p1["parts"]["caption"] > 0.5 and p1["parts"]["faces"] > 0.5
    assert p1["parts"]["image_text"] is None  # the image holds no text
    caption, faces = p1["parts"]["caption"], p1["parts"]["faces"]
    assert p1["score"] == pytest.approx((1.0 * caption + 0.5 * faces) / 1.5, abs=1e-3)
    p8 = _post_sentiment(library, "p8")  # VADER misses "Never again ... 😡"; the angry face does not
    assert p8["parts"]["caption"] == 0.0 and p8["parts"]["faces"] < -0.5 and p8["label"] == "negative"
    p5 = _post_sentiment(library, "p5")  # the screenshot's error message counts too
    assert p5["parts"]["image_text"] < 0 and p5["label"] == "negative"
    image = library.service.image(library.workspace, library.ids["p1"][0])
    assert image is not None and image["parts"] == p1["parts"] and image["label"] == "positive"
    assert library.service.image(library.other, library.ids["p1"][0]) is None  # another workspace's


def test_a_reexported_caption_changes_its_post(library: Library) -> None:
    before = _post_sentiment(library, "p13")
    with library.database.session() as session:
        pk = rows_repo.find_posts(session, library.workspace, [("instagram", "p13")])[("instagram", "p13")]
        repo.upsert_post(
            session,
            library.workspace,
            {
                "platform": "instagram",
                "post_id": "p13",
                "caption": "The new Brewly blend is awful. Bring back the old one!",
            },
            ["brewly"],
        )
    library.service.after_ingest(library.workspace, library.ids["p13"])  # what ingest calls after commit
    after = _post_sentiment(library, "p13")
    assert (
        before["label"] == "neutral" and after["label"] == "negative"
    )  # "Honestly" (+2.0) cancelled "awful"
    assert pk


def test_listings_filter_and_order(library: Library) -> None:
    service, ws = library.service, library.workspace
    negative = service.posts(ws, rows_repo.SentimentQuery(label="negative", limit=100), ImageFilter())
    scores = [p["score"] for p in negative["items"]]
    assert scores == sorted(scores) and all(s <= -0.05 for s in scores)
    assert negative["total"] == len(scores) > 5
    by_author = service.posts(ws, rows_repo.SentimentQuery(limit=100), ImageFilter(author="@SAM_K"))
    assert {p["post_id"] for p in by_author["items"]} == {"p5", "p8", "p11", "p17"}
    pets = service.posts(
        ws, rows_repo.SentimentQuery(order="positive", limit=100), ImageFilter(category="pets")
    )
    assert {p["post_id"] for p in pets["items"]} == {"p9", "p15", "p21", "p23"}
    week3 = service.posts(
        ws,
        rows_repo.SentimentQuery(limit=100),
        ImageFilter(
            posted_since=datetime(2026, 3, 16, tzinfo=UTC), posted_until=datetime(2026, 3, 23, tzinfo=UTC)
        ),
    )
    assert {p["post_id"] for p in week3["items"]} == {"p11", "p12", "p13", "p14", "p15", "p16"}
    images = service.images(
        ws, ImageFilter(brand="brewly"), rows_repo.SentimentQuery(max_score=-0.05, limit=5)
    )
    assert len(images["items"]) == 5 and images["total"] > 5
    assert all(i["score"] <= -0.05 for i in images["items"])


def test_weekly_monitoring_of_a_brand(library: Library) -> None:
    table = library.service.audience.monitor(library.workspace, "brand", Window(bucket=Bucket.WEEK), "Brewly")
    weeks = {r["period"]: r for r in table.rows}
    assert list(weeks) == ["2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23"]
    assert all(r["brand"] == "Brewly" for r in table.rows)  # the registered spelling
    assert [weeks[w]["posts"] for w in weeks] == [5, 5, 6, 5]
    assert weeks["2026-03-09"]["images"] == 6  # p6 is a carousel of two
    # week 3 by hand: 150+60+30 + 90+12+4 + 5200+640+300 + 300+25+10 + 700+20+5 + 410+80+20
    assert weeks["2026-03-16"]["engagement"] == 8056
    assert weeks["2026-03-16"]["negative"] == 4 and weeks["2026-03-16"]["negative_share"] == pytest.approx(
        4 / 6, abs=1e-4
    )
    hashtags = library.service.audience.monitor(
        library.workspace, "hashtag", Window(bucket=Bucket.WEEK), top=2
    )
    assert {r["hashtag"] for r in hashtags.rows} == {"brewly", "catsofinstagram"}


def test_influencers_match_a_hand_computation(library: Library) -> None:
    audience, window = library.service.audience, Window()
    table = audience.influencers(library.workspace, window, "brand", "brewly")
    # engagement of each author's Brewly posts, summed by hand from POSTS (likes + comments + shares)
    assert [(r["author"], r["engagement"]) for r in table.rows] == [
        ("latte_lena", 2575 + 3400 + 6140 + 3160),
        ("catmom", 952 + 725),
        ("nomad.nik", 570 + 335),
        ("coffee.critic", 510 + 144),
        ("dailygrind", 89 + 62 + 73 + 56 + 106 + 52 + 67),
        ("sam_k", 16 + 61 + 240 + 43),
    ]
    catmom = next(r for r in table.rows if r["author"] == "catmom")
    assert (catmom["posts"], catmom["posts_about"], catmom["share_about"]) == (4, 2, 0.5)
    by_posts = audience.influencers(library.workspace, window, "brand", "brewly", order="posts")
    assert [r["author"] for r in by_posts.rows] == [
        "dailygrind", "latte_lena", "sam_k", "coffee.critic", "nomad.nik", "catmom",
    ]  # fmt: skip
    sam = next(r for r in table.rows if r["author"] == "sam_k")
    assert sam["negative"] >= 3 and sam["sentiment"] < 0  # their sentiment toward the brand
    pets = audience.influencers(library.workspace, window, "category", "pets", limit=1)
    assert [r["author"] for r in pets.rows] == ["catmom"]


def test_author_page(library: Library) -> None:
    page = library.service.audience.author(library.workspace, "Nomad.Nik", Window(bucket=Bucket.WEEK))
    assert page is not None and page["author"] == "nomad.nik"
    assert page["summary"]["posts"] == 3 and page["summary"]["engagement"] == 570 + 335 + 2320
    assert {b["name"]: b["posts"] for b in page["brands"]} == {"Brewly": 2}
    assert {c["name"] for c in page["categories"]} == {"food & drink", "travel"}
    assert [p["post_id"] for p in page["posts"]] == ["p14", "p22", "p4"]  # newest first
    assert sum(r["posts"] for r in page["timeline"]) == 3
    assert library.service.audience.author(library.workspace, "nobody", Window()) is None
    assert library.service.audience.author(library.other, "nomad.nik", Window()) is None


def test_places_are_kept_only_when_the_operator_keeps_gps(database_url: str, tmp_path: Path) -> None:
    off = build(database_url, tmp_path)
    try:
        assert off.service.places.table(off.workspace, Window())["kept"] is False
        with pytest.raises(Exception, match="FEEDLENS_STORE_METADATA is none"):
            off.service.places.import_feed(off.workspace, off.feeds[0])
    finally:
        off.database.dispose()


def test_places_from_the_feed_and_exif(database_url: str, tmp_path: Path) -> None:
    lib = build(database_url, tmp_path, MetadataPolicy.ALL)
    try:
        from_jsonl = lib.service.places.import_feed(lib.workspace, lib.feeds[0])
        from_csv = lib.service.places.import_feed(lib.workspace, lib.feeds[1])
        assert (from_jsonl["posts"], from_jsonl["images"], from_jsonl["error_count"]) == (2, 2, 0)  # p4, p9
        assert (from_csv["posts"], from_csv["images"], from_csv["error_count"]) == (2, 2, 0)  # p14, p22
        bad = tmp_path / "places.jsonl"
        bad.write_text('{"id": "p3", "lat": 95, "lon": 0}\n{"id": "nope", "location": "Faro"}\n')
        report = lib.service.places.import_feed(lib.workspace, bad)
        assert report["error_count"] == 1 and "latitude 95" in report["errors"][0]
        assert report["unknown_posts"] == 1  # a post the workspace does not have: counted, not kept
        _exif_photo(lib, lib.ids["p21"][0])  # a phone photo taken in Porto, 41.1496 N 8.6109 W
        table = lib.service.places.table(lib.workspace, Window())
        places = {r["place"]: r for r in table["places"]}
        assert places["Lisbon, Portugal"]["images"] == 2 and places["Lisbon, Portugal"]["lat"] == 38.7
        assert places["Lisbon, Portugal"]["engagement"] == 570 + 2320
        assert places["Lisbon Airport"]["lat"] == 38.8  # its own 0.1° cell
        assert places["Porto"]["lat"] is None  # a name without coordinates: listed, not drawn
        assert places["41.1°N 8.6°W"]["sources"] == ["exif"]
        cell = lib.service.places.images(lib.workspace, Window(), lat=38.72, lon=-9.14)
        assert sorted(i["id"] for i in cell) == sorted(lib.ids["p4"] + lib.ids["p22"])
        assert lib.service.places.forget(lib.workspace) == 5
        assert [r["sources"] for r in lib.service.places.table(lib.workspace, Window())["places"]] == [
            ["exif"]
        ]
    finally:
        lib.database.dispose()


def _exif_photo(lib: Library, image_id: str) -> None:
    """Give an image a stored copy whose EXIF GPS says 41°8'58.56" N, 8°36'39.24" W (kept as is under
    FEEDLENS_STORE_METADATA=all)."""
    exif = PILImage.Exif()
    exif[0x8825] = {1: "N", 2: (41.0, 8.0, 58.56), 3: "W", 4: (8.0, 36.0, 39.24)}
    buffer = io.BytesIO()
    PILImage.new("RGB", (64, 48), (120, 90, 60)).save(buffer, "JPEG", exif=exif)
    digest = lib.service.blobs.put("originals", buffer.getvalue())
    with lib.database.session() as session:
        row = session.get(Image, image_id)
        assert row is not None
        row.blob = digest


def test_the_migration_matches_the_tables(database_url: str) -> None:
    """Migration 0010 creates exactly what storage/insights_tables.py declares, on both databases."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from feedlens.storage.tables import Base

    database = Database(database_url)
    database.migrate()
    with database.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    database.dispose()
    ours = [d for d in diffs if "insight" in repr(d)]
    assert ours == []
