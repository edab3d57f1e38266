"""The Ingestor with real models over real sample photos and feed exports, on SQLite and PostgreSQL.

What is checked is what ends up in the database and the blob store: dedup by content, one image per
content even inside a batch, failures that store nothing, posts upserted by (platform, post id).
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedlens.config import FetchLimits
from feedlens.services.access import AccessService
from feedlens.services.factory import Services
from feedlens.services.fetch import SafeFetcher
from feedlens.services.ingest import IngestItem, Ingestor, IngestSummary, ItemOutcome
from feedlens.services.library import Library
from feedlens.services.sources import items_from_paths
from feedlens.storage import repositories as repo
from feedlens.storage.tables import Analysis, Facet, Hashtag, Image, Post, PostImage

ANALYZERS = ["labels", "safety", "faces", "properties"]
PHOTOS = ["chelsea.png", "coffee.png", "rocket.jpg", "grace_hopper.jpg", "camera.png"]


Wire = Callable[..., tuple[Library, Ingestor]]


@pytest.fixture
def wire(stored_services: Services) -> Iterator[Wire]:
    """Makes (library, ingestor) over the test's database, as the API and CLI wire them."""
    fetchers: list[SafeFetcher] = []

    def make(
        analyzers: Sequence[str] = ANALYZERS, fetch: FetchLimits | None = None
    ) -> tuple[Library, Ingestor]:
        s = stored_services
        library = Library(s.database, s.blobs, s.decoder, s.settings)
        fetchers.append(SafeFetcher(fetch or s.settings.fetch))
        return library, Ingestor(library, s.pipeline(analyzers), fetchers[-1], batch_size=4)

    yield make
    for fetcher in fetchers:
        fetcher.close()


def rows(s: Services, table: type[Any]) -> int:
    with s.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def snapshot(s: Services) -> dict[str, int]:
    """Row counts of every table ingest writes, and blob files per kind."""
    counts = {t.__tablename__: rows(s, t) for t in (Image, Analysis, Facet, Post, PostImage, Hashtag)}
    counts.update({kind: s.blobs.count(kind) for kind in ("originals", "thumbnails", "staging")})
    return counts


def post_by_id(session: Session, post_id: str) -> Post:
    post = session.scalar(select(Post).where(Post.post_id == post_id))
    assert post is not None, post_id
    return post


def linked(session: Session, post: Post) -> list[tuple[int, str]]:
    found = session.execute(
        select(PostImage.position, Image.source)
        .join(Image, Image.id == PostImage.image_id)
        .where(PostImage.post_pk == post.id)
        .order_by(PostImage.position)
    )
    return [(position, Path(source).name) for position, source in found]


def tags(session: Session, post: Post) -> set[str]:
    return set(session.scalars(select(Hashtag.tag).where(Hashtag.post_pk == post.id)))


@pytest.fixture
def workspace(stored_services: Services) -> int:
    return AccessService(stored_services.database).create_workspace("team-a")


@pytest.fixture
def photos(sample_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS:
        shutil.copy(sample_dir / name, folder / name)
    return folder


# -- folders -----------------------------------------------------------------------------------------


def test_folder_is_added_then_a_rerun_only_finds_duplicates(
    wire: Wire, stored_services: Services, workspace: int, photos: Path
) -> None:
    _, ingestor = wire()
    summary = IngestSummary()
    outcomes = list(ingestor.ingest(workspace, items_from_paths([photos])))
    for outcome in outcomes:
        summary.count(outcome)
    assert [Path(o.item.source).name for o in outcomes] == sorted(PHOTOS)  # input order kept
    assert (summary.added, summary.duplicate, summary.failed) == (len(PHOTOS), 0, 0)
    assert len({o.image_id for o in outcomes}) == len(PHOTOS)
    before = snapshot(stored_services)
    assert before["images"] == before["originals"] == before["thumbnails"] == len(PHOTOS)
    assert before["analyses"] == len(PHOTOS) * len(ANALYZERS)
    files = sorted(p for p in stored_services.blobs.root.rglob("*") if p.is_file())

    again = list(ingestor.ingest(workspace, items_from_paths([photos])))
    assert [o.status for o in again] == ["duplicate"] * len(PHOTOS)
    assert [o.image_id for o in again] == [o.image_id for o in outcomes]
    assert snapshot(stored_services) == before
    assert sorted(p for p in stored_services.blobs.root.rglob("*") if p.is_file()) == files


def test_same_bytes_twice_in_one_batch_make_one_image(
    wire: Wire, stored_services: Services, workspace: int, sample_dir: Path
) -> None:
    _, ingestor = wire(["labels"])
    data = (sample_dir / "chelsea.png").read_bytes()
    items = [IngestItem("first\x00.png", data=data), IngestItem("second", data=data)]
    first, second = ingestor.process_batch(workspace, items)
    assert (first.status, second.status) == ("added", "duplicate")
    assert first.image_id == second.image_id
    with stored_services.database.session() as session:
        assert session.scalars(select(Image.source)).all() == ["first.png"]  # control characters dropped
    assert rows(stored_services, Image) == 1
    assert rows(stored_services, Analysis) == 1
    assert stored_services.blobs.count("originals") == 1


def test_bad_files_fail_with_decoder_codes_and_store_nothing(
    wire: Wire, stored_services: Services, workspace: int, photos: Path, sample_dir: Path
) -> None:
    jpeg = (sample_dir / "rocket.jpg").read_bytes()
    (photos / "corrupt.jpg").write_bytes(jpeg[:200] + bytes(4000))  # a JPEG header, then zeros
    (photos / "empty.png").write_bytes(b"")
    (photos / "notes.txt").write_text("not an image\n")
    (photos / "cut.png").write_bytes((sample_dir / "astronaut.png").read_bytes()[:5000])
    _, ingestor = wire()
    outcomes = {Path(o.item.source).name: o for o in ingestor.ingest(workspace, items_from_paths([photos]))}
    expected = {"corrupt.jpg": "corrupt", "empty.png": "empty", "notes.txt": "unsupported_format"}
    expected["cut.png"] = "truncated"
    for name, code in expected.items():
        outcome = outcomes[name]
        assert outcome.status == "failed" and outcome.image_id is None, name
        assert outcome.error is not None and outcome.error["code"] == code, (name, outcome.error)
        assert outcome.error.get("message"), name
    assert {n for n, o in outcomes.items() if o.status == "added"} == set(PHOTOS)
    counts = snapshot(stored_services)
    assert counts["images"] == counts["originals"] == counts["thumbnails"] == len(PHOTOS)
    assert counts["analyses"] == len(PHOTOS) * len(ANALYZERS)
    with stored_services.database.session() as session:
        names = {Path(s).name for s in session.scalars(select(Image.source))}
        per_image = session.execute(select(Analysis.image_id, func.count()).group_by(Analysis.image_id)).all()
    assert names == set(PHOTOS)
    assert {n for _, n in per_image} == {len(ANALYZERS)}  # no image stored without all its results


def test_a_batch_that_fails_to_commit_leaves_nothing_behind(
    wire: Wire, stored_services: Services, workspace: int, sample_dir: Path
) -> None:
    """The module promises: a batch's images, analyses and posts commit together or not at all."""
    _, ingestor = wire(["labels"])
    items = [IngestItem(n, data=(sample_dir / n).read_bytes()) for n in ("chelsea.png", "coffee.png")]

    def crash(session: Session, outcomes: list[ItemOutcome]) -> None:
        raise RuntimeError("the process died before commit")

    with pytest.raises(RuntimeError):
        ingestor.process_batch(workspace, items, on_commit=crash)
    assert rows(stored_services, Image) == 0
    assert rows(stored_services, Analysis) == 0
    # a retry then stores both images with their results
    outcomes = ingestor.process_batch(workspace, items)
    assert [o.status for o in outcomes] == ["added", "added"]
    assert rows(stored_services, Analysis) == 2


def test_items_from_paths_skips_feed_files_inside_folders(photos: Path) -> None:
    (photos / "feed.jsonl").write_text('{"id": "1", "image": "chelsea.png"}\n')
    (photos / "feed.csv").write_text("id,image\n1,chelsea.png\n")
    (photos / "sub").mkdir()
    (photos / "sub" / "more.ndjson").write_text('{"id": "2", "image": "../coffee.png"}\n')
    items = list(items_from_paths([photos]))
    assert sorted(Path(i.source).name for i in items) == sorted(PHOTOS)
    assert all(i.path is not None and i.post is None for i in items)
    # named directly, a feed is read as a feed
    feed_items = list(items_from_paths([photos / "feed.jsonl"]))
    assert [(i.path, i.post is not None) for i in feed_items] == [(photos / "chelsea.png", True)]


# -- feed exports ------------------------------------------------------------------------------------


def write_jsonl(path: Path, records: Sequence[dict[str, Any] | str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_feed_stores_posts_hashtags_and_carousels(
    wire: Wire, stored_services: Services, workspace: int, photos: Path
) -> None:
    feed = write_jsonl(
        photos.parent / "feed.jsonl",
        [
            {
                "id": "p1",
                "platform": "Instagram",
                "image": "photos/chelsea.png",
                "caption": "Nap time #Cats #sunday",
                "hashtags": ["pets"],
                "author": "@alice",
                "created_at": "2024-01-02T10:00:00Z",
                "likes": 120,
                "comments": "1,204",
                "url": "https://www.instagram.com/p/p1/",
            },
            {
                "post_id": 17,
                "network": "instagram",
                "carousel": ["photos/coffee.png", "photos/rocket.jpg"],
                "text": "breakfast #coffee",
                "username": "bob",
                "like_count": "1.2k",
            },
            {"id": "p3", "caption": "no picture"},
            "{not json",
            {"id": "p5", "platform": "instagram", "image": "photos/missing.jpg", "author": "eve"},
        ],
    )
    _, ingestor = wire(["labels"])
    outcomes = list(ingestor.ingest(workspace, items_from_paths([feed])))
    assert [o.status for o in outcomes] == ["added", "added", "added", "failed", "failed", "failed"]
    bad = {o.item.source: o.error or {} for o in outcomes[3:]}
    assert list(bad) == [f"{feed}:3", f"{feed}:4", str(photos / "missing.jpg")]  # bad rows name their line
    assert bad[f"{feed}:3"]["code"] == "feed_no_image"
    assert bad[f"{feed}:3"]["message"].startswith("line 3:")
    assert bad[f"{feed}:4"]["code"] == "feed_invalid_json"
    assert bad[str(photos / "missing.jpg")]["code"] == "unreadable"

    with stored_services.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Post)) == 2  # p5's only image failed
        p1, p17 = post_by_id(session, "p1"), post_by_id(session, "17")
        assert (p1.platform, p1.author, p1.likes, p1.comments) == ("instagram", "alice", 120, 1204)
        assert p1.caption == "Nap time #Cats #sunday" and p1.url == "https://www.instagram.com/p/p1/"
        assert p1.created_at is not None and p1.created_at.isoformat().startswith("2024-01-02T10:00:00")
        assert p1.hashtags == ["pets", "cats", "sunday"]
        assert tags(session, p1) == {"pets", "cats", "sunday"}
        assert (p17.author, p17.likes, tags(session, p17)) == ("bob", 1200, {"coffee"})
        assert linked(session, p1) == [(0, "chelsea.png")]
        assert linked(session, p17) == [(0, "coffee.png"), (1, "rocket.jpg")]


def test_csv_feed_stores_posts_and_reports_the_bad_row(
    wire: Wire, stored_services: Services, workspace: int, photos: Path
) -> None:
    feed = photos.parent / "export.csv"
    feed.write_text(
        "id,platform,image,images,caption,author,created_at,hashtags,likes,comments,shares\n"
        'c1,x,photos/grace_hopper.jpg,,"Pioneer\n#History",@carol,2024-03-01T12:00:00Z,'
        '"science, cobol",10,1,2\n'
        "c2,x,,photos/camera.png photos/chelsea.png,Carousel,dave,1704189600,,5,,\n"
        "c3,x,photos/camera.png,,,,not-a-date,,,,\n"
    )
    _, ingestor = wire(["labels"])
    outcomes = list(ingestor.ingest(workspace, items_from_paths([feed])))
    assert [o.status for o in outcomes] == ["added", "added", "added", "failed"]
    bad = outcomes[3]
    assert bad.item.source == f"{feed}:5"  # the first row's caption spans two lines
    assert bad.error is not None and bad.error["code"] == "feed_invalid_record"
    assert bad.error["message"].startswith("line 5:") and "created_at" in bad.error["message"]
    with stored_services.database.session() as session:
        c1, c2 = post_by_id(session, "c1"), post_by_id(session, "c2")
        assert (c1.author, c1.likes, c1.comments, c1.shares) == ("carol", 10, 1, 2)
        assert tags(session, c1) == {"science", "cobol", "history"}
        assert linked(session, c1) == [(0, "grace_hopper.jpg")]
        assert linked(session, c2) == [(0, "camera.png"), (1, "chelsea.png")]
        assert c2.created_at is not None and c2.created_at.year == 2024
        assert session.scalar(select(func.count()).select_from(Post)) == 2


def test_reexported_post_is_updated_not_duplicated(
    wire: Wire, stored_services: Services, workspace: int, photos: Path
) -> None:
    first = {"id": "p1", "platform": "instagram", "image": "photos/chelsea.png", "likes": 5, "tags": "a b"}
    second = {**first, "likes": 999, "caption": "now with a caption #new", "tags": "b"}
    _, ingestor = wire(["labels"])
    list(ingestor.ingest(workspace, items_from_paths([write_jsonl(photos.parent / "a.jsonl", [first])])))
    before = snapshot(stored_services)
    again = list(
        ingestor.ingest(workspace, items_from_paths([write_jsonl(photos.parent / "b.jsonl", [second])]))
    )
    assert [o.status for o in again] == ["duplicate"]
    assert snapshot(stored_services) == before  # same row counts: updated in place
    with stored_services.database.session() as session:
        post = post_by_id(session, "p1")
        assert (post.likes, post.caption) == (999, "now with a caption #new")
        assert tags(session, post) == {"b", "new"}
        assert linked(session, post) == [(0, "chelsea.png")]


def test_same_image_in_two_posts_is_stored_once_and_linked_to_both(
    wire: Wire, stored_services: Services, workspace: int, photos: Path
) -> None:
    feed = write_jsonl(
        photos.parent / "feed.jsonl",
        [
            {"id": "a", "image": "photos/chelsea.png", "author": "ann"},
            {"id": "b", "images": ["photos/chelsea.png", "photos/coffee.png"], "author": "ben"},
        ],
    )
    _, ingestor = wire(["labels"])
    outcomes = list(ingestor.ingest(workspace, items_from_paths([feed])))
    assert [o.status for o in outcomes] == ["added", "duplicate", "added"]
    assert rows(stored_services, Image) == 2
    with stored_services.database.session() as session:
        posts = repo.posts_of(session, [outcomes[0].image_id or ""])
    assert sorted(p.post_id for p in next(iter(posts.values()))) == ["a", "b"]


# -- URLs --------------------------------------------------------------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def photo_server(photos: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(photos)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_feed_with_urls_fetches_from_an_allowed_loopback_server(
    wire: Wire, stored_services: Services, workspace: int, photos: Path, photo_server: str
) -> None:
    feed = write_jsonl(
        photos.parent / "remote.jsonl",
        [
            {"id": "u1", "images": [f"{photo_server}/coffee.png", f"{photo_server}/gone.png"]},
            {"id": "u2", "image": "photos/coffee.png"},  # same bytes as the fetched one
        ],
    )
    fetch = FetchLimits(enabled=True, allowed_networks=("127.0.0.1/32",), timeout_s=5.0)
    _, ingestor = wire(["labels"], fetch=fetch)
    outcomes = list(ingestor.ingest(workspace, items_from_paths([feed])))
    assert [o.status for o in outcomes] == ["added", "failed", "duplicate"]
    assert outcomes[0].item.source == f"{photo_server}/coffee.png"
    assert outcomes[1].error is not None and outcomes[1].error["code"] == "fetch_http_status"
    assert outcomes[2].image_id == outcomes[0].image_id

    # fetching is opt-in: with the default settings the same URL is refused, nothing is sent
    _, closed = wire(["labels"])
    refused = closed.process_batch(workspace, [IngestItem("u", url=f"{photo_server}/rocket.jpg")])
    assert refused[0].status == "failed"
    assert refused[0].error is not None and refused[0].error["code"] == "fetch_disabled"


def test_an_overlong_hashtag_does_not_sink_the_batch(
    wire: Wire, stored_services: Services, workspace: int, photos: Path
) -> None:
    """Feeds accept hashtags of any length; the hashtags table holds 256 characters (cut, not refused)."""
    tag = "a" * 300
    feed = write_jsonl(
        photos.parent / "feed.jsonl",
        [
            {"id": "ok", "image": "photos/coffee.png", "caption": "#fine"},
            {"id": "long", "image": "photos/chelsea.png", "caption": f"look #{tag} #{tag}b"},
        ],
    )
    _, ingestor = wire(["labels"])
    outcomes = list(ingestor.ingest(workspace, items_from_paths([feed])))
    assert [o.status for o in outcomes] == ["added", "added"]
    with stored_services.database.session() as session:
        post = post_by_id(session, "long")
        assert tags(session, post) == {tag[:256]} and post.hashtags == [tag[:256]]
