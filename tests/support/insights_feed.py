"""The coffee team's invented feed (posts, carousels, faces, image text) and its library, shared by the
insights service tests (tests/services/test_insights*.py)."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from feedlens.config import MetadataPolicy, Settings, load_settings
from feedlens.core.results import Box, Face, FacesResult
from feedlens.core.results.faces import EMOTIONS
from feedlens.core.results.text import TextLine, TextResult
from feedlens.services.access import AccessService
from feedlens.services.feeds import read_feed
from feedlens.services.insights import InsightsService
from feedlens.storage import repositories as repo
from feedlens.storage.blobs import BlobStore
from feedlens.storage.database import Database
from feedlens.storage.tables import Brand, Facet

# (post id, author, day of March 2026, caption, likes, comments, shares): a coffee chain's month. Week 1 is
# 2-8 March (2 March 2026 is a Monday), week 2 9-15, week 3 16-22 (a new blend: complaints), week 4 23-29.
POSTS = [
    (
        "p1",
        "latte_lena",
        2,
        "Morning ritual at @brewly ☕😍 best flat white in town! #coffee #brewly",
        2400,
        130,
        45,
    ),
    ("p2", "dailygrind", 3, "Brewly oat latte, solid as always #brewly", 85, 4, 0),
    ("p3", "dailygrind", 4, "quick espresso stop #coffeetime #brewly", 60, 2, 0),
    ("p4", "nomad.nik", 5, "Found a Brewly in Lisbon! Not bad at all 👍 #travel #brewly", 540, 22, 8),
    ("p5", "sam_k", 6, "Brewly app won't load my rewards again. Annoying. #brewly", 12, 3, 1),
    ("p6", "latte_lena", 9, "New seasonal menu at Brewly is 🔥🔥 #brewly #pumpkinspice", 3100, 210, 90),
    ("p7", "dailygrind", 10, "Brewly, you never disappoint ❤️ #brewly", 70, 3, 0),
    ("p8", "sam_k", 11, "Waited 25 minutes for a cold latte. Never again, Brewly. 😡 #brewly", 40, 15, 6),
    ("p9", "catmom", 12, "my cat judging my coffee order #catsofinstagram #brewly", 900, 40, 12),
    ("p10", "dailygrind", 13, "Brewly loyalty points finally fixed, thanks! #brewly", 55, 1, 0),
    (
        "p11",
        "sam_k",
        16,
        "Brewly raised prices AGAIN and the coffee tastes burnt. Disappointed. #brewly",
        150,
        60,
        30,
    ),
    (
        "p12",
        "dailygrind",
        17,
        "not happy with the new Brewly cups, they leak everywhere 😞 #brewly",
        90,
        12,
        4,
    ),
    (
        "p13",
        "latte_lena",
        17,
        "Honestly the new Brewly blend is awful. Bring back the old one! #brewly",
        5200,
        640,
        300,
    ),
    (
        "p14",
        "nomad.nik",
        18,
        "Brewly at the airport: rude staff and a 30 minute line 👎 #brewly #travel",
        300,
        25,
        10,
    ),
    ("p15", "catmom", 19, "cat approved the Brewly croissant 😺 #brewly", 700, 20, 5),
    (
        "p16",
        "coffee.critic",
        20,
        "Brewly's new blend: bitter, thin, overpriced. Hard pass. #brewly #review",
        410,
        80,
        20,
    ),
    ("p17", "sam_k", 23, "Still no refund from Brewly. Terrible support. #brewly", 30, 10, 3),
    ("p18", "dailygrind", 24, "Brewly, please fix the blend, it's bad #brewly", 45, 6, 1),
    (
        "p19",
        "latte_lena",
        25,
        "Trying other cafés this week since Brewly changed the blend 😕 #coffee #brewly",
        2800,
        300,
        60,
    ),
    ("p20", "coffee.critic", 26, "Brewly blend still disappointing. #brewly", 120, 20, 4),
    ("p24", "dailygrind", 27, "Glad Brewly kept the old mugs though, love them #brewly", 65, 2, 0),
    ("p21", "catmom", 3, "Sunday cuddles with Miso 🐱💕 #catsofinstagram", 1500, 60, 20),
    ("p22", "nomad.nik", 10, "Sunrise over Lisbon, what a view! #travel #lisbon", 2200, 80, 40),
    ("p23", "catmom", 24, "kitty nap time 😴 #catsofinstagram", 1100, 30, 10),
]
# where the export says a post was made (keys `feedlens ingest` ignores; `insights places import` reads)
LOCATIONS: dict[str, dict[str, Any]] = {
    "p4": {"location": "Lisbon, Portugal", "lat": 38.7223, "lon": -9.1393},
    "p14": {"location": {"name": "Lisbon Airport", "lat": 38.7742, "lng": -9.1342}},
    "p22": {"location": "Lisbon, Portugal", "lat": 38.7169, "lon": -9.1399},
    "p9": {"place": "Porto"},
}
CAROUSELS = {"p6": 2}  # post -> images (the rest have one)
FACES = {"p1": "happy", "p8": "angry"}  # a face on the post's first image, with this emotion at 0.8
TEXTS = {"p5": "Something went wrong. Try again later", "p13": "NEW BLEND"}


def face(emotion: str) -> FacesResult:
    emotions = {e: 0.8 if e == emotion else 0.2 / 6 for e in EMOTIONS}
    return FacesResult.of([Face(Box(0.3, 0.2, 0.6, 0.6), 0.95, "blazeface", emotions, emotion)])


def text(words: str) -> TextResult:
    return TextResult.of([[TextLine(words, 0.9, Box(0.1, 0.1, 0.9, 0.2), "rapidocr")]])


def categories_of(caption: str) -> list[str]:
    lowered = caption.lower()
    found = ["food & drink"] if any(w in lowered for w in ("brewly", "coffee", "latte")) else []
    found += ["pets"] if "cat" in lowered or "kitty" in lowered else []
    found += ["travel"] if "#travel" in lowered else []
    return found


def write_feeds(folder: Path, posts: list[tuple[str, str, int, str, int, int, int]]) -> tuple[Path, Path]:
    """The posts as an export: the first half as JSONL, the rest as CSV (both schemas of docs/feeds.md)."""
    records = []
    for post_id, author, day, caption, likes, comments, shares in posts:
        images = [f"photos/{post_id}-{n}.jpg" for n in range(CAROUSELS.get(post_id, 1))]
        when = datetime(2026, 3, 1, 9, tzinfo=UTC) + timedelta(days=day - 1)
        record: dict[str, Any] = {"id": post_id, "platform": "instagram", "author": f"@{author}"}
        record |= {"caption": caption}
        record |= {"created_at": when.isoformat(), "likes": likes, "comments": comments, "shares": shares}
        record["images"] = images
        record |= LOCATIONS.get(post_id, {})
        records.append(record)
    half = len(records) // 2
    jsonl = folder / "feed.jsonl"
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records[:half]))
    rows = records[half:]
    path = folder / "feed.csv"
    with path.open("w", newline="") as handle:
        columns = [
            "id",
            "platform",
            "author",
            "caption",
            "created_at",
            "likes",
            "comments",
            "shares",
            "images",
        ]
        writer = csv.DictWriter(handle, [*columns, "location", "lat", "lon"], extrasaction="ignore")
        writer.writeheader()
        for record in rows:
            row, where = dict(record), record.get("location")
            if isinstance(where, dict):  # CSV is flat: the nested location as three columns
                row |= {"location": where["name"], "lat": where["lat"], "lon": where["lng"]}
            writer.writerow(row | {"images": " ".join(row["images"]), "likes": f"{row['likes']:,}"})
    return jsonl, path


def ingest_rows(database: Database, workspace: int, feeds: tuple[Path, ...]) -> dict[str, list[str]]:
    """Store each feed record as ingest would (upsert_post, link_post_image), with an image row per image
    reference carrying the results and facets the analyzers and services would have written."""
    ids: dict[str, list[str]] = {}
    for feed in feeds:
        for row in read_feed(feed):
            assert row.record is not None, row.error
            post = row.record
            with database.session() as session:
                pk = repo.upsert_post(
                    session,
                    workspace,
                    {"platform": post.platform, "post_id": post.id, "author": post.author}
                    | {"caption": post.caption, "created_at": post.created_at, "likes": post.likes}
                    | {"comments": post.comments, "shares": post.shares, "url": post.url},
                    post.hashtags,
                )
                for position, ref in enumerate(post.images):
                    image_id = _image(session, workspace, ref, post.id if position == 0 else "", post.caption)
                    repo.link_post_image(session, pk, image_id, position)
                    ids.setdefault(post.id, []).append(image_id)
    return ids


def _image(session: object, workspace: int, ref: str, post_id: str, caption: str | None) -> str:
    digest = hashlib.sha256(f"{workspace}:{ref}".encode()).hexdigest()
    image_id, _ = repo.insert_image(
        session,  # type: ignore[arg-type]
        workspace_id=workspace,
        sha256=digest,
        blob=digest,
        format="jpeg",
        width=640,
        height=480,
        size_bytes=1000,
        source=ref,
    )
    results = {"faces": face(FACES[post_id]) if post_id in FACES else FacesResult.empty()}
    results["text"] = text(TEXTS[post_id]) if post_id in TEXTS else TextResult.empty(gated=True)  # type: ignore[assignment]
    repo.add_analyses(
        session,  # type: ignore[arg-type]
        image_id,
        {n: r.to_dict() for n, r in results.items()},
        {"faces": "faces-test", "text": "text-test"},
    )
    facets = [("categories", "category", c) for c in categories_of(caption or "")]
    facets += [("brands", "brand", "brewly")] if "brewly" in (caption or "").lower() else []
    session.add_all(  # type: ignore[attr-defined]
        Facet(image_id=image_id, analyzer=a, kind=k, value=v, score=0.9) for a, k, v in facets
    )
    return image_id


@dataclass
class Library:
    service: InsightsService
    database: Database
    workspace: int
    other: int
    ids: dict[str, list[str]]
    feeds: tuple[Path, Path]


def build(
    database_url: str, tmp_path: Path, policy: MetadataPolicy = MetadataPolicy.NONE, **settings: object
) -> Library:
    """The coffee team's library (and another team's few posts) from the feed export, with a service
    under these settings."""
    database = Database(database_url)
    database.migrate()
    access = AccessService(database)
    workspace, other = access.create_workspace("coffee-team"), access.create_workspace("other-team")
    with database.session() as session:
        session.add(Brand(workspace_id=workspace, name="Brewly"))
    feeds = write_feeds(tmp_path, POSTS)
    ids = ingest_rows(database, workspace, feeds)
    (tmp_path / "other").mkdir(exist_ok=True)
    ingest_rows(database, other, (write_feeds(tmp_path / "other", POSTS[:3])[0],))  # never counted
    wired: Settings = load_settings(data_dir=tmp_path, store_metadata=policy, **settings)
    service = InsightsService(database, BlobStore(tmp_path / "blobs"), wired)
    return Library(service, database, workspace, other, ids, feeds)
