"""A per-process copy of collections' descriptors, so a search is one matrix product instead of reading
every row (SQLite reads ~10k 4 KB rows in 120-400 ms here; benchmarks/face_identity_bench.py).

Never trusted for what exists: each search first reads the collection's stamp (face count and newest
face's time, one indexed aggregate), and any change to the collection (an index, a delete, an image's
erasure by cascade, from this process or another) reloads it; the hits are then read back from the
database, so an erased face is never returned even from a copy a moment old. Bounded by `max_bytes` over
all collections, least recently used dropped first; a collection above the bound is scanned from the
database every time (storage.face_collections.best_matches).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from feedlens.storage import face_collections as fc

MAX_BYTES = 512 * 1024 * 1024  # ~128k 1024-d descriptors over all cached collections


@dataclass(frozen=True, slots=True)
class Snapshot:
    stamp: tuple[Any, ...]
    ids: list[str]
    vectors: np.ndarray  # (N, D) float32, unit rows


class VectorCache:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._held: OrderedDict[int, Snapshot] = OrderedDict()

    def best(
        self, session: Session, collection: int, query: np.ndarray, min_cosine: float, most: int, skip: str
    ) -> list[tuple[str, float]]:
        """As `fc.best_matches`, from the cached copy when the collection fits the bound."""
        stamp = fc.collection_stamp(session, collection)
        if stamp[0] * query.shape[0] * 4 > self.max_bytes:
            return fc.best_matches(session, collection, query, min_cosine, most, skip)
        snapshot = self._get(collection, stamp)
        if snapshot is None:
            rows = fc.list_vectors(session, collection)
            vectors = np.stack([np.frombuffer(v, dtype="<f4") for _, v in rows]) if rows else np.zeros((0, 0))
            snapshot = Snapshot(stamp, [i for i, _ in rows], vectors.astype(np.float32))
            self._put(collection, snapshot)
        if not snapshot.ids:
            return []
        cosines = snapshot.vectors @ query.astype(np.float32)
        wanted = min(most + 1, len(cosines))  # one more: `skip` may be among the best
        top = np.argpartition(-cosines, wanted - 1)[:wanted]
        order = top[np.argsort(-cosines[top], kind="stable")]
        found = [(snapshot.ids[k], float(cosines[k])) for k in order if snapshot.ids[k] != skip]
        return [(f, c) for f, c in found[:most] if c >= min_cosine]

    def drop(self, collection: int | None = None) -> None:
        """Forget one collection's copy (all with None): erasure does not wait for the next search."""
        with self._lock:
            if collection is None:
                self._held.clear()
            else:
                self._held.pop(collection, None)

    def _get(self, collection: int, stamp: tuple[Any, ...]) -> Snapshot | None:
        with self._lock:
            held = self._held.get(collection)
            if held is None or held.stamp != stamp:
                return None
            self._held.move_to_end(collection)
            return held

    def _put(self, collection: int, snapshot: Snapshot) -> None:
        with self._lock:
            self._held[collection] = snapshot
            self._held.move_to_end(collection)
            while sum(s.vectors.nbytes for s in self._held.values()) > self.max_bytes and len(self._held) > 1:
                self._held.popitem(last=False)
