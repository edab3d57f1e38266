"""`FaissIndex`: FAISS flat search for small libraries, HNSW graph search beyond a size threshold.

Structure. Below `hnsw_threshold` live vectors the index is an `IndexFlatIP` (exact, cheap to change);
`maintain()` turns it into an `IndexHNSWFlat` (inner product, `hnsw_m` links per node) once it holds
that many, and back to flat if it shrinks under half the threshold (the gap keeps an index that hovers
around the threshold from being rebuilt again and again). `IndexStore` calls `maintain()` before each
save; `build()` picks the structure directly. The default figures come from benchmarks/search_bench.py
(docs/benchmarks.md): flat search at 20k x 1280-d takes ~5 ms, HNSW at 1M ~1 ms (recall@10 0.98).

Ids. A position (FAISS's int64 label) is a row of the index; `_labels[position]` is its string id.
Flat: a removed row is filled with the last row and the tail is cut, as in `ExactIndex`; a re-added id
is overwritten in place. HNSW cannot delete a graph node, so a removed or replaced id leaves a
tombstone: its label becomes None and searches pass FAISS a bitmap selector of live positions, so a
tombstone is never returned while the graph still routes through it. Tombstones cost memory and a little
speed; `maintain()` rebuilds the graph once they exceed `max_dead_fraction` of the nodes (or on demand,
with `purge=True`, when an erasure must leave no trace of the vector).

Filters (`allowed`). A filter of more than 2000 ids that lets at least 1% of the index through is
applied to an unfiltered search for ceil(2 k / share) candidates, at most 2048 (`base.postfiltered`: a
set lookup per candidate, no per-allowed-id work; exact on flat). Any other filter (or one that left
some query short) maps its ids to positions. Flat: exact over just those rows
(`compute_distance_subset`). HNSW: the same on the graph's flat storage when at most
`exact_filter_limit` ids are allowed, because graph search with a selective filter wastes its effort
on rejected nodes and loses recall; larger sets search the graph with a bitmap selector and `efSearch`
raised by 1 / (allowed share), capped at `max_filtered_ef`.

Thread safety: reads share `_rw`. add and remove hold `_writer`, then `_rw` for writing. maintain holds
`_writer` while it builds the new structure (searches go on against the old one, no change can slip in)
and takes `_rw` for writing only to swap it in. save holds `_writer` alone.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO, Self

import numpy as np
import numpy.typing as npt

from feedlens.core.files import write_atomic
from feedlens.index.base import (
    Match,
    RWLock,
    VectorIndexError,
    Vectors,
    allowed_ids,
    check_dim,
    check_ids,
    check_k,
    expect_backend,
    id_array,
    normalised,
    positions_of,
    postfiltered,
    read_array,
    read_header,
    removal_ids,
    top_k,
    write_array,
    write_header,
)


def _faiss() -> Any:
    """The faiss module, imported on first use (start-up never pays for it). The wheel's stub lacks much of
    what is used here (SearchParametersHNSW, selector keywords, the IO callbacks, IndexFlat.get_xb): the
    module is used untyped."""
    import faiss

    return faiss


COPY_CHUNK = 65_536  # rows copied per step when rebuilding, so a rebuild needs ~1x extra memory, not 2x


@dataclass(frozen=True)
class FaissParams:
    """How a `FaissIndex` is built and searched (defaults chosen by benchmarks/search_bench.py)."""

    hnsw_threshold: int = 20_000  # live vectors from which maintain() builds HNSW instead of flat
    hnsw_m: int = 32  # graph links per node
    ef_construction: int = 80
    ef_search: int = 256  # raised to k when k is larger (recall@10 0.98 at 1M x 1280-d, p99 < 2 ms)
    exact_filter_limit: int = 20_000  # HNSW + selective filter: exact over the allowed rows up to this many
    max_filtered_ef: int = 2048
    max_dead_fraction: float = 0.2  # HNSW: rebuild once tombstones exceed this share of the nodes
    flat_below: float = 0.5  # HNSW: back to flat under hnsw_threshold * flat_below live vectors

    def __post_init__(self) -> None:
        ints = (self.hnsw_threshold, self.hnsw_m, self.ef_construction, self.ef_search, self.max_filtered_ef)
        if min(ints) < 1 or self.exact_filter_limit < 0:
            raise VectorIndexError(f"invalid FAISS index parameters: {self}")
        if not (0 < self.max_dead_fraction <= 1 and 0 <= self.flat_below <= 1):
            raise VectorIndexError(f"invalid FAISS index parameters: {self}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaissParams:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


class FaissIndex:
    """Cosine search with FAISS (flat, or HNSW beyond a threshold). See `VectorIndex` for the contract."""

    def __init__(self, dim: int, params: FaissParams | None = None) -> None:
        self._dim = check_dim(dim)
        self.params = params or FaissParams()
        self._index: Any = _faiss().IndexFlatIP(dim)
        self._labels: list[str | None] = []  # position -> id; None: a tombstone (HNSW only)
        self._pos: dict[str, int] = {}
        self._dead = 0
        self._live = np.ones(0, dtype=bool)  # per position: not a tombstone
        self._live_bits: npt.NDArray[np.uint8] | None = None  # `_live` packed, while there are tombstones
        self._writer = threading.Lock()
        self._rw = RWLock()
        self.note: dict[str, Any] = {}  # the owner's facts saved with it (e.g. what it was synced up to)

    @classmethod
    def build(
        cls, dim: int, ids: Sequence[str], vectors: npt.ArrayLike, params: FaissParams | None = None
    ) -> Self:
        """A new index over these vectors, flat or HNSW by their number (no flat-then-convert step)."""
        index = cls(dim, params)
        if len(ids) >= index.params.hnsw_threshold:
            index._index = index._new_hnsw()
        if len(ids):
            index.add(ids, vectors)  # one call: FAISS builds the graph on all cores
        return index

    # -- the VectorIndex contract ----------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._dim

    @property
    def backend(self) -> str:
        return "faiss-hnsw" if self.is_hnsw else "faiss-flat"

    @property
    def is_hnsw(self) -> bool:
        return isinstance(self._index, _faiss().IndexHNSWFlat)

    @property
    def tombstones(self) -> int:
        return self._dead

    @property
    def nbytes(self) -> int:
        rows = len(self._labels) * self._dim * 4
        if self.is_hnsw:  # each node keeps ~2M neighbour ids (int32) on level 0, fewer above
            rows += len(self._labels) * (2 * self.params.hnsw_m + 8) * 4
        return rows

    def __len__(self) -> int:
        return len(self._pos)

    def __contains__(self, id_: object) -> bool:
        with self._rw.read():
            return id_ in self._pos

    def ids(self) -> list[str]:
        with self._rw.read():
            return list(self._pos)

    def vector(self, id_: str) -> Vectors | None:
        with self._rw.read():
            pos = self._pos.get(id_)
            return None if pos is None else self._rows()[pos].copy()

    def items(self) -> tuple[list[str], Vectors]:
        with self._rw.read():
            return self._items()

    def _items(self) -> tuple[list[str], Vectors]:
        rows = self._rows()
        if not self._dead:
            return [str(label) for label in self._labels], rows.copy()
        positions = np.fromiter(self._pos.values(), dtype=np.int64, count=len(self._pos))
        return list(self._pos), rows[positions]

    def add(self, ids: Sequence[str], vectors: npt.ArrayLike) -> None:
        ids = check_ids(ids)
        rows = normalised(vectors, self._dim, copy=False)  # FAISS copies them into its own storage
        if rows.shape[0] != len(ids):
            raise VectorIndexError(f"{len(ids)} ids for {rows.shape[0]} vectors")
        with self._writer, self._rw.write():
            self._add(ids, rows)

    def _add(self, ids: list[str], rows: Vectors) -> None:
        if self.is_hnsw:
            # A graph node cannot be moved: the old vector becomes a tombstone, the new one a new node.
            for id_ in ids:
                if (pos := self._pos.pop(id_, None)) is not None:
                    self._bury(pos)
            fresh = list(range(len(ids)))
        else:
            view = self._rows()
            fresh = []
            for i, id_ in enumerate(ids):
                if (pos := self._pos.get(id_)) is not None:
                    view[pos] = rows[i]  # flat storage: replace in place
                else:
                    fresh.append(i)
        if fresh:
            start = len(self._labels)
            self._index.add(rows[fresh] if len(fresh) < len(ids) else rows)
            self._live = np.concatenate([self._live, np.ones(len(fresh), dtype=bool)])
            for offset, i in enumerate(fresh):
                self._labels.append(ids[i])
                self._pos[ids[i]] = start + offset
        self._refresh_bits()

    def remove(self, ids: Iterable[str]) -> int:
        wanted = removal_ids(ids)
        with self._writer, self._rw.write():
            return self._remove(wanted)

    def _remove(self, ids: set[str]) -> int:
        gone = [pos for id_ in ids if (pos := self._pos.pop(id_, None)) is not None]
        if not gone:
            return 0
        if self.is_hnsw:
            for pos in gone:
                self._bury(pos)
        else:
            self._remove_flat(gone)
        self._refresh_bits()
        return len(gone)

    def search(
        self, query: npt.ArrayLike, k: int, allowed: Collection[str] | None = None
    ) -> list[list[Match]]:
        k = check_k(k)
        queries = normalised(query, self._dim, "query", copy=False)
        allowed = allowed_ids(allowed)
        with self._rw.read():
            return self._search(queries, k, allowed)

    def _search(self, queries: Vectors, k: int, allowed: AbstractSet[str] | None) -> list[list[Match]]:
        empty: list[list[Match]] = [[] for _ in queries]
        if not self._pos:
            return empty
        p = self.params
        if allowed is None:
            bits = self._live_bits  # tombstones only; None when there are none
            sel = (
                None
                if bits is None
                else _faiss().IDSelectorBitmap(len(self._labels), _faiss().swig_ptr(bits))
            )
            if self.is_hnsw:
                params = _faiss().SearchParametersHNSW(sel=sel, efSearch=max(p.ef_search, k))
            else:
                params = _faiss().SearchParameters(sel=sel) if sel is not None else None
            return self._run(self._index, queries, min(k, len(self._pos)), params)
        wide = postfiltered(lambda n: self._search(queries, n, None), allowed, k, len(self._pos))
        if wide is not None:
            return wide
        rows = positions_of(self._pos, allowed)
        if not rows.size:
            return empty
        storage = _faiss().downcast_index(self._index.storage) if self.is_hnsw else self._index
        if not self.is_hnsw or rows.size <= p.exact_filter_limit:
            return self._exact_rows(storage, queries, k, rows)
        mask = np.zeros(len(self._labels), dtype=bool)
        mask[rows] = True
        bits = np.packbits(mask, bitorder="little")
        sel = _faiss().IDSelectorBitmap(len(self._labels), _faiss().swig_ptr(bits))
        ef = min(p.max_filtered_ef, math.ceil(max(p.ef_search, k) * len(self._pos) / rows.size))
        params = _faiss().SearchParametersHNSW(sel=sel, efSearch=ef)
        return self._run(self._index, queries, min(k, int(rows.size)), params)

    def _exact_rows(
        self, flat: Any, queries: Vectors, k: int, rows: npt.NDArray[np.int64]
    ) -> list[list[Match]]:
        """Exact top-k over just these positions of a flat storage: one dot product per row and no scan
        of the others (`compute_distance_subset`; measured 3.9 ms for 10k of 200k 1280-d rows, where a
        bitmap selector over the whole storage took 5.5 ms and a numpy gather 9.9 ms)."""
        nq, m = queries.shape[0], int(rows.size)
        scores = np.empty((nq, m), dtype=np.float32)
        labels = rows if nq == 1 else np.ascontiguousarray(np.broadcast_to(rows, (nq, m)))
        flat.compute_distance_subset(
            nq, _faiss().swig_ptr(queries), m, _faiss().swig_ptr(scores), _faiss().swig_ptr(labels)
        )
        cols, best = top_k(scores, min(k, m))
        found = rows[cols]
        names = self._labels
        return [
            [(str(names[i]), float(v)) for i, v in zip(pos_row.tolist(), score_row.tolist(), strict=True)]
            for pos_row, score_row in zip(found, best, strict=True)
        ]

    def maintain(self, purge: bool = False) -> bool:
        """Flat -> HNSW at the threshold, HNSW -> flat well under it, HNSW rebuilt without its tombstones
        once they pile up (or while any remain, with `purge`). True if the structure was rebuilt."""
        with self._writer:
            target = self._wanted_structure(purge)
            if target is None:
                return False
            new = self._rebuilt(hnsw=target == "hnsw")  # searches go on against the old structure
            with self._rw.write():
                self._index, self._labels, self._pos = new._index, new._labels, new._pos
                self._dead, self._live, self._live_bits = 0, new._live, None
            return True

    def _wanted_structure(self, purge: bool) -> str | None:
        p, live = self.params, len(self._pos)
        if not self.is_hnsw:
            return "hnsw" if live >= p.hnsw_threshold else None
        if live < p.hnsw_threshold * p.flat_below:
            return "flat"
        if self._dead > p.max_dead_fraction * len(self._labels) or (purge and self._dead):
            return "hnsw"
        return None

    def save(self, path: Path) -> None:
        header = {"backend": "faiss", "dim": self._dim, "params": asdict(self.params), "note": self.note}

        def write(f: BinaryIO) -> None:
            write_header(f, {**header, "structure": "hnsw" if self.is_hnsw else "flat", "count": len(self)})
            write_array(f, id_array([label or "" for label in self._labels]))
            _faiss().write_index(self._index, _faiss().PyCallbackIOWriter(f.write))

        with self._writer:  # no change can start while the file is written; searches go on
            write_atomic(path, write)

    @classmethod
    def load(cls, path: Path, params: FaissParams | None = None) -> Self:
        """Read a saved index; `params` (default: those it was saved with) govern it from now on."""
        with path.open("rb") as f:
            return cls.read(f, path, params)

    @classmethod
    def read(cls, f: BinaryIO, path: Path, params: FaissParams | None = None) -> Self:
        header = read_header(f, path)
        dim = expect_backend(header, "faiss", path)
        index = cls(dim, params or FaissParams.from_dict(header.get("params") or {}))
        index.note = dict(header.get("note") or {})
        labels = read_array(f, path).tolist()
        try:
            loaded = _faiss().read_index(_faiss().PyCallbackIOReader(f.read))
        except RuntimeError as e:
            raise VectorIndexError(f"{path}: unreadable FAISS index: {e}") from e
        if not isinstance(loaded, _faiss().IndexFlatIP | _faiss().IndexHNSWFlat):
            raise VectorIndexError(f"{path}: unexpected FAISS index type {type(loaded).__name__}")
        inner_product = loaded.metric_type == _faiss().METRIC_INNER_PRODUCT
        if loaded.d != dim or loaded.ntotal != len(labels) or not inner_product:
            raise VectorIndexError(f"{path}: FAISS index does not match its header")
        index._index = loaded
        index._labels = [str(label) or None for label in labels]
        index._pos = {label: i for i, label in enumerate(index._labels) if label is not None}
        index._dead = len(labels) - len(index._pos)
        index._live = np.fromiter((label is not None for label in index._labels), bool, len(labels))
        if index._dead and not index.is_hnsw:
            raise VectorIndexError(f"{path}: a flat index with holes")
        index._refresh_bits()
        return index

    # -- internals -------------------------------------------------------------------------------------
    def _rows(self) -> Vectors:
        """A writable view of the stored vectors (FAISS's own memory: valid until the next add/remove)."""
        flat = self._index if not self.is_hnsw else _faiss().downcast_index(self._index.storage)
        n = int(flat.ntotal)
        if not n:
            return np.zeros((0, self._dim), dtype=np.float32)
        view: Vectors = _faiss().rev_swig_ptr(flat.get_xb(), n * self._dim).reshape(n, self._dim)
        return view

    def _new_hnsw(self) -> Any:
        index = _faiss().IndexHNSWFlat(self._dim, self.params.hnsw_m, _faiss().METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.params.ef_construction
        return index

    def _rebuilt(self, hnsw: bool) -> FaissIndex:
        """A new index over the live vectors, positions renumbered (the caller holds `_writer`)."""
        new = FaissIndex(self._dim, self.params)
        if hnsw:
            new._index = new._new_hnsw()
        rows = self._rows()
        live = [(pos, label) for pos, label in enumerate(self._labels) if label is not None]
        for start in range(0, len(live), COPY_CHUNK):
            chunk = live[start : start + COPY_CHUNK]
            new._index.add(rows[[pos for pos, _ in chunk]])  # fancy indexing copies just this chunk
            for pos, (_, label) in enumerate(chunk, start=start):
                new._labels.append(label)
                new._pos[label] = pos
        new._live = np.ones(len(live), dtype=bool)
        return new

    def _remove_flat(self, gone: list[int]) -> None:
        """Fill each hole with the last row (ids already out of `_pos`), then cut the tail off."""
        view, n = self._rows(), len(self._labels)
        for pos in sorted(gone, reverse=True):  # from the end, so a moved row is never one still to go
            last = n - 1
            if pos != last:
                view[pos] = view[last]
                moved = self._labels[last]
                assert moved is not None  # flat indexes have no tombstones
                self._labels[pos] = moved
                self._pos[moved] = pos
            self._labels.pop()
            n -= 1
        self._index.remove_ids(_faiss().IDSelectorRange(n, int(self._index.ntotal)))
        self._live = self._live[:n]

    def _bury(self, pos: int) -> None:
        """Make a position a tombstone (HNSW; its id is already out of `_pos`)."""
        self._labels[pos] = None
        self._live[pos] = False
        self._dead += 1

    def _refresh_bits(self) -> None:
        """Pack `_live` for FAISS's selector after a change (~1 ms at 1M positions)."""
        self._live_bits = np.packbits(self._live, bitorder="little") if self._dead else None

    def _run(self, index: Any, queries: Vectors, k: int, params: Any) -> list[list[Match]]:
        scores, positions = index.search(queries, k, params=params)
        labels = self._labels
        return [
            [
                (label, float(s))
                for s, i in zip(score_row.tolist(), pos_row.tolist(), strict=True)
                if i >= 0 and (label := labels[i]) is not None
            ]
            for score_row, pos_row in zip(scores, positions, strict=True)
        ]
