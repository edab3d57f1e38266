"""What every vector index shares: the `VectorIndex` protocol, its error, input checks and the file format.

Vectors are compared by cosine similarity: an index L2-normalises every vector it is given (and every
query), so a score is an inner product in [-1, 1], best first. Ids are caller strings (image ids); each
index maps them to its own int64 positions.

One file format serves every backend, so a store can open a file without knowing what wrote it:
`MAGIC`, a 4-byte little-endian header length, a JSON header (`backend`, `dim`, ...), then the backend's
arrays (`.npy` records, never pickled) and, for FAISS, the index bytes.
"""

from __future__ import annotations

import json
import math
import struct
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Protocol, Self, runtime_checkable

import numpy as np
import numpy.typing as npt

from feedlens.core.errors import FeedlensError

Vectors = npt.NDArray[np.float32]
Match = tuple[str, float]  # (id, cosine score)

MAGIC = b"FLVINDEX"
FORMAT_VERSION = 1


class VectorIndexError(FeedlensError):
    """A vector index was used wrongly (dimension, ids, arguments) or its file is unreadable."""

    code = "index_invalid"


@runtime_checkable
class VectorIndex(Protocol):
    """A mutable set of (id, vector) pairs searched by cosine similarity.

    Thread-safe: searches and other reads run side by side; add, remove, maintain and save take turns,
    and a search waits only while a change is being applied (not while a rebuild is being computed).
    """

    note: dict[str, Any]  # the owner's JSON facts, saved in the file's header and read back with it

    @property
    def dim(self) -> int:
        """Length of every vector."""

    @property
    def backend(self) -> str:
        """What answers searches now: "exact", "faiss-flat" or "faiss-hnsw"."""

    def __len__(self) -> int:
        """Number of (live) ids."""

    def __contains__(self, id_: object) -> bool: ...

    def ids(self) -> list[str]:
        """Every live id, in no particular order."""

    def vector(self, id_: str) -> Vectors | None:
        """A copy of the stored (normalised) vector of `id_`, or None if absent."""

    def items(self) -> tuple[list[str], Vectors]:
        """Every live id and its normalised vector (a copy, row i for id i): for rebuilds and conversions."""

    def add(self, ids: Sequence[str], vectors: npt.ArrayLike) -> None:
        """Add `vectors` (n, dim) under `ids`; an id already present gets the new vector."""

    def remove(self, ids: Iterable[str]) -> int:
        """Remove these ids (absent ones are ignored); returns how many were present."""

    def search(
        self, query: npt.ArrayLike, k: int, allowed: Collection[str] | None = None
    ) -> list[list[Match]]:
        """The k best (id, score) per query row, best first; `allowed` restricts results to those ids."""

    def maintain(self, purge: bool = False) -> bool:
        """Rebuild the structure if it should change (size threshold) or shed removed entries; True if so.

        `purge`: also rebuild while any removed vector is still held (an erasure that must leave no
        trace). Searches go on during the rebuild; writers wait for it.
        """

    @property
    def nbytes(self) -> int:
        """Approximate memory held by vectors and structure (not the id maps)."""

    def save(self, path: Path) -> None:
        """Write the index to `path` atomically (temporary file, fsync, rename); searches go on meanwhile."""

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read an index written by `save`."""


class RWLock:
    """Many readers or one writer. A waiting writer holds new readers back, so writers never starve.

    Not re-entrant: a thread holding it must not take it again (a waiting writer would deadlock them).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


# -- input checks --------------------------------------------------------------------------------------
def check_dim(dim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise VectorIndexError(f"dimension must be a positive integer, got {dim!r}")
    return dim


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise VectorIndexError(f"k must be a positive integer, got {k!r}")
    return k


def check_ids(ids: Sequence[str]) -> list[str]:
    """Ids as a list; each a non-empty string, none twice (which vector would win would be a guess)."""
    if isinstance(ids, str):
        raise VectorIndexError("ids must be a sequence of strings, not one string")
    out = list(ids)
    for id_ in out:
        if not isinstance(id_, str) or not id_:
            raise VectorIndexError(f"an id must be a non-empty string, got {id_!r}")
    if len(set(out)) != len(out):
        raise VectorIndexError("the same id appears twice in one call")
    return out


def removal_ids(ids: Iterable[str]) -> set[str]:
    if isinstance(ids, str):
        raise VectorIndexError("ids must be a collection of strings, not one string")
    return set(ids)


def normalised(vectors: npt.ArrayLike, dim: int, what: str = "vectors", copy: bool = True) -> Vectors:
    """A C-contiguous float32 (n, dim) array of unit rows; refuses wrong shapes, NaN/inf and zero rows.

    The caller's array is never modified. With `copy=False` it is returned as it is when it already is
    such an array (the FAISS backend copies on add anyway: at a million 1280-d vectors each copy is 5 GB).
    """
    try:
        array = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise VectorIndexError(f"{what} are not numeric: {e}") from e
    if array.ndim == 1 and what == "query":
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise VectorIndexError(f"{what} must have shape (n, {dim}), got {array.shape}")
    squares = np.einsum("ij,ij->i", array, array)  # no (n, dim) temporary, unlike np.linalg.norm
    if not np.isfinite(squares).all():
        raise VectorIndexError(f"{what} contain NaN, infinity or values too large to normalise")
    if not (squares > 0).all():
        raise VectorIndexError(f"{what} contain an all-zero row, which has no direction")
    ours = not (isinstance(vectors, np.ndarray) and np.shares_memory(array, vectors))
    if not copy and array.flags.c_contiguous and bool(np.all(np.abs(squares - 1) <= 1e-5)):
        return array
    if not (ours and array.flags.c_contiguous and array.flags.writeable):
        array = np.array(array, dtype=np.float32, order="C", copy=True)
    array /= np.sqrt(squares)[:, None]
    return array


def allowed_ids(allowed: Collection[str] | None) -> AbstractSet[str] | None:
    """`allowed` as a set (a list or tuple is converted once: membership is tested per candidate)."""
    if isinstance(allowed, str):
        raise VectorIndexError("allowed must be a collection of ids, not one string")
    if allowed is None or isinstance(allowed, AbstractSet):
        return allowed
    return set(allowed)


# A filter that lets at least this share of the index through is applied after an unfiltered search for
# ceil(2 k / share) candidates (at most POSTFILTER_MAX of them): a few set lookups, where mapping every
# allowed id to a position costs ~0.3 us an id (~150 ms for a 500k-id filter at 1M vectors). At 1M x
# 1280-d, HNSW answered a 3% filter in 50 ms through a selector, in a few ms this way (docs/benchmarks.md).
POSTFILTER_SHARE = 0.01
POSTFILTER_MAX = 2048
POSTFILTER_MIN_IDS = 2000  # fewer allowed ids are cheaper to map and score one by one (~1 ms at 1280-d)


def postfiltered(
    search: Callable[[int], list[list[Match]]], allowed: AbstractSet[str], k: int, live: int
) -> list[list[Match]] | None:
    """The filtered top-k from an unfiltered search for more candidates, or None where that does not pay
    or work: a selective or small filter, or too few allowed ids among some query's candidates (the
    caller then maps the allowed ids). Exact on an exact backend: the first k allowed ids of the full
    ranking are those of any prefix holding k of them; on HNSW, as good as its recall at that depth."""
    share = len(allowed) / live if live else 0.0
    if share < POSTFILTER_SHARE or len(allowed) <= POSTFILTER_MIN_IDS:
        return None
    wide = min(live, math.ceil(2 * k / min(share, 1.0)))
    if POSTFILTER_MAX < wide < live:
        return None
    out = [[m for m in row if m[0] in allowed][:k] for row in search(wide)]
    return out if wide >= live or all(len(row) == k for row in out) else None


def positions_of(pos: dict[str, int], allowed: AbstractSet[str]) -> npt.NDArray[np.int64]:
    """Sorted positions of the allowed ids that are present. The loops run in C (set intersection, map):
    ~0.3 us an id, a third of a Python loop's cost."""
    common = pos.keys() & allowed
    rows = np.fromiter(map(pos.__getitem__, common), dtype=np.int64, count=len(common))
    rows.sort()
    return rows


def top_k(scores: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """Column indexes and scores of the k largest of each row, largest first (k <= columns)."""
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    picked = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(picked, order, axis=1)


# -- files ---------------------------------------------------------------------------------------------


def write_header(f: BinaryIO, header: dict[str, Any]) -> None:
    data = json.dumps({"format": FORMAT_VERSION, **header}, sort_keys=True).encode()
    f.write(MAGIC + struct.pack("<I", len(data)) + data)


def read_header(f: BinaryIO, path: Path) -> dict[str, Any]:
    head = f.read(len(MAGIC) + 4)
    if len(head) < len(MAGIC) + 4 or not head.startswith(MAGIC):
        raise VectorIndexError(f"{path} is not a feedlens vector index file")
    (size,) = struct.unpack("<I", head[len(MAGIC) :])
    try:
        header = json.loads(f.read(size))
    except ValueError as e:
        raise VectorIndexError(f"{path} has a corrupt header: {e}") from e
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        raise VectorIndexError(f"{path} has an unknown format version")
    return header


def expect_backend(header: dict[str, Any], backend: str, path: Path) -> int:
    if header.get("backend") != backend:
        raise VectorIndexError(f"{path} holds a {header.get('backend')!r} index, not {backend!r}")
    return check_dim(header.get("dim", 0))


def write_array(f: BinaryIO, array: npt.NDArray[Any]) -> None:
    np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)


def read_array(f: BinaryIO, path: Path) -> npt.NDArray[Any]:
    try:
        return np.lib.format.read_array(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise VectorIndexError(f"{path} is truncated or corrupt: {e}") from e


def id_array(ids: Sequence[str]) -> npt.NDArray[np.str_]:
    """Ids as a fixed-width unicode array (`.npy` stores it without pickle)."""
    return np.array(ids, dtype=np.str_) if len(ids) else np.zeros(0, dtype="<U1")
