"""`IndexStore`: one vector index per (workspace, embedding kind), kept in memory and saved under a folder.

Layout: `<root>/<workspace>/<kind>.index`, one file per index in the format of `feedlens.index.base`,
replaced atomically on each save. Nothing is written until `save` or `rebuild`: the embeddings in the
database are the truth, and a caller that finds an index behind it (a crash between saves) adds what is
missing. So a file that cannot be read is moved aside to `<kind>.index.corrupt` (with a warning) and the
index starts empty, to be refilled the same way, instead of failing every search.

Indexes are loaded on first use and cached. Each index is thread-safe (see `VectorIndex`); the store's own
lock guards only the cache, and a per-index lock makes concurrent first uses load the file once.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from feedlens.index.base import Match, VectorIndex, VectorIndexError, check_dim, read_header
from feedlens.index.exact import ExactIndex
from feedlens.index.faiss_index import FaissIndex, FaissParams

log = logging.getLogger(__name__)

BACKENDS = ("faiss", "exact")
SUFFIX = ".index"
_WORKSPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_KIND = re.compile(r"[a-z][a-z0-9_-]{0,63}")

Workspace = int | str  # a workspace's database id (or name): the folder's name


def load_index(path: Path, backend: str | None = None, params: FaissParams | None = None) -> VectorIndex:
    """Open an index file of either backend; with `backend`, convert it if it was saved by the other."""
    with path.open("rb") as f:
        saved = read_header(f, path).get("backend")
        f.seek(0)
        index: VectorIndex
        if saved == "exact":
            index = ExactIndex.read(f, path)
        elif saved == "faiss":
            index = FaissIndex.read(f, path, params)
        else:
            raise VectorIndexError(f"{path}: unknown index backend {saved!r}")
    if backend is None or backend == saved:
        return index
    ids, vectors = index.items()
    converted = new_index(backend, index.dim, params, ids, vectors)
    converted.note = index.note
    return converted


def new_index(
    backend: str,
    dim: int,
    params: FaissParams | None = None,
    ids: Sequence[str] = (),
    vectors: npt.ArrayLike | None = None,
) -> VectorIndex:
    """An index of `backend` ("faiss" or "exact") over these vectors (FAISS: flat or HNSW by their number)."""
    check_dim(dim)
    if backend not in BACKENDS:
        raise VectorIndexError(f"unknown index backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if backend == "faiss":
        return FaissIndex.build(dim, ids, vectors if vectors is not None else [], params)
    index = ExactIndex(dim)
    if len(ids):
        index.add(ids, vectors if vectors is not None else [])
    return index


@dataclass
class _Slot:
    """One (workspace, kind): its index once loaded or created; `lock` serialises load, save and rebuild."""

    index: VectorIndex | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    dropped: bool = False


class IndexStore:
    """The vector indexes of every workspace, by embedding kind ("visual", "semantic", ...)."""

    def __init__(self, root: Path, backend: str = "faiss", params: FaissParams | None = None) -> None:
        if backend not in BACKENDS:
            raise VectorIndexError(f"unknown index backend {backend!r}: use one of {', '.join(BACKENDS)}")
        self.root = Path(root)
        self.backend = backend
        self.params = params or FaissParams()
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._lock = threading.Lock()

    def path(self, workspace: Workspace, kind: str) -> Path:
        """Where the index of this workspace and kind is saved."""
        return self._folder(workspace) / f"{_kind(kind)}{SUFFIX}"

    def get(self, workspace: Workspace, kind: str, dim: int) -> VectorIndex:
        """The index of this workspace and kind: cached, else loaded from its file, else a new empty one.

        Raises `VectorIndexError` if it holds vectors of another dimension (the model changed: rebuild).
        """
        check_dim(dim)
        while True:
            slot = self._slot(workspace, kind)
            index = slot.index
            if index is None:
                with slot.lock:
                    if slot.dropped:
                        continue  # the workspace was dropped meanwhile: start again from a fresh slot
                    index = slot.index
                    if index is None:
                        loaded = self._load(workspace, kind)
                        index = loaded if loaded is not None else new_index(self.backend, dim, self.params)
                        slot.index = index
            if index.dim != dim:
                raise VectorIndexError(
                    f"the {kind!r} index of workspace {workspace} holds {index.dim}-d vectors, not {dim}-d: "
                    "rebuild it (`feedlens index rebuild`)"
                )
            return index

    def search(
        self,
        workspace: Workspace,
        kind: str,
        query: npt.ArrayLike,
        k: int,
        allowed: Collection[str] | None = None,
    ) -> list[list[Match]]:
        """`get(...).search(...)` for an index that may not exist: no index (in memory or saved), no hits."""
        slot = self._slot(workspace, kind)
        index = slot.index
        if index is None and self.path(workspace, kind).exists():
            with slot.lock:
                if slot.index is None and not slot.dropped:
                    slot.index = self._load(workspace, kind)
                index = slot.index
        if index is None:
            return [[] for _ in range(1 if np.ndim(query) == 1 else len(np.asarray(query)))]
        return index.search(query, k, allowed)

    def save(self, workspace: Workspace, kind: str, purge: bool = False) -> bool:
        """Maintain (switch flat/HNSW, shed tombstones) and write the index; False if it was never opened.

        `purge`: rebuild away every removed vector first, so none is left in memory or in the file (for
        erasure). Searches go on while it saves; changes to the index wait.
        """
        slot = self._slot(workspace, kind)
        with slot.lock:
            index = slot.index
            if index is None or slot.dropped:
                return False
            if index.maintain(purge):
                log.info("index %s/%s rebuilt as %s (%d vectors)", workspace, kind, index.backend, len(index))
            index.save(self.path(workspace, kind))
            return True

    def save_all(self) -> int:
        """Save every open index (at shutdown); returns how many were saved."""
        with self._lock:
            keys = [key for key, slot in self._slots.items() if slot.index is not None]
        return sum(self.save(workspace, kind) for workspace, kind in keys)

    def rebuild(
        self, workspace: Workspace, kind: str, ids: Sequence[str], vectors: npt.ArrayLike
    ) -> VectorIndex:
        """Replace the index with a new one over exactly these vectors, saved at once, and return it.

        The new index is built beside the old one (which keeps answering searches) and then swapped in;
        a change made meanwhile through a reference to the old object is lost, so callers serialise
        rebuilds with their writers. An empty `vectors` needs shape (0, dim).
        """
        dim = _dim_of(vectors)
        slot = self._slot(workspace, kind)
        with slot.lock:
            if slot.dropped:
                raise VectorIndexError(f"workspace {workspace} was dropped during the rebuild")
            index = new_index(self.backend, dim, self.params, ids, vectors)
            index.save(self.path(workspace, kind))
            slot.index = index
            return index

    def drop(self, workspace: Workspace) -> None:
        """Forget every index of the workspace and delete its folder (the workspace itself is deleted)."""
        folder = self._folder(workspace)
        name = folder.name
        with self._lock:
            slots = [self._slots.pop(key) for key in list(self._slots) if key[0] == name]
        for slot in slots:
            with slot.lock:  # waits for a save or load in progress
                slot.dropped = True
                slot.index = None
        shutil.rmtree(folder, ignore_errors=True)

    def kinds(self, workspace: Workspace) -> list[str]:
        """The kinds with an index open or saved for this workspace."""
        folder = self._folder(workspace)
        with self._lock:
            open_ = {kind for (ws, kind), slot in self._slots.items() if ws == folder.name and slot.index}
        saved = {p.name[: -len(SUFFIX)] for p in folder.glob(f"*{SUFFIX}")} if folder.is_dir() else set()
        return sorted(open_ | {kind for kind in saved if _KIND.fullmatch(kind)})

    # -- internals -------------------------------------------------------------------------------------
    def _folder(self, workspace: Workspace) -> Path:
        name = str(workspace)
        if isinstance(workspace, bool) or not _WORKSPACE.fullmatch(name):
            raise VectorIndexError(f"invalid workspace for an index folder: {workspace!r}")
        return self.root / name

    def _slot(self, workspace: Workspace, kind: str) -> _Slot:
        key = (self._folder(workspace).name, _kind(kind))
        with self._lock:
            return self._slots.setdefault(key, _Slot())

    def _load(self, workspace: Workspace, kind: str) -> VectorIndex | None:
        """The saved index converted to this store's backend; None if there is none (or it was corrupt)."""
        path = self.path(workspace, kind)
        if not path.exists():
            return None
        try:
            return load_index(path, self.backend, self.params)
        except VectorIndexError as e:
            aside = path.with_name(path.name + ".corrupt")
            log.warning("%s; moved to %s, the index starts empty", e, aside.name)
            path.replace(aside)
            return None


def _kind(kind: str) -> str:
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise VectorIndexError(f"invalid index kind {kind!r}: lowercase letters, digits, '_' and '-'")
    return kind


def _dim_of(vectors: npt.ArrayLike) -> int:
    shape = getattr(vectors, "shape", None)
    if shape is None or len(shape) != 2:
        raise VectorIndexError("vectors must be a 2-d array (n, dim), also when n is 0")
    return check_dim(int(shape[1]))
