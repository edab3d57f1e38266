"""Search a workspace by words or by example, over vectors kept in step with the embeddings table.

Word queries: the query's MiniLM embedding against each image's `semantic` vector (its ConSE content
vector fused with its posts' captions and hashtags). Example queries: visual features against `visual`.
Cosine scores are mapped to [0, 1] by a logistic calibration measured on the sample library
(docs/search.md) and cut at `FEEDLENS_SEARCH__MIN_SCORE`, so an unrelated query returns nothing rather
than the least bad images.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from feedlens.config import Settings
from feedlens.core.filters import ImageFilter
from feedlens.core.results import LabelsResult
from feedlens.index.base import VectorIndex
from feedlens.index.store import IndexStore
from feedlens.runtime.text_encoder import TextEncoder
from feedlens.storage import embeddings as vectors
from feedlens.storage import feedback
from feedlens.storage import repositories as repo
from feedlens.storage.database import Database
from feedlens.storage.tables import Image, Post

log = logging.getLogger(__name__)

VISUAL, CONTENT, SEMANTIC = "visual", "content", "semantic"
DIMS = {VISUAL: 1280, CONTENT: 384, SEMANTIC: 384}  # with MiniLM; `SearchService.dims` follows its encoder


@dataclass(frozen=True, slots=True)
class Calibration:
    """score = 1 / (1 + exp(-(cosine - center) / scale)): 0.5 at `center`."""

    center: float
    scale: float

    def __call__(self, cosine: float) -> float:
        return 1.0 / (1.0 + math.exp(-(cosine - self.center) / self.scale))


@dataclass(frozen=True, slots=True)
class Hit:
    image_id: str
    score: float  # calibrated, [0, 1]
    cosine: float


def fuse_captions(content: np.ndarray, captions: np.ndarray | None, caption_weight: float) -> np.ndarray:
    """semantic = normalise(content + w * e(captions and hashtags)); content alone without posts."""
    fused = content if captions is None else content + caption_weight * captions
    return (fused / max(float(np.linalg.norm(fused)), 1e-12)).astype(np.float32)


def visual_vector(labels: LabelsResult) -> np.ndarray:
    """The visual embedding of an image analysed only by `labels` (the same backbone features the
    embedding analyzer stores), so "similar to this upload" needs no OCR or sentence encoding."""
    if labels.features is None:
        raise ValueError("the labels result carries no features")
    features = np.asarray(labels.features, dtype=np.float32)
    return features / max(float(np.linalg.norm(features)), 1e-12)


def caption_text(posts: Sequence[Post]) -> str:
    parts: list[str] = []
    for post in posts:
        if post.caption:
            parts.append(post.caption)
        parts.extend(f"#{tag}" for tag in post.hashtags or [])
    return " ".join(dict.fromkeys(parts))[:2000]


class SearchService:
    def __init__(
        self,
        database: Database,
        indexes: IndexStore,
        encoder: TextEncoder,
        settings: Settings,
        semantic_model: str,
    ) -> None:
        self.database = database
        self.semantic_model = semantic_model  # the text encoder's version, recorded with fused vectors
        self.indexes = indexes
        self.encoder = encoder
        # content and semantic vectors live in the text encoder's space: 384-d MiniLM, or a CLIP model's D
        self.dims = {**DIMS, CONTENT: encoder.dim, SEMANTIC: encoder.dim}
        self.settings = settings
        self.text_calibration = Calibration(settings.search.text_center, settings.search.text_scale)
        self.image_calibration = Calibration(settings.search.image_center, settings.search.image_scale)
        self._lock = threading.Lock()
        self._saved: dict[tuple[int, str], float] = {}
        self._counted: dict[tuple[int, str], float] = {}  # when erasures elsewhere were last looked for

    # -- writing (visual and content vectors are written by the library with the image) ------------------
    def refresh_semantic(self, session: Session, image_ids: Sequence[str]) -> int:
        """(Re)compute the caption-fused vectors of these images from their content vectors and posts."""
        contents = vectors.get(session, image_ids, CONTENT)
        if not contents:
            return 0
        posts = repo.posts_of(session, list(contents))
        texts = {i: caption_text(p) for i, p in posts.items()}
        with_text = [i for i, t in texts.items() if t]
        encoded = dict(zip(with_text, self.encoder.encode([texts[i] for i in with_text]), strict=True))
        for image_id, content in contents.items():
            semantic = fuse_captions(content, encoded.get(image_id), self.settings.search.caption_weight)
            vectors.put(session, image_id, SEMANTIC, self.semantic_model, semantic)
        return len(contents)

    def after_ingest(self, workspace: int, image_ids: list[str]) -> None:
        """Ingest hook: fuse the new images' (or newly linked posts') captions into their vectors."""
        with self.database.session() as session:
            self.refresh_semantic(session, image_ids)

    # -- keeping the index in step ---------------------------------------------------------------------
    def sync(self, workspace: int, kind: str, force: bool = False) -> None:
        """Make the in-memory index equal the table (`force`: reading every vector again)."""
        with self._lock:
            self._sync(workspace, kind, force, count=True)

    def _catch_up(self, workspace: int, kind: str) -> None:
        """Before a search: load what was written since (cheap), count for erasures now and then."""
        key = (workspace, kind)
        with self._lock:
            due = time.monotonic() - self._counted.get(key, -math.inf) >= self.settings.search.removal_check_s
            self._sync(workspace, kind, False, count=due)

    def _sync(self, workspace: int, kind: str, force: bool, count: bool) -> None:
        """Vectors with `seq` at or above the bound the index has read up to (kept in its note, so saved
        with it) are (re)added, by whichever process wrote them; an updated vector replaces the old one.
        With `count`: if the index holds another number of vectors than the table, ids are compared."""
        key = (workspace, kind)
        index = self.indexes.get(workspace, kind, self.dims[kind])
        since = None if force else index.note.get("seq")
        if kind == SEMANTIC:  # content stored but not yet fused (new, re-analysed, or a crash)
            self._fuse_pending(workspace, since)
        stale: set[str] = set()
        with self.database.session() as session:
            bound = vectors.sequence_bound(session)  # before reading: rows below it are all visible below
            changed = vectors.changed_from(session, workspace, kind, since)
            for start in range(0, len(changed), 4096):
                found = vectors.get(session, changed[start : start + 4096], kind)
                if found:
                    index.add(list(found), np.stack(list(found.values())))
            if count:
                self._counted[key] = time.monotonic()
                if len(index) != vectors.count(session, workspace, kind):
                    stale = self._reconcile(session, workspace, kind, index)
        index.note = {**index.note, "seq": bound}
        if stale or changed:
            self._maybe_save(key)

    @staticmethod
    def _reconcile(session: Session, workspace: int, kind: str, index: VectorIndex) -> set[str]:
        """Compare ids: drop those erased elsewhere; load any the bound passed over (an index file from
        another database, or rows committed since the read above). Returns the ids that changed."""
        table, held = vectors.ids(session, workspace, kind), set(index.ids())
        stale, lacking = held - table, sorted(table - held)
        index.remove(sorted(stale))
        for start in range(0, len(lacking), 4096):
            found = vectors.get(session, lacking[start : start + 4096], kind)
            if found:
                index.add(list(found), np.stack(list(found.values())))
        return stale | set(lacking)

    def _fuse_pending(self, workspace: int, since: int | None) -> None:
        """Fuse captions into content vectors that have no semantic one yet, among those written since."""
        with self.database.session() as session:
            if since is None:
                pending = vectors.missing(session, workspace, SEMANTIC, having=CONTENT)
            else:
                fresh = vectors.changed_from(session, workspace, CONTENT, since)
                pending = sorted(set(fresh) - set(vectors.get(session, fresh, SEMANTIC))) if fresh else []
        if not pending:
            return
        try:
            with self.database.session() as session:
                self.refresh_semantic(session, pending)
        except IntegrityError:  # another replica fused the same images at the same moment: theirs stand
            log.info("semantic vectors of %d images were written elsewhere meanwhile", len(pending))

    def _maybe_save(self, key: tuple[int, str]) -> None:
        """Persist at most every `save_interval_s`; the table is the truth, so a lost save only costs
        reading again what was written since the saved bound, at the next start."""
        now = time.monotonic()
        if now - self._saved.get(key, 0.0) >= self.settings.search.save_interval_s:
            self.indexes.save(*key)
            self._saved[key] = now

    def flush(self) -> None:
        """Save every open index (at shutdown)."""
        with self._lock:
            self.indexes.save_all()

    def forget(self, workspace: int, image_ids: Sequence[str]) -> None:
        """Erasure hook: drop the images from every index now (the rows are already gone)."""
        with self._lock:
            for kind, dim in self.dims.items():
                index = self.indexes.get(workspace, kind, dim)
                index.remove(list(image_ids))
                # purge: an erased vector must leave the saved file too, not linger as an HNSW tombstone
                self.indexes.save(workspace, kind, purge=True)

    # -- queries ---------------------------------------------------------------------------------------
    def _allowed(self, workspace: int, filters: ImageFilter | None) -> set[str] | None:
        if filters is None or filters in (ImageFilter(), ImageFilter(hide_unreviewed=True)):
            return None
        if self.settings.review.hide_unreviewed:
            filters = dataclasses.replace(filters, hide_unreviewed=True)
        with self.database.session() as session:
            return set(session.scalars(select(Image.id).where(*repo.filter_conditions(workspace, filters))))

    def hidden_ids(self, workspace: int) -> list[str]:
        """Images FEEDLENS_REVIEW__HIDE_UNREVIEWED keeps out of sight now (empty when the setting is off)."""
        return self._hidden(workspace, None)

    def _hidden(self, workspace: int, filters: ImageFilter | None) -> list[str]:
        """Images hidden until reviewed (when the setting or the filter says so); without other filters they
        are left out of the hits rather than every other image listed as allowed."""
        if not (self.settings.review.hide_unreviewed or (filters is not None and filters.hide_unreviewed)):
            return []
        with self.database.session() as session:
            return feedback.hidden_ids(session, workspace)

    def _search(
        self,
        workspace: int,
        kind: str,
        query: np.ndarray,
        calibration: Calibration,
        filters: ImageFilter | None,
        limit: int,
        offset: int,
        min_score: float | None,
        exclude: Sequence[str] = (),
    ) -> list[Hit]:
        self._catch_up(workspace, kind)
        allowed = self._allowed(workspace, filters)
        if allowed is not None and not allowed:
            return []
        if allowed is None:
            exclude = (*exclude, *self._hidden(workspace, filters))
        k = offset + limit + len(exclude)
        raw = self.indexes.get(workspace, kind, self.dims[kind]).search(query, k, allowed)
        hits = raw[0] if raw else []
        cut = self.settings.search.min_score if min_score is None else min_score
        out = [Hit(i, calibration(s), s) for i, s in hits if i not in exclude]
        return [h for h in out if h.score >= cut][offset : offset + limit]

    def text(
        self,
        workspace: int,
        query: str,
        negative: Sequence[str] = (),
        filters: ImageFilter | None = None,
        limit: int = 20,
        offset: int = 0,
        min_score: float | None = None,
    ) -> list[Hit]:
        """Images matching words; `negative` terms push their meaning away (query - 0.5 * negatives)."""
        encoded = self.encoder.encode([query, *negative])
        vector = encoded[0] - self.settings.search.negative_weight * encoded[1:].sum(axis=0)
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return self._search(
            workspace, SEMANTIC, vector, self.text_calibration, filters, limit, offset, min_score
        )

    def similar(
        self,
        workspace: int,
        vector: np.ndarray | None = None,
        image_id: str | None = None,
        filters: ImageFilter | None = None,
        limit: int = 20,
        offset: int = 0,
        min_score: float | None = None,
    ) -> list[Hit] | None:
        """Images that look like an uploaded image's visual vector or a stored image; None: no such image."""
        exclude: tuple[str, ...] = ()
        if image_id is not None:
            with self.database.session() as session:
                if repo.get_image(session, workspace, image_id) is None:
                    return None
                stored = vectors.get(session, [image_id], VISUAL)
            if image_id not in stored:
                return None
            vector, exclude = stored[image_id], (image_id,)
        assert vector is not None
        return self._search(
            workspace, VISUAL, vector, self.image_calibration, filters, limit, offset, min_score, exclude
        )

    def duplicates(self, workspace: int) -> dict[str, Any]:
        """Exact, near and similar groups of the workspace's visible images (services/duplicates.py)."""
        from feedlens.services.duplicates import find_duplicates

        hidden = self.hidden_ids(workspace)
        return find_duplicates(self.database, workspace, self.settings.search, hidden)

    def clusters(self, workspace: int, min_size: int = 3) -> dict[str, Any]:
        """Named visual clusters of the workspace's visible images and the outliers (services/clusters.py;
        HDBSCAN comes from scikit-learn, imported here, not at start-up)."""
        from feedlens.services.clusters import find_clusters

        return find_clusters(self.database, workspace, min_size, self.hidden_ids(workspace))

    def rebuild(self, workspace: int) -> dict[str, int]:
        """Rebuild every index of the workspace from the table (`feedlens index rebuild`)."""
        out: dict[str, Any] = {}
        with self._lock:
            for kind, dim in self.dims.items():
                with self.database.session() as session:
                    bound = vectors.sequence_bound(session)
                    wanted = sorted(vectors.ids(session, workspace, kind))
                    found = vectors.get(session, wanted, kind)
                matrix = np.stack(list(found.values())) if found else np.zeros((0, dim), np.float32)
                rebuilt = self.indexes.rebuild(workspace, kind, list(found), matrix)
                rebuilt.note = {"seq": bound}  # saved with the next save (until then a restart reads all)
                out[kind] = len(found)
        return out
