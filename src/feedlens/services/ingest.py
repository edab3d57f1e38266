"""Ingest images (files, feed exports, uploads, URLs) into a workspace: read, dedupe, analyse, store.

What to ingest comes from services/sources.py (files, folders, feed rows); single API uploads are batched
by services/coalescing.py.

Each batch is one transaction: images, analyses, posts and (for jobs) item states commit together or
not at all. A killed ingest therefore loses at most the batch in flight, and a rerun skips what was
committed (images are keyed by the SHA-256 of their bytes, posts by platform + post id).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedlens.core.errors import FeedlensError, ImageError, ImageErrorCode
from feedlens.services.feeds import PostRecord
from feedlens.services.fetch import SafeFetcher
from feedlens.services.library import Library
from feedlens.services.pipeline import Pipeline
from feedlens.storage import repositories as repo
from feedlens.storage.tables import Post

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestItem:
    """One image to ingest: exactly one of `path`, `url`, `data`; `post` links it to a post."""

    source: str  # shown in reports: a file name, URL or upload name
    path: Path | None = None
    url: str | None = None
    data: bytes | None = None
    post: PostRecord | None = None
    position: int = 0  # place of the image in its post (carousels)
    error: dict[str, str] | None = None  # the item was already known to be bad (e.g. a bad feed row)


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    item: IngestItem
    status: str  # added, duplicate, failed
    image_id: str | None = None
    error: dict[str, str] | None = None
    # the item's post: "added" when this item stored it first, "updated" when it was stored before
    post: str | None = None


@dataclass
class IngestSummary:
    added: int = 0
    duplicate: int = 0
    failed: int = 0
    errors: list[ItemOutcome] = field(default_factory=list)

    def count(self, outcome: ItemOutcome) -> None:
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)
        if outcome.status == "failed":
            self.errors.append(outcome)


BatchHook = Callable[[Session, list[ItemOutcome]], None]
CommitHook = Callable[[int, list[str]], None]  # (workspace, image ids) after a batch commits


def chain_hooks(*hooks: CommitHook) -> CommitHook:
    """One after-commit hook that runs each of `hooks` in order; one failing does not stop the others
    (the batch is committed; what a hook derives is redone later)."""

    def run(workspace: int, image_ids: list[str]) -> None:
        for hook in hooks:
            try:
                hook(workspace, image_ids)
            except Exception:
                log.exception("after-commit hook %r failed for %d images", hook, len(image_ids))

    return run


def _post_fields(post: PostRecord) -> dict[str, Any]:
    return {
        "platform": post.platform,
        "post_id": post.id,
        "author": post.author,
        "caption": post.caption,
        "created_at": post.created_at,
        "likes": post.likes,
        "comments": post.comments,
        "shares": post.shares,
        "url": post.url,
    }


class Ingestor:
    """Stores items into a workspace batch by batch: read, hash once, look up once, analyse what is new
    (the pipeline decodes each image once; the thumbnail comes from that decode), commit, then run the
    after-commit hook (Services.after_ingest: search, categories, brands, models, review)."""

    def __init__(
        self,
        library: Library,
        pipeline: Pipeline,
        fetcher: SafeFetcher,
        batch_size: int,
        after_commit: CommitHook | None = None,
    ) -> None:
        self.after_commit = after_commit
        self.library = library
        self.pipeline = pipeline
        self.decoder = library.decoder
        self.fetcher = fetcher
        self.batch_size = batch_size

    def ingest(self, workspace: int, items: Iterable[IngestItem]) -> Iterator[ItemOutcome]:
        """Outcomes in input order, yielded batch by batch after each batch has committed."""
        it = iter(items)
        while batch := list(islice(it, self.batch_size)):
            yield from self.process_batch(workspace, batch)

    def _read(self, item: IngestItem) -> bytes | FeedlensError:
        try:
            if item.data is not None:
                return self.decoder.read(item.data)
            if item.path is not None:
                return self.decoder.read(item.path)
            if item.url is not None:
                return self.decoder.read(self.fetcher.fetch(item.url).data)
        except FeedlensError as exc:
            return exc
        return ImageError(ImageErrorCode.UNREADABLE, "the item names no image")

    def process_batch(
        self, workspace: int, batch: Sequence[IngestItem], on_commit: BatchHook | None = None
    ) -> list[ItemOutcome]:
        """Read, analyse the images not yet stored, then store everything in one transaction."""
        loaded: list[bytes | FeedlensError | None] = [
            None if item.error else self._read(item) for item in batch
        ]
        digests = [hashlib.sha256(d).hexdigest() if isinstance(d, bytes) else None for d in loaded]
        with self.library.database.session() as session:
            known = repo.images_by_sha(session, workspace, [d for d in digests if d])
        # analyse each new content once, even if the batch holds it twice
        fresh = {
            d: data
            for d, data in zip(digests, loaded, strict=True)
            if d and d not in known and isinstance(data, bytes)
        }
        names = [next(i.source for i, d in zip(batch, digests, strict=True) if d == sha) for sha in fresh]
        analysed = self.pipeline.analyze_sources(names, list(fresh.values()), digests=list(fresh))
        reports = dict(zip(fresh, analysed, strict=True))
        versions = self.pipeline.versions()
        outcomes: list[ItemOutcome] = []
        with self.library.database.session() as session:
            stored: dict[str, str] = dict(known)
            for item, data, digest in zip(batch, loaded, digests, strict=True):
                outcomes.append(
                    self._store(session, workspace, item, data, digest, reports, stored, versions)
                )
            if on_commit is not None:
                on_commit(session, outcomes)
        image_ids = list(dict.fromkeys(o.image_id for o in outcomes if o.image_id is not None))
        if image_ids and self.after_commit is not None:
            try:
                self.after_commit(workspace, image_ids)
            except Exception:  # the batch is committed; what the hook derives is redone lazily later
                log.exception("after-commit hook failed for %d images", len(image_ids))
        for report in reports.values():
            report.image = None  # the pixels were needed for the thumbnail only
        return outcomes

    def _store(
        self,
        session: Session,
        workspace: int,
        item: IngestItem,
        data: bytes | FeedlensError | None,
        digest: str | None,
        reports: dict[str, Any],
        stored: dict[str, str],
        versions: dict[str, str],
    ) -> ItemOutcome:
        if item.error is not None:
            return ItemOutcome(item, "failed", error=item.error)
        if isinstance(data, FeedlensError) or data is None or digest is None:
            error = data.to_dict() if isinstance(data, FeedlensError) else {"code": "unreadable"}
            return ItemOutcome(item, "failed", error=error)
        if digest in stored:
            image_id, status = stored[digest], "duplicate"
        else:
            report = reports[digest]
            if not report.ok:
                return ItemOutcome(item, "failed", error=report.error)
            image_id, created = self.library.save(session, workspace, data, report, versions, item.source)
            stored[digest] = image_id
            status = "added" if created else "duplicate"
        post_status = None
        if item.post is not None:
            known_post = session.scalar(
                select(Post.id).where(
                    Post.workspace_id == workspace,
                    Post.platform == item.post.platform,
                    Post.post_id == item.post.id,
                )
            )
            post_pk = repo.upsert_post(session, workspace, _post_fields(item.post), item.post.hashtags)
            repo.link_post_image(session, post_pk, image_id, item.position)
            post_status = "added" if known_post is None else "updated"
        return ItemOutcome(item, status, image_id=image_id, post=post_status)
