"""The Library over real databases and a real blob store: stored copies, thumbnails, views and erasure."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from feedlens.config import MetadataPolicy, Settings
from feedlens.services.access import AccessService
from feedlens.services.factory import Services
from feedlens.services.fetch import SafeFetcher
from feedlens.services.ingest import IngestItem, Ingestor
from feedlens.services.library import Library
from feedlens.services.sources import items_from_paths
from feedlens.storage import repositories as repo
from feedlens.storage.metadata import GPS_IFD_TAG
from feedlens.storage.tables import Analysis, Facet, Hashtag, Image, Post, PostImage
from tests.conftest import encode

ANALYZERS = ["labels", "properties"]
MAKE_TAG = 0x010F

Wire = Callable[..., tuple[Library, Ingestor]]


@pytest.fixture
def wire(stored_services: Services) -> Iterator[Wire]:
    """Makes (library, ingestor) over the test's database; `settings` overrides the library's."""
    fetchers: list[SafeFetcher] = []

    def make(settings: Settings | None = None) -> tuple[Library, Ingestor]:
        s = stored_services
        library = Library(s.database, s.blobs, s.decoder, settings or s.settings)
        fetchers.append(SafeFetcher(s.settings.fetch))
        return library, Ingestor(library, s.pipeline(ANALYZERS), fetchers[-1], batch_size=4)

    yield make
    for fetcher in fetchers:
        fetcher.close()


@pytest.fixture
def access(stored_services: Services) -> AccessService:
    return AccessService(stored_services.database)


def add(ingestor: Ingestor, workspace: int, items: Sequence[IngestItem]) -> list[str]:
    """Ingest and return the image ids, failing the test on any failed item."""
    outcomes = list(ingestor.ingest(workspace, items))
    assert all(o.status != "failed" for o in outcomes), [o.error for o in outcomes]
    return [o.image_id or "" for o in outcomes]


def files(sample_dir: Path, *names: str) -> list[IngestItem]:
    return [IngestItem(name, path=sample_dir / name) for name in names]


def image_row(s: Services, workspace: int, image_id: str) -> Image | None:
    with s.database.session() as session:
        return repo.get_image(session, workspace, image_id)


def count(s: Services, table: type[Any], *where: Any) -> int:
    with s.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def blob_files(s: Services, blob: str) -> list[bool]:
    return [s.blobs.path(kind, blob).is_file() for kind in ("originals", "thumbnails")]


# -- stored copies and thumbnails --------------------------------------------------------------------


def gps_jpeg(chelsea: PILImage.Image) -> bytes:
    exif = PILImage.Exif()
    exif[MAKE_TAG] = "FeedlensTestCam"
    gps = exif.get_ifd(GPS_IFD_TAG)
    gps.update({1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (4.0, 53.0, 0.25)})
    data = encode(chelsea, "JPEG", quality=90, exif=exif)
    with PILImage.open(io.BytesIO(data)) as check:  # the fixture itself must carry the location
        assert check.getexif().get_ifd(GPS_IFD_TAG)[2] == (52.0, 22.0, 1.5)
    return data


def pixels(data: bytes) -> np.ndarray[Any, Any]:
    with PILImage.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def test_stored_copy_drops_gps_and_keeps_pixels(
    wire: Wire, stored_services: Services, access: AccessService, chelsea: PILImage.Image
) -> None:
    original = gps_jpeg(chelsea)
    _, ingestor = wire()
    workspace = access.create_workspace("team-a")
    [image_id] = add(ingestor, workspace, [IngestItem("gps.jpg", data=original)])
    image = image_row(stored_services, workspace, image_id)
    assert image is not None and image.format == "jpeg" and image.size_bytes == len(original)
    stored = stored_services.blobs.get("originals", image.blob)
    assert stored != original and b"FeedlensTestCam" not in stored  # default policy: no EXIF at all
    with PILImage.open(io.BytesIO(stored)) as copy:
        assert not copy.getexif().get_ifd(GPS_IFD_TAG) and GPS_IFD_TAG not in copy.getexif()
    assert np.array_equal(pixels(stored), pixels(original))  # segments removed, scan untouched

    # no_gps keeps the rest of EXIF; a second workspace gets its own copy under that policy
    no_gps = stored_services.settings.model_copy(update={"store_metadata": MetadataPolicy.NO_GPS})
    _, keeping = wire(no_gps)
    other = access.create_workspace("team-b")
    [other_id] = add(keeping, other, [IngestItem("gps.jpg", data=original)])
    kept = image_row(stored_services, other, other_id)
    assert kept is not None and kept.blob != image.blob and kept.sha256 == image.sha256
    with PILImage.open(io.BytesIO(stored_services.blobs.get("originals", kept.blob))) as copy:
        exif = copy.getexif()
        assert exif.get(MAKE_TAG) == "FeedlensTestCam"
        assert not exif.get_ifd(GPS_IFD_TAG)


def test_thumbnails_are_webp_bounded_by_the_setting(
    wire: Wire, stored_services: Services, access: AccessService, sample_dir: Path
) -> None:
    side = stored_services.settings.thumbnail_side
    library, ingestor = wire()
    workspace = access.create_workspace("team-a")
    names = ("coffee.png", "rocket.jpg", "grace_hopper.jpg")
    for image_id, name in zip(add(ingestor, workspace, files(sample_dir, *names)), names, strict=True):
        thumb = library.thumbnail(workspace, image_id)
        assert thumb is not None
        with PILImage.open(io.BytesIO(thumb)) as opened:
            assert opened.format == "WEBP"
            width, height = opened.size
        with PILImage.open(sample_dir / name) as source:
            assert max(source.size) > side  # precondition: these photos are larger than a thumbnail
            assert abs(width / height - source.width / source.height) < 0.02, name
        assert max(width, height) == side, name

    # a photo smaller than the setting is never enlarged
    big_side = stored_services.settings.model_copy(update={"thumbnail_side": 1024})
    large_library, large_ingestor = wire(big_side)
    small = access.create_workspace("team-small")
    [chelsea_id] = add(large_ingestor, small, files(sample_dir, "chelsea.png"))
    thumb = large_library.thumbnail(small, chelsea_id)
    assert thumb is not None
    with PILImage.open(io.BytesIO(thumb)) as opened, PILImage.open(sample_dir / "chelsea.png") as source:
        assert opened.size == source.size


def test_missing_thumbnail_is_rebuilt_and_foreign_ids_are_not_found(
    wire: Wire, stored_services: Services, access: AccessService, sample_dir: Path
) -> None:
    library, ingestor = wire()
    workspace = access.create_workspace("team-a")
    [image_id] = add(ingestor, workspace, files(sample_dir, "coffee.png"))
    image = image_row(stored_services, workspace, image_id)
    assert image is not None
    first = library.thumbnail(workspace, image_id)
    assert stored_services.blobs.delete("thumbnails", image.blob)
    assert library.thumbnail(workspace, image_id) == first
    assert stored_services.blobs.exists("thumbnails", image.blob)
    other = access.create_workspace("team-b")
    assert library.thumbnail(other, image_id) is None
    assert library.thumbnail(workspace, "0" * 24) is None


# -- views -------------------------------------------------------------------------------------------


def test_views_show_results_posts_and_staleness(
    wire: Wire, stored_services: Services, access: AccessService, sample_dir: Path, tmp_path: Path
) -> None:
    shutil.copy(sample_dir / "chelsea.png", tmp_path / "cat.png")
    feed = tmp_path / "feed.jsonl"
    post = {"id": "p1", "platform": "instagram", "image": "cat.png", "author": "@alice", "likes": 3}
    feed.write_text(json.dumps({**post, "caption": "hello #cats", "created_at": "2024-05-01T08:00:00Z"}))
    library, ingestor = wire()
    workspace = access.create_workspace("team-a")
    [image_id] = add(ingestor, workspace, list(items_from_paths([feed])))
    versions = ingestor.pipeline.versions()
    with stored_services.database.session() as session:
        image = repo.get_image(session, workspace, image_id)
        assert image is not None
        [view] = library.views(session, [image], versions)
        [outdated] = library.views(session, [image], {**versions, "labels": "labels-0"})
    assert (
        view["id"] == image_id and view["format"] == "png" and (view["width"], view["height"]) == (451, 300)
    )
    assert set(view["results"]) == set(ANALYZERS) and view["versions"] == versions
    assert view["results"]["labels"]["labels"], "the cat got no label"
    assert view["stale"] == [] and outdated["stale"] == ["labels"]
    assert view["created_at"] is not None and view["created_at"].endswith("+00:00")
    [shown] = view["posts"]
    assert shown["post_id"] == "p1" and shown["author"] == "alice" and shown["likes"] == 3
    assert shown["hashtags"] == ["cats"] and shown["created_at"] == "2024-05-01T08:00:00+00:00"
    json.dumps(view)  # the API returns it as is


# -- erasure -----------------------------------------------------------------------------------------


def test_delete_images_removes_rows_and_files_but_keeps_shared_blobs(
    wire: Wire, stored_services: Services, access: AccessService, sample_dir: Path
) -> None:
    library, ingestor = wire()
    erased_calls: list[tuple[int, list[str]]] = []
    library.erasure_hooks.append(lambda ws, ids: erased_calls.append((ws, list(ids))))
    team_a, team_b = access.create_workspace("team-a"), access.create_workspace("team-b")
    cat_a, coffee_a = add(ingestor, team_a, files(sample_dir, "chelsea.png", "coffee.png"))
    [cat_b] = add(ingestor, team_b, files(sample_dir, "chelsea.png"))
    cat, coffee = image_row(stored_services, team_a, cat_a), image_row(stored_services, team_a, coffee_a)
    assert cat is not None and coffee is not None
    assert (b := image_row(stored_services, team_b, cat_b)) is not None and b.blob == cat.blob  # one file

    # another workspace cannot erase (or even see) team A's images
    assert library.delete_images(team_b, [coffee_a]) == []
    assert image_row(stored_services, team_a, coffee_a) is not None
    assert blob_files(stored_services, coffee.blob) == [True, True]

    assert sorted(library.delete_images(team_a, [cat_a, coffee_a, "f" * 24])) == sorted([cat_a, coffee_a])
    assert erased_calls[-1][0] == team_a and sorted(erased_calls[-1][1]) == sorted([cat_a, coffee_a])
    assert count(stored_services, Image, Image.workspace_id == team_a) == 0
    for table in (Analysis, Facet):
        assert count(stored_services, table, table.image_id.in_([cat_a, coffee_a])) == 0
    assert blob_files(stored_services, coffee.blob) == [False, False]
    assert blob_files(stored_services, cat.blob) == [True, True]  # team B still shows it
    assert library.thumbnail(team_b, cat_b) is not None

    assert library.delete_images(team_b, [cat_b]) == [cat_b]
    assert blob_files(stored_services, cat.blob) == [False, False]
    assert stored_services.blobs.count("originals") == stored_services.blobs.count("thumbnails") == 0
    assert count(stored_services, Analysis) == 0
    assert [c[0] for c in erased_calls] == [team_b, team_a, team_b]
    assert (erased_calls[0][1], erased_calls[2][1]) == ([], [cat_b])


def test_delete_author_keeps_images_another_author_shows(
    wire: Wire, stored_services: Services, access: AccessService, sample_dir: Path, tmp_path: Path
) -> None:
    for name in ("chelsea.png", "coffee.png", "rocket.jpg", "camera.png"):
        shutil.copy(sample_dir / name, tmp_path / name)
    feed = tmp_path / "feed.jsonl"
    posts = [
        {"id": "a1", "images": ["chelsea.png", "coffee.png"], "author": "alice", "hashtags": "x y"},
        {"id": "b1", "image": "coffee.png", "author": "bob"},
        {"id": "a2", "image": "rocket.jpg", "author": "alice"},
        {"id": "c1", "image": "camera.png", "author": "carol"},
    ]
    feed.write_text("\n".join(json.dumps(p) for p in posts) + "\n")
    library, ingestor = wire()
    erased_calls: list[tuple[int, list[str]]] = []
    library.erasure_hooks.append(lambda ws, ids: erased_calls.append((ws, list(ids))))
    workspace = access.create_workspace("team-a")
    cat, coffee, _, rocket, camera = add(ingestor, workspace, list(items_from_paths([feed])))
    blobs = {i: image_row(stored_services, workspace, i) for i in (cat, coffee, rocket, camera)}

    other = access.create_workspace("team-b")
    assert library.delete_author(other, "alice") == {"posts": 0, "images": 0}

    assert library.delete_author(workspace, "@alice") == {"posts": 2, "images": 2}
    erased_in, erased = erased_calls[-1]
    assert erased_in == workspace and sorted(erased) == sorted([cat, rocket])
    with stored_services.database.session() as session:
        assert sorted(session.scalars(select(Post.post_id))) == ["b1", "c1"]
        assert session.scalar(select(func.count()).select_from(Hashtag)) == 0  # a1's tags went with it
        left = set(session.scalars(select(Image.id)))
        links = {(i, p) for i, p in session.execute(select(PostImage.image_id, Post.post_id).join(Post))}
    assert left == {coffee, camera}
    assert links == {(coffee, "b1"), (camera, "c1")}
    for image_id, row in blobs.items():
        assert row is not None
        expected = [True, True] if image_id in left else [False, False]
        assert blob_files(stored_services, row.blob) == expected


def test_delete_author_erases_what_the_author_filter_shows(
    wire: Wire, stored_services: Services, access: AccessService, sample_dir: Path, tmp_path: Path
) -> None:
    shutil.copy(sample_dir / "chelsea.png", tmp_path / "chelsea.png")
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps({"id": "a1", "image": "chelsea.png", "author": "@Alice"}) + "\n")
    library, ingestor = wire()
    workspace = access.create_workspace("team-a")
    add(ingestor, workspace, list(items_from_paths([feed])))
    with stored_services.database.session() as session:
        assert repo.count_images(session, workspace, repo.ImageFilter(author="alice")) == 1
    assert library.delete_author(workspace, "alice") == {"posts": 1, "images": 1}
