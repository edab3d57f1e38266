"""Schema, migrations and repositories on both real backends: a SQLite file and a throwaway PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

# Table modules outside storage.tables: imported so Base.metadata holds every table the migrations make.
import feedlens.storage.category_stats
import feedlens.storage.face_collections
import feedlens.storage.face_people
import feedlens.storage.insights_tables
import feedlens.storage.rate_limits  # noqa: F401
from feedlens.core.errors import ConfigError
from feedlens.storage import repositories as repo
from feedlens.storage.database import Database, create_db_engine, schema_is_current
from feedlens.storage.tables import (
    Analysis,
    ApiKey,
    Base,
    Facet,
    Hashtag,
    Image,
    Job,
    JobItem,
    Post,
    PostImage,
    Workspace,
)

TABLES = {
    "workspaces",
    "api_keys",
    "images",
    "posts",
    "post_images",
    "hashtags",
    "embeddings",
    "taxonomies",
    "category_labels",
    "category_models",
    "brands",
    "brand_logos",
    "trained_models",
    "model_deployments",
    "deployment_events",
    "model_predictions",
    "corrections",
    "review_items",
    "moderation_decisions",
    "learning_cycles",
    "brand_registry_versions",
    "analyses",
    "facets",
    "jobs",
    "job_items",
    "category_stats",
    "insight_posts",
    "insight_images",
    "insight_engagements",
    "insight_places",
    "insight_alert_rules",
    "insight_alerts",
    "face_identity_settings",
    "rate_buckets",
    "face_collections",
    "face_people",
    "face_scans",
    "face_vectors",
}
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _sha(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _image(session: Session, workspace: int, name: str, created_at: datetime | None = None) -> str:
    image = Image(
        workspace_id=workspace,
        sha256=_sha(name),
        blob=_sha("stored " + name),
        format="jpeg",
        width=640,
        height=480,
        size_bytes=1234,
        source=name,
        **({"created_at": created_at} if created_at else {}),
    )
    session.add(image)
    session.flush()
    return image.id


def _labels(*named: tuple[str, float], classes: tuple[tuple[str, float], ...] = ()) -> dict[str, Any]:
    """A stored labels/2 result: everyday labels by id (in display order), raw classifier classes."""
    return {
        "schema": "feedlens.labels/2",
        "labels": [{"id": i, "name": i.title(), "score": s} for i, s in named],
        "classes": [{"name": n, "wnid": "n00000000", "score": s} for n, s in classes],
    }


def _post(
    session: Session,
    workspace: int,
    post_id: str,
    author: str,
    images: list[str],
    *,
    platform: str = "instagram",
    hashtags: tuple[str, ...] = (),
    posted: datetime | None = None,
) -> int:
    fields = {"platform": platform, "post_id": post_id, "author": author, "created_at": posted}
    pk = repo.upsert_post(session, workspace, fields, list(hashtags))
    for position, image_id in enumerate(images):
        repo.link_post_image(session, pk, image_id, position)
    session.flush()
    return pk


def _count(session: Session, table: type[Base], **where: Any) -> int:
    query = select(func.count()).select_from(table).filter_by(**where)
    return int(session.scalar(query) or 0)


# -- schema and migrations ----------------------------------------------------------------------------------


def test_migrate_creates_every_table(database_url: str) -> None:
    database = Database(database_url)
    try:
        assert not schema_is_current(database.engine)
        assert inspect(database.engine).get_table_names() == []
        database.migrate()
        assert set(inspect(database.engine).get_table_names()) == TABLES | {"alembic_version"}
        assert schema_is_current(database.engine)
    finally:
        database.dispose()


def test_migrate_twice_is_a_noop_and_matches_the_models(db: Database) -> None:
    with db.session() as session:
        ws = repo.ensure_workspace(session, "kept")
        _image(session, ws, "a")
    with db.engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
    db.migrate()
    db.migrate()
    with db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == revision
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        # A model change without a migration (or the reverse) shows here, on both backends.
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    with db.session() as session:
        assert repo.workspace_id(session, "kept") == ws
        assert _count(session, Image, workspace_id=ws) == 1
    assert schema_is_current(db.engine)


def test_sqlite_pragmas_and_folder(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there" / "feedlens.db"
    database = Database(f"sqlite:///{path}")
    try:
        assert database.backend == "sqlite"
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert path.is_file()
        database.migrate()
        with database.session() as session:  # every pooled connection gets them, not only the first
            assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        database.dispose()


def test_engine_urls() -> None:
    engine = create_db_engine("postgresql://feedlens@127.0.0.1:1/feedlens")  # no connection is made
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()
    for bad in ("mysql://user@host/db", "not a url", "oracle+cx_oracle://u@h/d"):
        with pytest.raises(ConfigError):
            create_db_engine(bad)


# -- constraints --------------------------------------------------------------------------------------------


def test_deleting_a_workspace_cascades(db: Database) -> None:
    with db.session() as session:
        ws, other = repo.ensure_workspace(session, "gone"), repo.ensure_workspace(session, "stays")
        for workspace in (ws, other):
            image = _image(session, workspace, f"img-{workspace}")
            repo.add_analyses(session, image, {"labels": _labels(("tabby", 0.9))}, {"labels": "v1"})
            _post(session, workspace, "p1", "alice", [image], hashtags=("cats",))
            session.add(
                ApiKey(workspace_id=workspace, prefix="fl_x", key_hash=_sha(f"k{workspace}"), scope="read")
            )
            job = Job(workspace_id=workspace, kind="analyze", status="done")
            session.add(job)
            session.flush()
            session.add(JobItem(job_id=job.id, position=0, source="upload", image_id=image))
    dependent: tuple[type[Base], ...] = (Analysis, Facet, PostImage, Hashtag, JobItem)
    with db.session() as session:
        each = {table: _count(session, table) // 2 for table in dependent}  # both workspaces alike
        assert all(each.values())
        session.delete(session.get(Workspace, ws))  # ORM delete; the database does the cascading
    with db.session() as session:
        owned: tuple[type[Base], ...] = (Image, Post, ApiKey, Job)
        for table in owned:
            assert _count(session, table, workspace_id=ws) == 0, table.__tablename__
            assert _count(session, table, workspace_id=other) == 1, table.__tablename__
        for table in dependent:
            assert _count(session, table) == each[table], table.__tablename__  # the other workspace's rows


def test_deleting_an_image_cascades_and_unlinks_job_items(db: Database) -> None:
    with db.session() as session:
        ws = repo.ensure_workspace(session, "w")
        image = _image(session, ws, "a")
        repo.add_analyses(
            session, image, {"safety": {"verdict": "safe", "scores": {"nsfw": 0.01}}}, {"safety": "1"}
        )
        post = _post(session, ws, "p1", "alice", [image])
        job = Job(workspace_id=ws, kind="analyze", status="done")
        session.add(job)
        session.flush()
        session.add(JobItem(job_id=job.id, position=0, source="upload", image_id=image, status="done"))
    with db.session() as session:
        session.delete(session.get(Image, image))
    with db.session() as session:
        assert _count(session, Analysis) == _count(session, Facet) == _count(session, PostImage) == 0
        assert session.get(Post, post) is not None  # the post itself stays
        item = session.scalars(select(JobItem)).one()
        assert item.image_id is None and item.status == "done"  # history kept, link cleared


def test_image_sha256_is_unique_per_workspace(db: Database) -> None:
    with db.session() as session:
        ws, other = repo.ensure_workspace(session, "a"), repo.ensure_workspace(session, "b")
        image = _image(session, ws, "same")
        _image(session, other, "same")  # another workspace may hold the same photo
        assert repo.get_image(session, ws, image) is not None
        assert repo.get_image(session, other, image) is None  # not found, rather than forbidden
        assert repo.blob_in_use(session, _sha("stored same"))
        assert not repo.blob_in_use(session, _sha("nothing"))
    with pytest.raises(IntegrityError), db.session() as session:
        _image(session, ws, "same")
    with db.session() as session:
        assert _count(session, Image, workspace_id=ws) == 1
        assert repo.images_by_sha(session, ws, [_sha("same"), _sha("missing")]).keys() == {_sha("same")}
        assert repo.images_by_sha(session, ws, []) == {}


# -- repositories -------------------------------------------------------------------------------------------


def test_ensure_workspace_is_idempotent_and_sessions_roll_back(db: Database) -> None:
    with db.session() as session:
        first = repo.ensure_workspace(session, "team")
        assert repo.ensure_workspace(session, "team") == first
    with db.session() as session:
        assert repo.ensure_workspace(session, "team") == first
        assert repo.workspace_id(session, "team") == first
        assert repo.workspace_id(session, "nobody") is None
        assert _count(session, Workspace) == 1
    # A session is a unit of work: an error rolls everything in it back.
    with pytest.raises(RuntimeError), db.session() as session:
        repo.ensure_workspace(session, "rolled back")
        raise RuntimeError("boom")
    with db.session() as session:
        assert repo.workspace_id(session, "rolled back") is None


def test_add_analyses_replaces_facets_and_keeps_older_versions(db: Database) -> None:
    with db.session() as session:
        ws = repo.ensure_workspace(session, "w")
        image = _image(session, ws, "cat")
        safety = {"verdict": "safe", "scores": {"nsfw": 0.02}}
        repo.add_analyses(
            session,
            image,
            {"labels": _labels(("cat", 0.8), classes=(("tabby", 0.8),)), "safety": safety},
            {"labels": "v1", "safety": "s1"},
        )
    with db.session() as session:
        repo.add_analyses(
            session, image, {"labels": _labels(("cat", 0.7), classes=(("tiger cat", 0.7),))}, {"labels": "v2"}
        )
    with db.session() as session:
        facets = {(f.analyzer, f.kind, f.value) for f in session.scalars(select(Facet))}
        assert facets == {
            ("labels", "label", "cat"),
            ("labels", "headline", "cat"),  # what the image is mostly about, for trends
            ("labels", "class", "tiger cat"),
            ("safety", "safety", "safe"),
        }
        versions = sorted(
            (a.analyzer, a.version)
            for a in session.scalars(select(Analysis).where(Analysis.image_id == image))
        )
        assert versions == [("labels", "v1"), ("labels", "v2"), ("safety", "s1")]
        current = repo.current_analyses(session, [image])[image]
        assert current["labels"].version == "v2" and current["safety"].version == "s1"
        assert current["labels"].result["classes"][0]["name"] == "tiger cat"
    with db.session() as session:  # the same version again replaces that row, not adds one
        repo.add_analyses(session, image, {"labels": _labels(("lynx", 0.6))}, {"labels": "v2"})
    with db.session() as session:
        rows = session.scalars(select(Analysis).where(Analysis.analyzer == "labels")).all()
        assert sorted(a.version for a in rows) == ["v1", "v2"]
        assert {f.value for f in session.scalars(select(Facet).where(Facet.analyzer == "labels"))} == {"lynx"}
        assert repo.current_analyses(session, []) == {}


@pytest.fixture
def gallery(db: Database) -> dict[str, Any]:
    """Images with labels, verdicts and posts in one workspace, plus a look-alike in another."""
    ids: dict[str, Any] = {}
    with db.session() as session:
        ws = ids["ws"] = repo.ensure_workspace(session, "main")
        other = ids["other"] = repo.ensure_workspace(session, "other")
        for n, name in enumerate(("cat", "weak_cat", "dog", "explicit", "plain")):
            ids[name] = _image(session, ws, name, T0 + timedelta(minutes=n))
        ids["other_cat"] = _image(session, other, "cat", T0)
        results = {
            "cat": _labels(("cat", 0.9), ("animal", 0.95), classes=(("tabby", 0.9),)),
            "weak_cat": _labels(("cat", 0.05), classes=(("tabby", 0.05),)),
            "dog": _labels(("dog", 0.8), ("animal", 0.85), classes=(("beagle", 0.8),)),
        }
        for name, result in results.items():
            repo.add_analyses(session, ids[name], {"labels": result}, {"labels": "v1"})
        for name in ("cat", "dog", "explicit", "plain"):
            verdict = "explicit" if name == "explicit" else "safe"
            repo.add_analyses(
                session, ids[name], {"safety": {"verdict": verdict, "scores": {}}}, {"safety": "1"}
            )
        repo.add_analyses(session, ids["other_cat"], {"labels": results["cat"]}, {"labels": "v1"})
        _post(session, ws, "p1", "alice", [ids["cat"], ids["dog"]], hashtags=("sunset", "cats"), posted=T0)
        _post(
            session,
            ws,
            "p2",
            "bob",
            [ids["explicit"]],
            platform="tiktok",
            hashtags=("night",),
            posted=T0 + timedelta(days=2),
        )
        _post(session, other, "p1", "alice", [ids["other_cat"]], hashtags=("sunset",), posted=T0)
    return ids


def _listed(db: Database, ws: int, **filters: Any) -> set[str]:
    with db.session() as session:
        f = repo.ImageFilter(**filters)
        page, cursor = repo.list_images(session, ws, f, limit=100)
        assert cursor is None
        assert repo.count_images(session, ws, f) == len(page)
        return {image.id for image in page}


def test_list_images_filters(db: Database, gallery: dict[str, Any]) -> None:
    ws, g = gallery["ws"], gallery
    assert _listed(db, ws) == {g["cat"], g["weak_cat"], g["dog"], g["explicit"], g["plain"]}
    assert _listed(db, ws, label="Tabby") == {g["cat"]}  # a raw class name, case-insensitive, min score 0.1
    assert _listed(db, ws, label="tabby", label_min_score=0.01) == {g["cat"], g["weak_cat"]}
    assert _listed(db, ws, label="cat") == {g["cat"]}  # an everyday label by id
    assert _listed(db, ws, label="animal") == {g["cat"], g["dog"]}  # a parent stored with its child
    assert _listed(db, ws, label="x", label_terms=("cat", "dog")) == {g["cat"], g["dog"]}  # resolved words
    assert _listed(db, ws, label="dog", label_min_score=0.85) == set()
    assert _listed(db, ws, safety="explicit") == {g["explicit"]}
    assert _listed(db, ws, safety="safe", label="dog") == {g["dog"]}  # filters combine
    assert _listed(db, ws, hashtag="#Sunset") == {g["cat"], g["dog"]}
    assert _listed(db, ws, hashtag="nothing") == set()
    assert _listed(db, ws, author="@Alice") == {g["cat"], g["dog"]}
    assert _listed(db, ws, author="bob", hashtag="sunset") == set()  # one post must match all
    assert _listed(db, ws, platform="TikTok") == {g["explicit"]}
    assert _listed(db, ws, posted_since=T0 + timedelta(days=1)) == {g["explicit"]}
    assert _listed(db, ws, posted_until=T0 + timedelta(days=1)) == {g["cat"], g["dog"]}
    assert _listed(db, ws, since=T0 + timedelta(minutes=3)) == {g["explicit"], g["plain"]}
    assert _listed(db, ws, until=T0 + timedelta(minutes=1)) == {g["cat"]}
    assert _listed(db, gallery["other"], label="cat") == {g["other_cat"]}  # other workspace's own


def test_time_filters_honour_the_offset(db: Database, gallery: dict[str, Any]) -> None:
    """The API passes ?posted_since=2024-05-03T13:00:00+02:00 through as given; that is 11:00 UTC."""
    ws, g = gallery["ws"], gallery
    plus_two = timezone(timedelta(hours=2))
    bob_posted = (T0 + timedelta(days=2)).astimezone(plus_two)  # 14:00+02:00
    assert _listed(db, ws, posted_since=bob_posted - timedelta(minutes=30)) == {g["explicit"]}
    assert _listed(db, ws, posted_since=bob_posted + timedelta(minutes=30)) == set()
    created = (T0 + timedelta(minutes=3)).astimezone(plus_two)
    assert _listed(db, ws, since=created) == {g["explicit"], g["plain"]}


def test_keyset_pagination_returns_every_image_once(db: Database) -> None:
    with db.session() as session:
        ws = repo.ensure_workspace(session, "w")
        ids = [_image(session, ws, f"img{n}", T0 + timedelta(seconds=n, microseconds=n)) for n in range(7)]
        # Two more with a created_at equal to another's: the id breaks the tie.
        ids += [_image(session, ws, f"tie{n}", T0 + timedelta(seconds=3, microseconds=3)) for n in range(2)]
        other = repo.ensure_workspace(session, "other")
        _image(session, other, "foreign", T0 + timedelta(seconds=4))
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        with db.session() as session:
            page, cursor = repo.list_images(session, ws, repo.ImageFilter(), limit=3, cursor=cursor)
        seen += [image.id for image in page]
        pages += 1
        assert len(page) == 3 or cursor is None
        if cursor is None:
            break
        assert pages < 10, "pagination does not end"
    assert pages == 3
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    with db.session() as session:
        stamps = {
            i.id: (i.created_at, i.id) for i in session.scalars(select(Image).where(Image.workspace_id == ws))
        }
    assert [stamps[i] for i in seen] == sorted(stamps.values(), reverse=True)  # newest first
    with db.session() as session, pytest.raises(ValueError):
        repo.list_images(session, ws, repo.ImageFilter(), limit=3, cursor="bogus!")


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"no separator").decode(),
        base64.urlsafe_b64encode(b"yesterday|abc").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe|abc").decode(),
        "YQ",  # bad padding
    ],
)
def test_invalid_cursor_is_a_value_error(cursor: str) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        repo.decode_cursor(cursor)


def test_orphaned_post_images(db: Database) -> None:
    with db.session() as session:
        ws, other = repo.ensure_workspace(session, "w"), repo.ensure_workspace(session, "o")
        only_a, shared, also_a, bobs = (
            _image(session, ws, n) for n in ("only_a", "shared", "also_a", "bobs")
        )
        foreign = _image(session, other, "foreign")
        p1 = _post(session, ws, "1", "alice", [only_a, shared])
        p2 = _post(session, ws, "2", "alice", [also_a, only_a])  # an image in two of her own posts
        _post(session, ws, "3", "bob", [shared, bobs])
        p4 = _post(session, ws, "4", "alice", [], platform="tiktok")  # a post without images
        _post(session, other, "1", "alice", [foreign])  # same name, other workspace
    with db.session() as session:
        posts, images = repo.orphaned_post_images(session, ws, "alice")
        assert sorted(posts) == sorted([p1, p2, p4])
        assert images == sorted([only_a, also_a])
        assert repo.orphaned_post_images(session, ws, "nobody") == ([], [])


def test_upsert_post_updates_and_replaces_hashtags(db: Database) -> None:
    with db.session() as session:
        ws = repo.ensure_workspace(session, "w")
        image = _image(session, ws, "x")
        fields = {"platform": "instagram", "post_id": "42", "author": "alice", "likes": 1}
        pk = repo.upsert_post(session, ws, fields, ["a", "b", "a"])
        repo.link_post_image(session, pk, image, 0)
        repo.link_post_image(session, pk, image, 0)  # linking twice is a no-op
    with db.session() as session:
        again = repo.upsert_post(session, ws, {**fields, "likes": 5}, ["c"])
        assert again == pk
    with db.session() as session:
        post = session.get(Post, pk)
        assert post is not None and post.likes == 5 and post.hashtags == ["c"]
        assert set(session.scalars(select(Hashtag.tag).where(Hashtag.post_pk == pk))) == {"c"}
        assert _count(session, Post) == 1 and _count(session, PostImage) == 1
        assert [p.id for p in repo.posts_of(session, [image])[image]] == [pk]


def test_stale_images_and_count(db: Database) -> None:
    with db.session() as session:
        ws, other = repo.ensure_workspace(session, "w"), repo.ensure_workspace(session, "o")
        never, old, current = (_image(session, ws, n, T0 + timedelta(minutes=i)) for i, n in enumerate("abc"))
        foreign = _image(session, other, "d", T0 + timedelta(minutes=5))
        repo.add_analyses(session, old, {"labels": _labels(("x", 0.5))}, {"labels": "v1"})
        repo.add_analyses(session, current, {"labels": _labels(("x", 0.5))}, {"labels": "v2"})
        # Another analyzer at the wanted version does not count.
        repo.add_analyses(session, never, {"text": {"full_text": ""}}, {"text": "v2"})
    with db.session() as session:
        stale = [i.id for i in repo.stale_images(session, ws, "labels", "v2", limit=10)]
        assert stale == [never, old]  # oldest first
        assert repo.count_stale(session, ws, "labels", "v2") == 2
        assert [i.id for i in repo.stale_images(session, ws, "labels", "v2", limit=1)] == [never]
        assert [i.id for i in repo.stale_images(session, ws, "labels", "v2", 10, skip=[never])] == [old]
        everywhere = [i.id for i in repo.stale_images(session, None, "labels", "v2", limit=10)]
        assert everywhere == [never, old, foreign]
        assert repo.count_stale(session, None, "labels", "v2") == 3
        assert repo.count_stale(session, ws, "labels", "v1") == 2  # an image at v2 lacks v1
        assert repo.count_stale(session, ws, "faces", "1") == 3
