"""FAISS specifics: HNSW recall vs exact search, tombstones, the flat/HNSW switch, filtered graph search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from feedlens.index import ExactIndex, FaissIndex, FaissParams, VectorIndexError
from tests.index import assert_same, clustered, image_ids, recall

N, DIM = 20_000, 128


@pytest.fixture(scope="module")
def data() -> tuple[list[str], np.ndarray, np.ndarray, ExactIndex]:
    both = clustered(N + 200, DIM, seed=20, clusters=200, spread=1.0)
    vectors, queries = both[:N], both[N:]  # queries: fresh points around the same centres
    ids = image_ids(N)
    exact = ExactIndex(DIM)
    exact.add(ids, vectors)
    return ids, vectors, queries, exact


@pytest.fixture(scope="module")
def hnsw(data: tuple[list[str], np.ndarray, np.ndarray, ExactIndex]) -> FaissIndex:
    ids, vectors, _, _ = data
    index = FaissIndex.build(DIM, ids, vectors)  # N == the default threshold: HNSW
    assert index.backend == "faiss-hnsw"
    return index


def test_hnsw_recall_at_10_against_exact(
    data: tuple[list[str], np.ndarray, np.ndarray, ExactIndex], hnsw: FaissIndex
) -> None:
    _, _, queries, exact = data
    assert recall(hnsw.search(queries, 10), exact.search(queries, 10)) >= 0.95


def test_filtered_search_keeps_recall(
    data: tuple[list[str], np.ndarray, np.ndarray, ExactIndex], hnsw: FaissIndex, tmp_path: Path
) -> None:
    ids, _, queries, exact = data
    rng = np.random.default_rng(21)
    broad = set(rng.choice(ids, N // 4, replace=False).tolist())  # unfiltered search, then filtered
    selective = set(rng.choice(ids, N // 200, replace=False).tolist())  # 0.5%: mapped to positions
    # exact_filter_limit below the allowed count: the graph is searched with a selector
    graph = FaissIndex.load(_saved(hnsw, tmp_path), FaissParams(exact_filter_limit=50, max_filtered_ef=4096))
    for index, allowed in ((hnsw, broad), (graph, selective)):
        got = index.search(queries, 10, allowed)
        assert all(i in allowed for row in got for i, _ in row)
        assert recall(got, exact.search(queries, 10, allowed)) >= 0.95
    # at most exact_filter_limit ids allowed: exact over just those rows, identical to the exact index
    assert_same(hnsw.search(queries[:20], 10, selective), exact.search(queries[:20], 10, selective))


def _saved(index: FaissIndex, folder: Path) -> Path:
    index.save(folder / "copy.index")
    return folder / "copy.index"


def test_tombstones_are_hidden_then_compacted() -> None:
    vectors = clustered(3000, 32, seed=22)
    ids = image_ids(3000)
    index = FaissIndex.build(32, ids, vectors, FaissParams(hnsw_threshold=1000))
    assert index.backend == "faiss-hnsw"
    index.remove(ids[:300])  # 10%: under max_dead_fraction, kept as tombstones
    index.add([ids[500]], vectors[501][None])  # a replaced id leaves a tombstone too
    assert index.tombstones == 301 and len(index) == 2700
    assert not index.maintain()
    before = index.search(vectors[:50], 10)
    assert all(i not in ids[:300] for row in before for i, _ in row)
    assert [i for i, _ in index.search(vectors[501], 3)[0]].count(ids[500]) == 1
    assert index.maintain(purge=True)  # erasure: no removed vector may stay
    assert index.tombstones == 0 and len(index) == 2700 and index.backend == "faiss-hnsw"
    assert recall(index.search(vectors[:50], 10), before) >= 0.98  # a new graph: near-identical
    index.remove(ids[300:1000])  # 26% of the nodes: rebuilt on the next maintain
    assert index.maintain() and index.tombstones == 0 and len(index) == 2000


def test_structure_follows_the_size_threshold() -> None:
    vectors = clustered(1500, 32, seed=23)
    ids = image_ids(1500)
    index = FaissIndex(32, FaissParams(hnsw_threshold=1000))
    index.add(ids[:999], vectors[:999])
    assert not index.maintain() and index.backend == "faiss-flat"
    index.add(ids[999:], vectors[999:])
    assert index.backend == "faiss-flat"  # switching waits for maintain (the store calls it on save)
    assert index.maintain() and index.backend == "faiss-hnsw" and len(index) == 1500
    assert [r[0][0] for r in index.search(vectors[:20], 1)] == ids[:20]
    index.remove(ids[:700])  # 800 left: above threshold * flat_below, stays HNSW (compacted)
    assert index.maintain() and index.backend == "faiss-hnsw"
    index.remove(ids[700:1100])  # 400 left: under 500, back to flat
    assert index.maintain() and index.backend == "faiss-flat" and sorted(index.ids()) == ids[1100:]
    assert [r[0][0] for r in index.search(vectors[1100:1120], 1)] == ids[1100:1120]


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(VectorIndexError):
        FaissParams(hnsw_m=0)
    with pytest.raises(VectorIndexError):
        FaissParams(max_dead_fraction=0)
    assert FaissParams.from_dict({"ef_search": 64, "from_a_later_version": 1}).ef_search == 64
