"""Analytics over a library built row by row with known dates, on SQLite and PostgreSQL: every number is
checked against the hand-made library and against counts computed by plain SQL over the same tables."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from feedlens.core.vocabulary import Vocabulary
from feedlens.services.access import AccessService
from feedlens.services.analytics import AnalyticsService, Bucket, GroupBy, Window
from feedlens.storage.database import Database
from feedlens.storage.tables import Brand, Facet, Hashtag, Image, Post, PostImage


def day(d: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, d, hour, tzinfo=UTC)


# 2026-03-02 is a Monday: days 2..8 are one ISO week, 9.. the next.
# name: (ingested, categories, safety verdict, sentiment or None, brand or None); an image is dated by its
# earliest post (POSTS) or, without one, by its ingest time
IMAGES = {
    "a1": (day(20), ["food"], "safe", "positive", "brewly"),
    "a2": (day(20), ["food", "drinks"], "safe", None, None),
    "a3": (day(20), ["pets"], "suggestive", "negative", None),
    "a4": (day(9), ["pets"], "explicit", "positive", "brewly"),  # no post: dated by ingest
    "a5": (day(10), ["food"], "safe", "neutral", None),
    "a6": (day(21), ["pets"], "safe", None, None),  # posted at 23:00 on the 1st
}
# post: (image names, posted, likes, comments, shares, hashtags)
POSTS = {
    "p1": (["a1", "a2"], day(2), 10, 1, None, ["latte", "brunch"]),  # a carousel: one post, two images
    "p2": (["a3"], day(3), 5, 0, 2, ["cats"]),
    "p3": (["a5"], day(10), 7, None, 1, ["latte"]),
    "p4": (["a6"], day(1, 23), 1, 1, 1, ["cats", "latte"]),
    "p5": (["a1"], day(4), 20, 3, 0, ["latte"]),  # a repost of a1: a1 keeps its earliest date (day 2)
}


@dataclass
class Library:
    database: Database
    service: AnalyticsService
    workspace: int
    other: int
    ids: dict[str, str]


@pytest.fixture
def library(database_url: str) -> Iterator[Library]:
    database = Database(database_url)
    database.migrate()
    access = AccessService(database)
    workspace, other = access.create_workspace("team-a"), access.create_workspace("team-b")
    ids: dict[str, str] = {}
    with database.session() as session:
        session.add(Brand(workspace_id=workspace, name="Brewly"))
        for name, (ingested, categories, verdict, sentiment, brand) in IMAGES.items():
            image = Image(
                workspace_id=workspace, sha256=name * 32, blob=name, format="png", width=1, height=1,
                size_bytes=1, source=name, created_at=ingested,
            )  # fmt: skip
            session.add(image)
            session.flush()
            ids[name] = image.id
            facets = [("categories", "category", c) for c in categories]
            facets += [
                ("safety", "safety", verdict),
                ("labels", "headline", "cat"),
                ("labels", "label", "cat"),
            ]
            facets += [("faces", "sentiment", sentiment)] if sentiment else []
            facets += [("brands", "brand", brand)] if brand else []
            session.add_all(
                Facet(image_id=image.id, analyzer=a, kind=k, value=v, score=0.9) for a, k, v in facets
            )
        for post_id, (names, posted, likes, comments, shares, tags) in POSTS.items():
            post = Post(
                workspace_id=workspace, platform="instagram", post_id=post_id, created_at=posted,
                likes=likes, comments=comments, shares=shares, hashtags=tags,
            )  # fmt: skip
            session.add(post)
            session.flush()
            session.add_all(PostImage(post_pk=post.id, image_id=ids[n]) for n in names)
            session.add_all(Hashtag(post_pk=post.id, tag=t) for t in tags)
        # team-b: the same kinds of rows, which must never show in team-a's numbers
        foreign = Image(
            workspace_id=other, sha256="b" * 64, blob="b", format="png", width=1, height=1, size_bytes=1,
            created_at=day(2),
        )  # fmt: skip
        session.add(foreign)
        session.flush()
        session.add(Facet(image_id=foreign.id, analyzer="categories", kind="category", value="food"))
        post = Post(workspace_id=other, post_id="b1", created_at=day(2), likes=1000, hashtags=["latte"])
        session.add(post)
        session.flush()
        session.add_all(
            [PostImage(post_pk=post.id, image_id=foreign.id), Hashtag(post_pk=post.id, tag="latte")]
        )
    yield Library(database, AnalyticsService(database, vocabulary=Vocabulary.load()), workspace, other, ids)
    database.dispose()


def rows(table: object) -> list[tuple[object, ...]]:
    return [tuple(r.values()) for r in table.rows]  # type: ignore[attr-defined]


def test_categories_per_day_and_week(library: Library) -> None:
    daily = library.service.categories(library.workspace, Window())
    assert rows(daily) == [
        ("2026-03-01", "pets", 1),
        ("2026-03-02", "food", 2),
        ("2026-03-02", "drinks", 1),
        ("2026-03-03", "pets", 1),
        ("2026-03-09", "pets", 1),
        ("2026-03-10", "food", 1),
    ]
    weekly = library.service.categories(library.workspace, Window(bucket=Bucket.WEEK))
    assert rows(weekly) == [
        ("2026-02-23", "pets", 1),
        ("2026-03-02", "food", 2),
        ("2026-03-02", "drinks", 1),
        ("2026-03-02", "pets", 1),
        ("2026-03-09", "food", 1),
        ("2026-03-09", "pets", 1),
    ]
    # [since, until): a6, posted at 23:00 on the 1st, is out; a5, at noon on the 10th, too
    window = Window(since=day(2, 0), until=day(10, 0))
    assert rows(library.service.categories(library.workspace, window)) == [
        ("2026-03-02", "food", 2),
        ("2026-03-02", "drinks", 1),
        ("2026-03-03", "pets", 1),
        ("2026-03-09", "pets", 1),
    ]
    assert rows(library.service.categories(library.workspace, Window(), top=1)) == [
        ("2026-03-02", "food", 2),
        ("2026-03-10", "food", 1),
    ]  # food and pets tie at 3 images; ties go alphabetically
    assert rows(library.service.categories(library.other, Window())) == [("2026-03-02", "food", 1)]


def test_counts_match_plain_sql(library: Library) -> None:
    """Totals per category over everything: the service's series summed vs COUNT(DISTINCT) in SQL."""
    with library.database.session() as session:
        expected: dict[str, int] = dict(
            session.execute(
                text(
                    "SELECT f.value, COUNT(DISTINCT f.image_id) FROM facets f "
                    "JOIN images i ON i.id = f.image_id WHERE i.workspace_id = :w AND f.kind = 'category' "
                    "GROUP BY f.value"
                ),
                {"w": library.workspace},
            ).all()
        )
        likes: dict[str, int] = dict(
            session.execute(
                text(
                    "SELECT c.value, SUM(p.likes) FROM posts p JOIN "
                    "(SELECT DISTINCT pi.post_pk, f.value FROM post_images pi "
                    " JOIN facets f ON f.image_id = pi.image_id WHERE f.kind = 'category') c "
                    "ON c.post_pk = p.id WHERE p.workspace_id = :w GROUP BY c.value"
                ),
                {"w": library.workspace},
            ).all()
        )
    got: dict[str, int] = {}
    for row in library.service.categories(library.workspace, Window(bucket=Bucket.WEEK), top=100).rows:
        got[row["category"]] = got.get(row["category"], 0) + row["images"]
    # an image lies in one period, so per-period counts add up to the distinct total
    assert got == expected == {"food": 3, "drinks": 1, "pets": 3}
    engagement = library.service.engagement(library.workspace, Window(), GroupBy.CATEGORY)
    assert {r["category"]: r["likes"] for r in engagement.rows} == {k: int(v) for k, v in likes.items()}


def test_engagement_by_category_and_brand(library: Library) -> None:
    table = library.service.engagement(library.workspace, Window(), GroupBy.CATEGORY)
    by = {r["category"]: r for r in table.rows}
    # food: p1 (a1+a2, counted once), p3 (a5), p5 (a1 again)
    assert by["food"] == {
        "category": "food", "posts": 3, "likes": 37, "comments": 4, "shares": 1,
        "likes_mean": 12.33, "comments_mean": 2.0, "shares_mean": 0.5,
    }  # fmt: skip
    assert by["pets"]["posts"] == 2 and by["pets"]["likes"] == 6 and by["drinks"]["likes"] == 10
    brands = library.service.engagement(library.workspace, Window(), GroupBy.BRAND)
    assert rows(brands) == [("Brewly", 2, 30, 4, 0, 15.0, 2.0, 0.0)]  # a1's posts p1, p5; a4 has none
    windowed = library.service.engagement(library.workspace, Window(since=day(3, 0)), GroupBy.CATEGORY)
    assert {r["category"]: r["posts"] for r in windowed.rows} == {"food": 2, "pets": 1}


def test_hashtags_sentiment_safety_labels_brands(library: Library) -> None:
    assert rows(library.service.hashtags(library.workspace, Window())) == [
        ("latte", 4, 4),  # p1, p3, p4, p5; images a1, a2, a5, a6 (team-b's latte post is not counted)
        ("cats", 2, 2),
        ("brunch", 1, 2),
    ]
    assert rows(library.service.hashtags(library.workspace, Window(until=day(2, 0)))) == [
        ("cats", 1, 1),
        ("latte", 1, 1),
    ]
    assert rows(library.service.sentiment(library.workspace, Window(bucket=Bucket.WEEK))) == [
        ("2026-03-02", "negative", 1),
        ("2026-03-02", "positive", 1),
        ("2026-03-09", "neutral", 1),
        ("2026-03-09", "positive", 1),
    ]
    assert rows(library.service.safety(library.workspace, Window(bucket=Bucket.WEEK))) == [
        ("2026-02-23", 1, 1, 0, 0, 0.0),
        ("2026-03-02", 3, 2, 1, 0, 0.3333),
        ("2026-03-09", 2, 1, 0, 1, 0.5),
    ]
    headlines = library.service.labels(library.workspace, Window(bucket=Bucket.WEEK), "headline")
    assert sum(r["images"] for r in headlines.rows) == 6
    assert {r["label"] for r in headlines.rows} == {"Cat"}  # the vocabulary's name, not the id
    assert rows(library.service.labels(library.workspace, Window(), "label", min_score=0.95)) == []
    assert rows(library.service.brands(library.workspace, Window())) == [
        ("2026-03-02", "Brewly", 1),
        ("2026-03-09", "Brewly", 1),
    ]


def test_csv_export_quotes_formulas(library: Library) -> None:
    with library.database.session() as session:
        post = Post(workspace_id=library.workspace, post_id="evil", created_at=day(5), hashtags=["=cmd"])
        session.add(post)
        session.flush()
        session.add_all(
            [PostImage(post_pk=post.id, image_id=library.ids["a1"]), Hashtag(post_pk=post.id, tag="=cmd")]
        )
    csv = library.service.hashtags(library.workspace, Window()).to_csv().splitlines()
    assert csv[0] == "hashtag,posts,images"
    assert "'=cmd,1,1" in csv and "latte,4,4" in csv
