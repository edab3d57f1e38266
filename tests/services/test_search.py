"""Search with real models over the sample photos and generated copies of one of them.

One library is ingested per module (SQLite) and only read by the ranking, cut-off, filter, duplicate,
cluster and isolation tests. What depends on storage (erasure, the index kept in step with the table,
rebuild against incremental) runs on a small library of its own, on SQLite and PostgreSQL.

Semantics are checked, not scores: the thresholds and the calibration are tuned from measurements
(docs/search.md, FEEDLENS_SEARCH__*), and these tests should survive a re-tuning that keeps the design.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps
from sqlalchemy import func, select

from feedlens.analyzers.registry import DEFAULT_ANALYZERS
from feedlens.core.filters import ImageFilter
from feedlens.core.results import LabelsResult
from feedlens.index.faiss_index import FaissIndex, FaissParams
from feedlens.index.store import IndexStore, load_index
from feedlens.services.access import AccessService
from feedlens.services.clusters import find_clusters
from feedlens.services.duplicates import find_duplicates
from feedlens.services.factory import Services
from feedlens.services.feeds import PostRecord
from feedlens.services.fetch import SafeFetcher
from feedlens.services.ingest import IngestItem, Ingestor
from feedlens.services.library import Library
from feedlens.services.search import (
    DIMS,
    SEMANTIC,
    VISUAL,
    Hit,
    SearchService,
    visual_vector,
)
from feedlens.storage import embeddings as vectors
from feedlens.storage.tables import Embedding
from tests.conftest import encode
from tests.support.search_set import CATS, HALF, NEAR, OTHERS, SAMPLES, UNRELATED, chelsea_copies


def post(post_id: str, **fields: object) -> PostRecord:
    return PostRecord.model_validate({"id": post_id, "image": "x", **fields})


def wire(services: Services, data_dir: Path, database_url: str) -> Services:
    """Services over a fresh, migrated database and blob store under `data_dir`; models shared."""
    settings = services.settings.model_copy(update={"data_dir": data_dir, "database_url": database_url})
    wired = services.with_settings(settings)
    wired.database.migrate()
    return wired


@dataclass
class Stack:
    """A library wired as the API wires it: ingest hook into search, erasure hook out of it."""

    services: Services
    library: Library
    search: SearchService
    ingestor: Ingestor
    fetcher: SafeFetcher

    @classmethod
    def build(cls, services: Services, analyzers: Sequence[str] = DEFAULT_ANALYZERS) -> Stack:
        library = Library(services.database, services.blobs, services.decoder, services.settings)
        search = services.with_settings().search
        library.erasure_hooks.append(search.forget)
        fetcher = SafeFetcher(services.settings.fetch)
        pipeline = services.pipeline(analyzers)
        ingestor = Ingestor(library, pipeline, fetcher, 8, after_commit=search.after_ingest)
        return cls(services, library, search, ingestor, fetcher)

    def ingest(self, workspace: int, items: Sequence[IngestItem]) -> dict[str, str]:
        outcomes = list(self.ingestor.ingest(workspace, items))
        assert all(o.status != "failed" for o in outcomes), [o.error for o in outcomes]
        return {o.item.source: str(o.image_id) for o in outcomes}

    def close(self) -> None:
        self.fetcher.close()


def restarted(stack: Stack) -> SearchService:
    """A new search service over the same database and index folder, as after a server restart."""
    return stack.services.with_settings().search


def snapshot(search: SearchService, workspace: int) -> dict[str, dict[str, np.ndarray]]:
    """Every index of the workspace as {kind: {image id: stored vector}}."""
    out = {}
    for kind, dim in DIMS.items():
        ids, matrix = search.indexes.get(workspace, kind, dim).items()
        out[kind] = dict(zip(ids, matrix, strict=True))
    return out


def assert_same_index(a: dict[str, dict[str, np.ndarray]], b: dict[str, dict[str, np.ndarray]]) -> None:
    assert a.keys() == b.keys()
    for kind, rows in a.items():
        assert rows.keys() == b[kind].keys(), kind
        for image_id, vector in rows.items():
            np.testing.assert_allclose(vector, b[kind][image_id], atol=1e-6, err_msg=f"{kind} {image_id}")


def table_ids(services: Services, workspace: int, kind: str) -> set[str]:
    with services.database.session() as session:
        return vectors.ids(session, workspace, kind)


# -- the shared library ------------------------------------------------------------------------------------
@dataclass
class Shared:
    stack: Stack
    a: int  # workspace team-a: the samples, the copies, posts
    b: int  # workspace team-b: three of the same photos, no posts
    ids: dict[str, str]  # team-a: file name -> image id
    b_ids: dict[str, str]

    @property
    def search(self) -> SearchService:
        return self.stack.search

    def names(self, hits: Sequence[Hit] | None) -> list[str]:
        assert hits is not None
        by_id = {v: k for k, v in {**self.ids, **{f"b:{k}": v for k, v in self.b_ids.items()}}.items()}
        return [by_id[h.image_id] for h in hits]


@pytest.fixture(scope="module")
def shared(
    services: Services, sample_dir: Path, chelsea: Image.Image, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shared]:
    data = tmp_path_factory.mktemp("search-lib")
    wired = wire(services, data, f"sqlite:///{data / 'feedlens.db'}")
    stack = Stack.build(wired)
    access = AccessService(wired.database)
    a, b = access.create_workspace("team-a"), access.create_workspace("team-b")
    items = [IngestItem(name, path=sample_dir / name) for name in SAMPLES]
    items += [IngestItem(name, data=data) for name, data in chelsea_copies(chelsea).items()]
    ids = stack.ingest(a, items)
    # the index is in step before any post exists: the captions below must reach it as updates
    assert stack.search.text(a, "cat", min_score=0.0, limit=100)
    cat_bytes = (sample_dir / "chelsea.png").read_bytes()
    linked = stack.ingest(
        a,
        [
            IngestItem(
                "repost-1",
                data=cat_bytes,
                post=post("p1", platform="x", author="alice", caption="lazy sunday #Caturday"),
            ),
            IngestItem("repost-2", data=cat_bytes, post=post("p2", platform="instagram", author="bob")),
            IngestItem(
                "coffee-post",
                path=sample_dir / "coffee.png",
                post=post("p3", platform="instagram", author="carol", caption="my morning #latte"),
            ),
        ],
    )
    assert linked == {
        "repost-1": ids["chelsea.png"],
        "repost-2": ids["chelsea.png"],
        "coffee-post": ids["coffee.png"],
    }
    b_ids = stack.ingest(
        b, [IngestItem(n, path=sample_dir / n) for n in ("chelsea.png", "coffee.png", "rocket.jpg")]
    )
    yield Shared(stack, a, b, ids, b_ids)
    stack.close()
    wired.database.dispose()


# -- words -------------------------------------------------------------------------------------------------
def test_cat_and_coffee_find_their_photo_first(shared: Shared) -> None:
    cat = shared.search.text(shared.a, "cat")
    ranked = shared.names(cat)
    assert ranked[0] in CATS
    # every cat image (the photo, its edits, its half) before anything else
    assert set(ranked[: len(CATS)]) == set(CATS), ranked
    coffee = shared.names(shared.search.text(shared.a, "coffee"))
    assert coffee[0] == "coffee.png", coffee
    assert not set(coffee) & set(CATS)


def test_person_finds_the_people(shared: Shared) -> None:
    """Everyday label names are part of each image's content vector: "person" finds the portraits,
    which ImageNet's class names (mortarboard, bobsled, tripod) never say."""
    people = {"astronaut.png", "grace_hopper.jpg", "camera.png"}
    ranked = shared.names(shared.search.text(shared.a, "a person", min_score=0.0, limit=len(people)))
    assert set(ranked) == people, ranked


def test_label_words_resolve_through_the_vocabulary(shared: Shared) -> None:
    """`label=` takes everyday words with aliases and plurals; parents are stored with their children."""
    services = shared.stack.services
    for word in ("cat", "Kittens", "tabby", "animal"):
        found = shared.search.text(
            shared.a, "cat", filters=services.resolve_filters(ImageFilter(label=word)), limit=100
        )
        assert shared.ids["chelsea.png"] in {h.image_id for h in found}, word
    person = services.resolve_filters(ImageFilter(label="people"))
    assert "person" in person.label_terms


def test_scores_are_calibrated_cosines_best_first(shared: Shared) -> None:
    hits = shared.search.text(shared.a, "cat", min_score=0.0, limit=100)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        assert 0.0 <= hit.score <= 1.0
        assert hit.score == pytest.approx(shared.search.text_calibration(hit.cosine))
    cut = shared.search.settings.search.min_score
    assert [h.image_id for h in shared.search.text(shared.a, "cat", limit=100)] == [
        h.image_id for h in hits if h.score >= cut
    ]


def test_captions_and_hashtags_are_searchable(shared: Shared) -> None:
    # the posts were linked after the index had been built: their captions arrived as updates
    latte = shared.search.text(shared.a, "latte")
    assert shared.names(latte)[0] == "coffee.png"
    # the same photo without the caption (team-b) matches "latte" less
    [without] = [
        h
        for h in shared.search.text(shared.b, "latte", min_score=0.0)
        if h.image_id == shared.b_ids["coffee.png"]
    ]
    assert latte[0].score > without.score
    for query in ("caturday", "#caturday"):
        assert shared.names(shared.search.text(shared.a, query))[0] == "chelsea.png", query


def test_a_query_unrelated_to_the_library_returns_nothing(shared: Shared) -> None:
    for query in UNRELATED:
        assert shared.search.text(shared.a, query) == [], query
        # not for want of candidates: without the cut-off every image is ranked
        assert len(shared.search.text(shared.a, query, min_score=0.0, limit=100)) == len(shared.ids)
    assert shared.search.text(shared.a, "cat", min_score=1.0) == []


def test_pages_split_one_ranking(shared: Shared) -> None:
    whole = shared.search.text(shared.a, "cat", min_score=0.0, limit=12)
    pages = [shared.search.text(shared.a, "cat", min_score=0.0, limit=4, offset=o) for o in (0, 4, 8)]
    assert [h.image_id for page in pages for h in page] == [h.image_id for h in whole]
    assert len({h.image_id for h in whole}) == 12
    assert shared.search.text(shared.a, "cat", min_score=0.0, offset=len(shared.ids)) == []


def test_negative_terms_push_their_meaning_away(shared: Shared) -> None:
    chelsea = shared.ids["chelsea.png"]

    def score(hits: list[Hit], image_id: str) -> float:
        return next(h.score for h in hits if h.image_id == image_id)

    plain = shared.search.text(shared.a, "cat", min_score=0.0, limit=100)
    pushed = shared.search.text(shared.a, "cat", ["caturday"], min_score=0.0, limit=100)
    # chelsea.png is the one image captioned #caturday: it falls behind its uncaptioned copies
    copy = shared.ids["cat_q60.jpg"]
    assert score(pushed, chelsea) - score(pushed, copy) < score(plain, chelsea) - score(plain, copy)
    assert [h.image_id for h in pushed].index(chelsea) > [h.image_id for h in pushed].index(copy)


# -- example images ----------------------------------------------------------------------------------------
def test_similar_to_the_cat_ranks_its_own_copies_first(shared: Shared) -> None:
    hits = shared.search.similar(shared.a, image_id=shared.ids["chelsea.png"], limit=100)
    ranked = shared.names(hits)
    assert "chelsea.png" not in ranked  # the example itself is not an answer
    assert set(ranked[:4]) == set(NEAR) - {"chelsea.png"}, ranked
    assert ranked[4] == HALF, ranked
    assert not set(ranked) & set(OTHERS)  # no other photo clears the cut-off


def test_similar_to_an_uploaded_image(shared: Shared, chelsea: Image.Image, sample_dir: Path) -> None:
    pipeline = shared.stack.services.upload_pipeline  # as the API and the CLI embed an upload

    def visual(data: bytes) -> np.ndarray:
        report = pipeline.analyze_one(data, "upload")
        labels = report.results["labels"]
        assert isinstance(labels, LabelsResult)
        return visual_vector(labels)

    w, h = chelsea.size
    unseen = encode(
        chelsea.crop((int(w * 0.1), int(h * 0.1), int(w * 0.9), int(h * 0.9))), "JPEG", quality=80
    )
    ranked = shared.names(shared.search.similar(shared.a, vector=visual(unseen)))
    assert set(ranked[: len(CATS)]) == set(CATS), ranked
    rocket = encode(Image.open(sample_dir / "rocket.jpg").convert("RGB"), "PNG")
    assert shared.names(shared.search.similar(shared.a, vector=visual(rocket))) == ["rocket.jpg"]
    # a stored photo uploaded again is embedded exactly as ingest embedded it
    for name in ("coffee.png", "china.jpg", "cat_q60.jpg"):
        data = (sample_dir / name).read_bytes() if name in SAMPLES else chelsea_copies(chelsea)[name]
        [best, *_] = shared.search.similar(shared.a, vector=visual(data)) or []
        assert best.image_id == shared.ids[name] and best.cosine == pytest.approx(1.0, abs=1e-4), name


def test_similar_to_an_unknown_or_foreign_image_is_none(shared: Shared) -> None:
    assert shared.search.similar(shared.a, image_id="0" * 24) is None
    assert shared.search.similar(shared.a, image_id=shared.b_ids["chelsea.png"]) is None
    assert shared.search.similar(shared.b, image_id=shared.ids["chelsea.png"]) is None


# -- filters -----------------------------------------------------------------------------------------------
def test_filters_restrict_search_results(shared: Shared) -> None:
    text = shared.search.text
    assert shared.names(text(shared.a, "cat", filters=ImageFilter(hashtag="caturday"))) == ["chelsea.png"]
    assert shared.names(text(shared.a, "cat", filters=ImageFilter(author="bob"))) == ["chelsea.png"]
    assert shared.names(text(shared.a, "coffee", filters=ImageFilter(platform="instagram"))) == ["coffee.png"]
    assert text(shared.a, "cat", filters=ImageFilter(safety="explicit")) == []
    assert text(shared.a, "cat", filters=ImageFilter(safety="explicit"), min_score=0.0) == []
    # the cut-off still applies inside the filtered set
    assert text(shared.a, "coffee", filters=ImageFilter(label="cat")) == []
    safe = text(shared.a, "cat", filters=ImageFilter(safety="safe"), limit=100)
    assert set(shared.names(safe)) == set(shared.names(text(shared.a, "cat", limit=100)))
    similar = shared.search.similar(
        shared.a,
        image_id=shared.ids["chelsea.png"],
        filters=ImageFilter(label="cat"),
        min_score=0.0,
        limit=100,
    )
    assert set(shared.names(similar)) <= set(CATS) and set(shared.names(similar)) >= {*NEAR[1:], HALF}


# -- duplicates and clusters -------------------------------------------------------------------------------
def test_duplicate_relations_are_kept_apart(shared: Shared) -> None:
    found = find_duplicates(shared.stack.services.database, shared.a, shared.search.settings.search)
    ids, name = shared.ids, {v: k for k, v in shared.ids.items()}
    # exact: the same bytes posted twice are one image with both posts
    [exact] = found["exact"]
    assert exact["image_id"] == ids["chelsea.png"]
    assert sorted(p["post_id"] for p in exact["posts"]) == ["p1", "p2"]
    # near: the photo and its edits, one group; nothing else is near anything
    assert [sorted(name[i] for i in g["images"]) for g in found["near"]] == [sorted(NEAR)]
    near_pairs = {frozenset((name[p["a"]], name[p["b"]])) for p in found["near"][0]["pairs"]}
    assert frozenset(("chelsea.png", "cat_mirror.png")) in near_pairs  # mirrored: pHash misses it
    # similar: the half joins the photo's group there, and is not near
    [similar] = found["similar"]
    assert HALF in {name[i] for i in similar["images"]} and ids["chelsea.png"] in similar["images"]
    for pair in similar["pairs"]:
        assert HALF in (name[pair["a"]], name[pair["b"]])  # the only new link is the half
    # different photos are neither
    grouped = {name[i] for g in found["near"] + found["similar"] for i in g["images"]}
    assert not grouped & set(OTHERS)


def test_duplicates_and_clusters_of_an_empty_workspace(shared: Shared) -> None:
    empty = AccessService(shared.stack.services.database).create_workspace("empty")
    database = shared.stack.services.database
    assert find_duplicates(database, empty, shared.search.settings.search) == {
        "exact": [],
        "near": [],
        "similar": [],
    }
    assert find_clusters(database, empty, 3) == {"clusters": [], "outliers": []}
    assert shared.search.text(empty, "cat", min_score=0.0) == []
    assert shared.search.similar(empty, vector=np.ones(DIMS[VISUAL], np.float32)) == []


def test_clusters_group_the_cat_images(shared: Shared) -> None:
    found = find_clusters(shared.stack.services.database, shared.a, 3)
    name = {v: k for k, v in shared.ids.items()}
    [cats] = [c for c in found["clusters"] if shared.ids["chelsea.png"] in c["images"]]
    assert {name[i] for i in cats["images"]} >= set(CATS)
    assert not {name[i] for i in cats["images"]} & set(OTHERS)
    assert cats["size"] == len(cats["images"])
    assert cats["name"] == "Cat"  # named by the everyday label its members lead with
    every = [i for c in found["clusters"] for i in c["images"]] + found["outliers"]
    assert sorted(every) == sorted(shared.ids.values())  # each image once
    everything = find_clusters(shared.stack.services.database, shared.a, len(shared.ids) + 1)
    assert everything == {"clusters": [], "outliers": sorted(shared.ids.values())}


# -- workspaces --------------------------------------------------------------------------------------------
def test_search_never_crosses_workspaces(shared: Shared) -> None:
    a_ids, b_ids = set(shared.ids.values()), set(shared.b_ids.values())
    assert not a_ids & b_ids  # the same bytes in two workspaces are two images
    for query in ("cat", "coffee", "rocket", "latte"):
        assert {h.image_id for h in shared.search.text(shared.b, query, min_score=0.0, limit=100)} == b_ids
        assert {h.image_id for h in shared.search.text(shared.a, query, min_score=0.0, limit=100)} == a_ids
    from_b = shared.search.similar(shared.b, image_id=shared.b_ids["chelsea.png"], min_score=0.0, limit=100)
    assert {h.image_id for h in from_b or []} == b_ids - {shared.b_ids["chelsea.png"]}
    found = find_duplicates(shared.stack.services.database, shared.b, shared.search.settings.search)
    assert found == {"exact": [], "near": [], "similar": []}
    clusters = find_clusters(shared.stack.services.database, shared.b, 2)
    assert {i for c in clusters["clusters"] for i in c["images"]} | set(clusters["outliers"]) == b_ids
    index_dir = shared.stack.services.settings.index_dir
    assert {p.name for p in index_dir.iterdir()} >= {str(shared.a), str(shared.b)}


# -- rebuild -----------------------------------------------------------------------------------------------
def test_rebuild_equals_the_incremental_index(shared: Shared) -> None:
    search, a = shared.search, shared.a
    queries = ("cat", "coffee", "latte", "rocket")
    for kind in DIMS:
        search.sync(a, kind)
    incremental = snapshot(search, a)
    for kind in DIMS:
        assert set(incremental[kind]) == table_ids(shared.stack.services, a, kind), kind
    before = {q: search.text(a, q, min_score=0.0, limit=100) for q in queries}
    similar_before = search.similar(a, image_id=shared.ids["chelsea.png"], min_score=0.0, limit=100)
    assert search.rebuild(a) == {kind: len(shared.ids) for kind in DIMS}
    assert_same_index(snapshot(search, a), incremental)
    for query, hits in before.items():
        after = search.text(a, query, min_score=0.0, limit=100)
        assert [h.image_id for h in after] == [h.image_id for h in hits], query
        assert [h.score for h in after] == pytest.approx([h.score for h in hits], abs=1e-6)
    similar_after = search.similar(a, image_id=shared.ids["chelsea.png"], min_score=0.0, limit=100)
    assert [h.image_id for h in similar_after or []] == [h.image_id for h in similar_before or []]
    # and a service started on the rebuilt files serves the same
    fresh = restarted(shared.stack)
    for kind in DIMS:
        fresh.sync(a, kind)
    assert_same_index(snapshot(fresh, a), incremental)


# -- storage: a small library of its own, SQLite and PostgreSQL -------------------------------------------
# Eight images: an HNSW index that loses one keeps it as a tombstone (under max_dead_fraction 0.2).
SMALL = (
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "astronaut.png",
    "camera.png",
    "motorcycle.png",
    "flower.jpg",
    "cat_q60.jpg",
)


@pytest.fixture
def small(stored_services: Services) -> Iterator[Stack]:
    stack = Stack.build(stored_services, ["embedding"])
    yield stack
    stack.close()


def ingest_small(
    stack: Stack, workspace: int, sample_dir: Path, chelsea: Image.Image, names: Sequence[str] = SMALL
) -> dict[str, str]:
    """Some of SMALL (the fewer, the faster: OCR runs on each)."""
    copy = encode(chelsea, "JPEG", quality=60)
    items = [
        IngestItem(n, data=copy) if n == "cat_q60.jpg" else IngestItem(n, path=sample_dir / n) for n in names
    ]
    return stack.ingest(workspace, items)


def index_file_ids(search: SearchService, workspace: int, kind: str) -> set[str]:
    return set(load_index(search.indexes.path(workspace, kind)).ids())


def test_erasure_removes_index_entries(small: Stack, sample_dir: Path, chelsea: Image.Image) -> None:
    access = AccessService(small.services.database)
    ws = access.create_workspace("team-a")
    ids = ingest_small(
        small, ws, sample_dir, chelsea, ("chelsea.png", "coffee.png", "rocket.jpg", "cat_q60.jpg")
    )
    small.ingest(
        ws, [IngestItem("rocket-post", path=sample_dir / "rocket.jpg", post=post("r1", author="eve"))]
    )
    search = small.search
    assert ids["cat_q60.jpg"] in {h.image_id for h in search.text(ws, "cat")}
    assert ids["cat_q60.jpg"] in {h.image_id for h in search.similar(ws, image_id=ids["chelsea.png"]) or []}
    for kind in DIMS:
        search.sync(ws, kind)

    assert small.library.delete_images(ws, [ids["cat_q60.jpg"]]) == [ids["cat_q60.jpg"]]
    assert small.library.delete_author(ws, "eve") == {"posts": 1, "images": 1}
    gone = {ids["cat_q60.jpg"], ids["rocket.jpg"]}
    with small.services.database.session() as session:
        left = session.scalar(select(func.count()).select_from(Embedding).where(Embedding.image_id.in_(gone)))
    assert left == 0
    for kind, dim in DIMS.items():
        assert not gone & set(search.indexes.get(ws, kind, dim).ids()), kind  # in memory
        assert not gone & index_file_ids(search, ws, kind), kind  # on disk, at once
    for query in ("cat", "rocket"):
        assert not gone & {h.image_id for h in search.text(ws, query, min_score=0.0, limit=100)}
    assert not gone & {
        h.image_id for h in search.similar(ws, image_id=ids["chelsea.png"], min_score=0.0) or []
    }
    assert search.similar(ws, image_id=ids["cat_q60.jpg"]) is None
    found = find_duplicates(small.services.database, ws, small.services.settings.search)
    assert not gone & {i for g in found["near"] + found["similar"] for i in g["images"]}
    # and after a restart
    fresh = restarted(small)
    assert not gone & {h.image_id for h in fresh.text(ws, "cat", min_score=0.0, limit=100)}
    assert not gone & {
        h.image_id for h in fresh.similar(ws, image_id=ids["chelsea.png"], min_score=0.0) or []
    }


def test_erasure_leaves_no_vector_in_an_hnsw_index_file(
    small: Stack, sample_dir: Path, chelsea: Image.Image
) -> None:
    settings = small.services.settings
    indexes = IndexStore(settings.index_dir, backend="faiss", params=FaissParams(hnsw_threshold=2))
    search = SearchService(
        small.services.database, indexes, small.search.encoder, settings, small.search.semantic_model
    )
    small.library.erasure_hooks[:] = [search.forget]
    ws = AccessService(small.services.database).create_workspace("team-a")
    ids = ingest_small(small, ws, sample_dir, chelsea)
    erased = ids["cat_q60.jpg"]
    search.similar(ws, image_id=ids["chelsea.png"])  # sync + save: the visual index becomes a graph
    index = indexes.get(ws, VISUAL, DIMS[VISUAL])
    assert isinstance(index, FaissIndex) and index.is_hnsw
    stored = index.vector(erased)
    assert stored is not None

    small.library.delete_images(ws, [erased])
    path = indexes.path(ws, VISUAL)
    on_disk = load_index(path)
    assert erased not in on_disk.ids()
    assert isinstance(on_disk, FaissIndex) and on_disk.tombstones == 0
    assert stored.astype("<f4").tobytes() not in path.read_bytes()


def test_index_follows_table_changes_across_restarts(
    small: Stack, sample_dir: Path, chelsea: Image.Image
) -> None:
    ws = AccessService(small.services.database).create_workspace("team-a")
    ids = ingest_small(small, ws, sample_dir, chelsea, ("chelsea.png", "coffee.png", "rocket.jpg"))
    search = small.search

    def latte(service: SearchService) -> float:
        hits = service.text(ws, "latte", min_score=0.0, limit=100)
        return next(h.score for h in hits if h.image_id == ids["coffee.png"])

    before = latte(search)  # synced (and saved) before the caption exists
    small.ingest(
        ws, [IngestItem("p", path=sample_dir / "coffee.png", post=post("c1", caption="my morning #latte"))]
    )
    assert latte(search) > before  # the updated vector replaced the old one in the running index
    assert latte(restarted(small)) == pytest.approx(latte(search), abs=1e-6)


def quiet_ingest(stack: Stack, workspace: int, sample_dir: Path) -> str:
    """A new image with a caption stored by an ingest that does not tell search: another process, or
    a crash (or a failed hook) between the commit and the hook. Its fused vector is left to sync."""
    quiet = Ingestor(stack.library, stack.services.pipeline(["embedding"]), stack.fetcher, 8)
    data = encode(ImageOps.mirror(Image.open(sample_dir / "coffee.png").convert("RGB")), "PNG")
    [added] = quiet.ingest(
        workspace, [IngestItem("m", data=data, post=post("m1", caption="my morning #latte"))]
    )
    assert added.status == "added"
    assert SEMANTIC not in {k for k in DIMS if added.image_id in table_ids(stack.services, workspace, k)}
    return str(added.image_id)


def test_a_restarted_service_fuses_what_the_hook_missed(
    small: Stack, sample_dir: Path, chelsea: Image.Image
) -> None:
    ws = AccessService(small.services.database).create_workspace("team-a")
    ingest_small(small, ws, sample_dir, chelsea, ("coffee.png", "rocket.jpg"))
    small.search.text(ws, "latte")
    small.search.flush()
    added = quiet_ingest(small, ws, sample_dir)
    fresh = restarted(small)
    assert added in {h.image_id for h in fresh.text(ws, "latte")}
    assert set(fresh.indexes.get(ws, SEMANTIC, DIMS[SEMANTIC]).ids()) == table_ids(
        small.services, ws, SEMANTIC
    )


def test_a_running_service_fuses_what_the_hook_missed(
    small: Stack, sample_dir: Path, chelsea: Image.Image
) -> None:
    ws = AccessService(small.services.database).create_workspace("team-a")
    ingest_small(small, ws, sample_dir, chelsea, ("coffee.png", "rocket.jpg"))
    small.search.text(ws, "latte")  # in step
    added = quiet_ingest(small, ws, sample_dir)
    assert added in {h.image_id for h in small.search.text(ws, "latte")}


def test_rebuild_equals_incremental_on_each_database(
    small: Stack, sample_dir: Path, chelsea: Image.Image
) -> None:
    access = AccessService(small.services.database)
    ws, other = access.create_workspace("team-a"), access.create_workspace("team-b")
    ids = ingest_small(
        small,
        ws,
        sample_dir,
        chelsea,
        ("chelsea.png", "coffee.png", "rocket.jpg", "camera.png", "cat_q60.jpg"),
    )
    small.ingest(other, [IngestItem("c", path=sample_dir / "chelsea.png")])
    search = small.search
    search.text(ws, "cat")
    small.library.delete_images(ws, [ids["camera.png"]])
    small.ingest(
        ws, [IngestItem("p", path=sample_dir / "coffee.png", post=post("c1", caption="my morning #latte"))]
    )
    for kind in DIMS:
        search.sync(ws, kind)
    incremental = snapshot(search, ws)
    expected = len(ids) - 1
    assert {kind: len(v) for kind, v in incremental.items()} == {kind: expected for kind in DIMS}
    assert search.rebuild(ws) == {kind: expected for kind in DIMS}
    assert_same_index(snapshot(search, ws), incremental)
    # a service with no index files at all builds the same from the table alone
    bare = SearchService(
        small.services.database,
        IndexStore(small.services.settings.index_dir.parent / "bare-index"),
        search.encoder,
        small.services.settings,
        search.semantic_model,
    )
    for kind in DIMS:
        bare.sync(ws, kind)
    assert_same_index(snapshot(bare, ws), incremental)
