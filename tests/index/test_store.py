"""`IndexStore` on a real temporary folder: per-workspace files, lazy loading, rebuild, drop, recovery."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from feedlens.index import ExactIndex, FaissIndex, FaissParams, IndexStore, VectorIndexError
from tests.index import assert_same, clustered, image_ids

DIM = 16


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture(params=["faiss", "exact"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> IndexStore:
    return IndexStore(tmp_path / "index", backend=request.param)


def test_get_creates_caches_and_reloads(store: IndexStore) -> None:
    index = store.get(1, "visual", DIM)
    assert len(index) == 0 and store.get(1, "visual", DIM) is index
    assert files(store.root) == []  # nothing is written before a save
    vectors = clustered(50, DIM, seed=30)
    index.add(image_ids(50), vectors)
    assert store.save(1, "visual")
    assert files(store.root) == ["1/visual.index"]
    again = IndexStore(store.root, backend=store.backend)  # a restart
    reloaded = again.get(1, "visual", DIM)
    assert reloaded is not index and type(reloaded) is type(index)
    assert_same(reloaded.search(vectors[:5], 5), index.search(vectors[:5], 5))
    assert again.search(1, "visual", vectors[0], 1)[0][0][0] == image_ids(1)[0]
    assert not again.save(1, "semantic")  # never opened: nothing to save


def test_workspaces_are_isolated(store: IndexStore) -> None:
    a, b = clustered(40, DIM, seed=31), clustered(40, DIM, seed=32)
    store.get(1, "visual", DIM).add(image_ids(40), a)
    store.get(2, "visual", DIM).add(image_ids(40, start=1000), b)
    store.get(1, "semantic", DIM).add(image_ids(5, start=5000), a[:5])
    mine = set(image_ids(40))
    for query in (a[:5], b[:5]):
        assert all(i in mine for row in store.search(1, "visual", query, 40) for i, _ in row)
    for kind in ("visual", "semantic"):
        store.save(1, kind)
    store.save(2, "visual")
    assert store.kinds(1) == ["semantic", "visual"] and store.kinds(2) == ["visual"]
    store.drop(1)
    assert files(store.root) == ["2/visual.index"] and store.kinds(1) == []
    assert store.search(1, "visual", a[0], 5) == [[]]
    assert len(store.get(1, "visual", DIM)) == 0  # a new, empty index after the drop
    assert len(store.get(2, "visual", DIM)) == 40


def test_dimension_mismatch_and_bad_names_raise(store: IndexStore) -> None:
    store.get("team-a", "visual", DIM)
    with pytest.raises(VectorIndexError, match="rebuild"):
        store.get("team-a", "visual", DIM * 2)
    for workspace, kind in [
        ("../x", "visual"),
        ("a/b", "visual"),
        (1, "Visual"),
        (1, "v.x"),
        (True, "visual"),
    ]:
        with pytest.raises(VectorIndexError):
            store.get(workspace, kind, DIM)
    with pytest.raises(VectorIndexError):
        IndexStore(store.root, backend="annoy")


def test_rebuild_replaces_the_content_and_saves(store: IndexStore) -> None:
    old = store.get(3, "visual", DIM)
    old.add(image_ids(30), clustered(30, DIM, seed=33))
    vectors = clustered(20, DIM, seed=34)
    new = store.rebuild(3, "visual", image_ids(20, start=100), vectors)
    assert new is store.get(3, "visual", DIM) and sorted(new.ids()) == image_ids(20, start=100)
    assert files(store.root) == ["3/visual.index"]
    assert sorted(IndexStore(store.root, backend=store.backend).get(3, "visual", DIM).ids()) == new.ids()
    empty = store.rebuild(3, "visual", [], np.zeros((0, DIM), np.float32))
    assert len(empty) == 0 and store.search(3, "visual", vectors[0], 3) == [[]]


def test_save_switches_to_hnsw_past_the_threshold(tmp_path: Path) -> None:
    store = IndexStore(tmp_path, params=FaissParams(hnsw_threshold=500))
    index = store.get(1, "visual", DIM)
    vectors = clustered(600, DIM, seed=35)
    index.add(image_ids(600), vectors)
    assert index.backend == "faiss-flat"
    store.save(1, "visual")
    assert index.backend == "faiss-hnsw"  # switched in place: callers' references stay valid
    reloaded = IndexStore(tmp_path, params=FaissParams(hnsw_threshold=500)).get(1, "visual", DIM)
    assert reloaded.backend == "faiss-hnsw" and len(reloaded) == 600
    index.remove(image_ids(10))
    store.save(1, "visual", purge=True)  # erasure: the graph is rebuilt without them
    assert isinstance(index, FaissIndex) and index.tombstones == 0 and len(index) == 590


def test_an_index_saved_by_the_other_backend_is_converted(tmp_path: Path) -> None:
    vectors = clustered(30, DIM, seed=36)
    exact = IndexStore(tmp_path, backend="exact")
    exact.get(1, "visual", DIM).add(image_ids(30), vectors)
    exact.save(1, "visual")
    converted = IndexStore(tmp_path, backend="faiss").get(1, "visual", DIM)
    assert isinstance(converted, FaissIndex)
    assert_same(converted.search(vectors[:3], 5), exact.get(1, "visual", DIM).search(vectors[:3], 5))
    assert isinstance(IndexStore(tmp_path, backend="exact").get(1, "visual", DIM), ExactIndex)


def test_a_corrupt_file_is_moved_aside_and_the_index_starts_empty(
    store: IndexStore, caplog: pytest.LogCaptureFixture
) -> None:
    path = store.path(4, "visual")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"FLVINDEX garbage")
    assert len(store.get(4, "visual", DIM)) == 0
    assert files(store.root) == ["4/visual.index.corrupt"] and "moved to" in caplog.text


def test_concurrent_first_uses_load_the_file_once(store: IndexStore) -> None:
    store.get(5, "visual", DIM).add(image_ids(10), clustered(10, DIM, seed=37))
    store.save(5, "visual")
    fresh = IndexStore(store.root, backend=store.backend)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(fresh.get(5, "visual", DIM))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(g is got[0] for g in got)
    assert fresh.save_all() == 1
