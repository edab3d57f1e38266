"""The `VectorIndex` contract, checked on every backend: exact numpy, FAISS flat and FAISS HNSW."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from feedlens.core.errors import FeedlensError
from feedlens.core.files import write_atomic
from feedlens.index import (
    ExactIndex,
    FaissIndex,
    FaissParams,
    VectorIndex,
    VectorIndexError,
    base,
    load_index,
)
from feedlens.index import exact as exact_module
from feedlens.index import faiss_index as faiss_module
from tests.index import clustered, image_ids, recall

DIM = 32
Make = Callable[[list[str], np.ndarray], VectorIndex]
FLAVOURS = ["exact", "faiss-flat", "faiss-hnsw"]


def make_index(flavour: str, ids: list[str], vectors: np.ndarray) -> VectorIndex:
    if flavour == "exact":
        index: VectorIndex = ExactIndex(vectors.shape[1])
        index.add(ids, vectors)
        return index
    # hnsw_threshold=1: the HNSW graph from the first vector on
    params = FaissParams(hnsw_threshold=1 if flavour == "faiss-hnsw" else 20_000)
    built = FaissIndex.build(vectors.shape[1], ids, vectors, params)
    assert built.backend == flavour or not ids
    return built


@pytest.fixture(params=FLAVOURS)
def make(request: pytest.FixtureRequest) -> Make:
    flavour: str = request.param
    return lambda ids, vectors: make_index(flavour, ids, vectors)


def ranking(results: list[list[tuple[str, float]]]) -> list[list[str]]:
    return [[i for i, _ in row] for row in results]


def test_exact_and_faiss_flat_give_the_same_top_k() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((2000, 64)).astype(np.float32)
    ids = image_ids(2000)
    exact, flat = make_index("exact", ids, vectors), make_index("faiss-flat", ids, vectors)
    queries = rng.standard_normal((50, 64)).astype(np.float32)
    a, b = exact.search(queries, 10), flat.search(queries, 10)
    assert ranking(a) == ranking(b)
    np.testing.assert_allclose([[s for _, s in r] for r in a], [[s for _, s in r] for r in b], atol=1e-5)
    allowed = set(rng.choice(ids, 300, replace=False).tolist())
    assert ranking(exact.search(queries, 10, allowed)) == ranking(flat.search(queries, 10, allowed))


def test_each_vector_finds_itself_first_with_cosine_one(make: Make) -> None:
    vectors = clustered(400, DIM, seed=2) * 3.0  # not unit: the index normalises
    ids = image_ids(400)
    index = make(ids, vectors)
    assert len(index) == 400 and set(index.ids()) == set(ids) and ids[7] in index
    results = index.search(vectors[:20], 3)
    assert [r[0][0] for r in results] == ids[:20]
    assert all(abs(r[0][1] - 1.0) < 1e-5 for r in results)
    assert all(r[0][1] >= r[1][1] >= r[2][1] for r in results)  # best first
    stored = index.vector(ids[3])
    assert stored is not None and stored.dtype == np.float32
    np.testing.assert_allclose(stored, vectors[3] / np.linalg.norm(vectors[3]), atol=1e-6)


def test_re_adding_an_id_replaces_its_vector(make: Make) -> None:
    vectors = clustered(300, DIM, seed=3)
    ids = image_ids(300)
    index = make(ids, vectors)
    fresh = -vectors[5]  # as far from the old vector as can be
    index.add([ids[5]], fresh[None])
    assert len(index) == 300
    np.testing.assert_allclose(index.vector(ids[5]), fresh, atol=1e-6)  # type: ignore[arg-type]
    assert index.search(fresh, 1)[0][0] == (ids[5], pytest.approx(1.0, abs=1e-5))
    # The old vector's nearest is no longer ids[5], and ids[5] appears at most once in any result.
    everything = index.search(vectors[5], 300)[0]
    assert everything[0][0] != ids[5]
    assert [i for i, _ in everything].count(ids[5]) == 1
    assert dict(everything)[ids[5]] == pytest.approx(-1.0, abs=1e-5)


def test_removed_ids_are_never_returned(make: Make) -> None:
    vectors = clustered(300, DIM, seed=4)
    ids = image_ids(300)
    index = make(ids, vectors)
    gone = ids[::2]
    assert index.remove([*gone, "not-there"]) == 150
    assert index.remove(gone) == 0
    assert len(index) == 150 and gone[0] not in index and index.vector(gone[0]) is None
    kept = set(ids[1::2])
    for row in index.search(vectors[:40], 300):
        assert {i for i, _ in row} == kept
    assert all(
        r[0][0] == ids[i] for i, r in zip(range(1, 40, 2), index.search(vectors[1:40:2], 1), strict=True)
    )
    # re-added after removal: found again, with the new vector
    index.add([gone[0]], vectors[1][None])
    assert index.search(vectors[1], 2)[0][0][1] == pytest.approx(1.0, abs=1e-5)
    assert gone[0] in {i for i, _ in index.search(vectors[1], 2)[0]}
    assert index.remove(set(ids)) == 151 and len(index) == 0 and index.search(vectors[0], 5) == [[]]


@pytest.fixture
def postfilter_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Spy on `postfiltered` in both backends: one entry per call, True when it answered the search."""
    calls: list[bool] = []

    def spy(*args: Any) -> Any:
        answer = base.postfiltered(*args)
        calls.append(answer is not None)
        return answer

    monkeypatch.setattr(exact_module, "postfiltered", spy)
    monkeypatch.setattr(faiss_module, "postfiltered", spy)
    return calls


# 0.5% and 5% (25 and 250 ids): mapped to positions, exact over those rows; 60% (3000 ids): an unfiltered
# search for more candidates, then filtered
@pytest.mark.parametrize(("share", "postfiltered"), [(0.005, False), (0.05, False), (0.6, True)])
def test_allowed_ids_filter_matches_exact_filtered_search(
    make: Make, share: float, postfiltered: bool, postfilter_calls: list[bool]
) -> None:
    vectors = clustered(5000, DIM, seed=5)
    ids = image_ids(5000)
    index, reference = make(ids, vectors), make_index("exact", ids, vectors)
    rng = np.random.default_rng(6)
    allowed = set(rng.choice(ids, int(share * 5000), replace=False).tolist()) | {"unknown-id"}
    queries = clustered(30, DIM, seed=7)
    want = reference.search(queries, 10, allowed)
    postfilter_calls.clear()
    got = index.search(queries, 10, allowed)
    assert postfilter_calls == [postfiltered]
    assert all(i in allowed for row in got for i, _ in row)
    if postfiltered and index.backend == "faiss-hnsw":  # graph candidates: approximate, like HNSW itself
        assert recall(got, want) >= 0.95
    else:
        assert ranking(got) == ranking(want)
    assert ranking(index.search(queries, 10, sorted(allowed))) == ranking(got)  # any collection
    assert index.search(queries[0], 10, set()) == [[]]
    assert index.search(queries[0], 10, {"unknown-id"}) == [[]]
    assert {i for i, _ in index.search(queries[0], 50, set(ids[:3]))[0]} == set(ids[:3])


def test_a_broad_filter_far_from_the_query_still_finds_its_best(
    make: Make, postfilter_calls: list[bool]
) -> None:
    """50% allowed, all of them the query's worst matches: the candidates of an unfiltered search hold
    none, so the index must fall back to searching the allowed ids themselves."""
    vectors = clustered(5000, DIM, seed=16)
    ids = image_ids(5000)
    index = make(ids, vectors)
    order = np.argsort(vectors @ vectors[0])  # worst first
    allowed = {ids[i] for i in order[:2500]}
    want = make_index("exact", ids, vectors).search(vectors[0], 10, allowed)
    assert len(want[0]) == 10
    postfilter_calls.clear()
    assert ranking(index.search(vectors[0], 10, allowed)) == ranking(want)
    assert postfilter_calls == [False]  # tried, fell short, fell back


def test_empty_index_and_k_larger_than_the_index(make: Make) -> None:
    vectors = clustered(8, DIM, seed=8)
    empty = make([], np.zeros((0, DIM), np.float32))
    assert len(empty) == 0 and empty.ids() == [] and empty.search(vectors[0], 5) == [[]]
    assert empty.search(vectors[:3], 5) == [[], [], []]
    index = make(image_ids(8), vectors)
    row = index.search(vectors[0], 100)[0]
    assert len(row) == 8 and [s for _, s in row] == sorted((s for _, s in row), reverse=True)


def test_batch_queries_answer_like_single_ones(make: Make) -> None:
    vectors = clustered(500, DIM, seed=9)
    index = make(image_ids(500), vectors)
    queries = clustered(6, DIM, seed=10)
    assert ranking(index.search(queries, 5)) == [ranking(index.search(q, 5))[0] for q in queries]


def test_wrong_inputs_raise_a_coded_error(make: Make) -> None:
    index = make(image_ids(10), clustered(10, DIM, seed=11))
    bad_calls: list[Callable[[], object]] = [
        lambda: index.add(["a"], np.ones((1, DIM + 1))),  # dimension
        lambda: index.search(np.ones(DIM + 1), 3),
        lambda: index.add(["a", "b"], np.ones((1, DIM))),  # count
        lambda: index.add(["a", "a"], np.ones((2, DIM))),  # duplicate in one call
        lambda: index.add([""], np.ones((1, DIM))),
        lambda: index.add(["a"], np.zeros((1, DIM))),  # no direction
        lambda: index.add(["a"], np.full((1, DIM), np.nan)),
        lambda: index.search(np.ones(DIM), 0),
        lambda: index.search(np.ones(DIM), 3, allowed="abc"),
        lambda: index.remove("abc"),
    ]
    for call in bad_calls:
        with pytest.raises(VectorIndexError) as caught:
            call()
        assert isinstance(caught.value, FeedlensError) and caught.value.code == "index_invalid"
    assert len(index) == 10  # nothing half-applied


def test_save_and_load_give_identical_results(make: Make, tmp_path: Path) -> None:
    vectors = clustered(600, DIM, seed=12)
    ids = image_ids(600)
    index = make(ids, vectors)
    index.remove(ids[:50])  # HNSW: tombstones travel with the file
    index.add([ids[60]], vectors[61][None])
    path = tmp_path / "visual.index"
    index.save(path)
    for loaded in (load_index(path), type(index).load(path)):
        assert type(loaded) is type(index) and loaded.backend == index.backend and loaded.dim == DIM
        assert sorted(loaded.ids()) == sorted(index.ids())
        queries = clustered(20, DIM, seed=13)
        assert loaded.search(queries, 10) == index.search(queries, 10)
        np.testing.assert_array_equal(loaded.vector(ids[60]), index.vector(ids[60]))  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == ["visual.index"]  # no temporary file left


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    index = make_index("faiss-flat", image_ids(20), clustered(20, DIM, seed=14))
    path = tmp_path / "visual.index"
    index.save(path)
    before = path.read_bytes()

    def half_then_fail(f: object) -> None:
        f.write(b"half a file")  # type: ignore[attr-defined]
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, half_then_fail)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["visual.index"]
    path.write_bytes(b"not an index")
    with pytest.raises(VectorIndexError):
        load_index(path)
    path.write_bytes(before[: len(before) // 2])  # truncated
    with pytest.raises(VectorIndexError):
        load_index(path)


def test_searches_run_safely_while_the_index_changes(make: Make) -> None:
    vectors = clustered(1200, DIM, seed=15)
    ids = image_ids(1200)
    index = make(ids[:600], vectors[:600])
    errors: list[BaseException] = []
    done = threading.Event()

    def searcher() -> None:
        try:
            while not done.is_set():
                for row in index.search(vectors[:8], 5):
                    assert all(i in set(ids) for i, _ in row)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for start in range(600, 1200, 50):
        index.add(ids[start : start + 50], vectors[start : start + 50])
        index.remove(ids[start - 600 : start - 550])
    index.maintain()
    done.set()
    for t in threads:
        t.join()
    assert not errors
    assert set(index.ids()) == set(ids[600:])
    assert [r[0][0] for r in index.search(vectors[600:610], 1)] == ids[600:610]
