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
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from feedlens.config import Settings
from feedlens.core.filters import ImageFilter
from feedlens.core.results import LabelsResult
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
SYNC_MARGIN = timedelta(
    seconds=120
)  # re-reads a little more than needed; covers clock steps and commits in flight


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
        self._marks: dict[tuple[int, str], tuple[object, ...]] = {}
        self._saved: dict[tuple[int, str], float] = {}
        self._synced: dict[tuple[int, str], datetime] = {}

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
        """Make the in-memory index equal the table: cheap (a count and a max) when nothing changed.

        Vectors written since the last sync are (re)added, so an updated vector replaces the old one;
        ids no longer in the table are removed. After a restart "the last sync" is the index file's
        save time less a margin, so only what changed since is read back.
        """
        key = (workspace, kind)
        with self._lock:
            with self.database.session() as session:
                mark = self._watermark(session, workspace, kind)
                if not force and self._marks.get(key) == mark:
                    return
                if kind == SEMANTIC:  # content stored but not yet fused (new, re-analysed, or a crash)
                    pending = vectors.missing(session, workspace, SEMANTIC, having=CONTENT)
                    if pending:
                        self.refresh_semantic(session, pending)
                        mark = self._watermark(session, workspace, kind)
                started = datetime.now(UTC)
                index = self.indexes.get(workspace, kind, self.dims[kind])
                stale = set(index.ids()) - vectors.ids(session, workspace, kind)
                if stale:
                    index.remove(sorted(stale))
                changed = vectors.changed_since(session, workspace, kind, None if force else self._since(key))
                for start in range(0, len(changed), 4096):
                    found = vectors.get(session, changed[start : start + 4096], kind)
                    if found:
                        index.add(list(found), np.stack(list(found.values())))
            self._marks[key] = mark
            self._synced[key] = started - SYNC_MARGIN
            if stale or changed:
                self._maybe_save(key)

    @staticmethod
    def _watermark(session: Session, workspace: int, kind: str) -> tuple[object, ...]:
        # semantic vectors derive from content ones: a content change must wake the semantic sync too
        kinds = (kind, CONTENT) if kind == SEMANTIC else (kind,)
        return tuple(vectors.watermark(session, workspace, k) for k in kinds)

    def _since(self, key: tuple[int, str]) -> datetime | None:
        if key in self._synced:
            return self._synced[key]
        path = self.indexes.path(*key)
        if not path.exists():
            return None
        return datetime.fromtimestamp(path.stat().st_mtime, UTC) - SYNC_MARGIN

    def _maybe_save(self, key: tuple[int, str]) -> None:
        """Persist at most every `save_interval_s`; the table is the truth, so a lost save only costs a
        re-sync at the next start."""
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
                self._marks.pop((workspace, kind), None)
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
        self.sync(workspace, kind)
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
                    wanted = sorted(vectors.ids(session, workspace, kind))
                    found = vectors.get(session, wanted, kind)
                matrix = np.stack(list(found.values())) if found else np.zeros((0, dim), np.float32)
                self.indexes.rebuild(workspace, kind, list(found), matrix)
                self._marks.pop((workspace, kind), None)
                out[kind] = len(found)
        return out
