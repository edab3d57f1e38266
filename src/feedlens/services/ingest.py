"""Ingest images (files, feed exports, uploads, URLs) into a workspace: read, dedupe, analyse, store.

Each batch is one transaction: images, analyses, posts and (for jobs) item states commit together or
not at all. A killed ingest therefore loses at most the batch in flight, and a rerun skips what was
committed (images are keyed by the SHA-256 of their bytes, posts by platform + post id).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from feedlens.core.errors import FeedlensError, ImageError, ImageErrorCode
from feedlens.images import ImageDecoder
from feedlens.services.feeds import FeedError, PostRecord, feed_format, read_feed, resolve_image
from feedlens.services.fetch import SafeFetcher
from feedlens.services.library import Library
from feedlens.services.pipeline import Pipeline, iter_image_files
from feedlens.storage import repositories as repo

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
CommitHook = Callable[[int, list[str]], None]


def chain_hooks(*hooks: CommitHook) -> CommitHook:
    """One after-commit hook that runs each of `hooks`; one failing does not stop the others."""

    def run(workspace: int, image_ids: list[str]) -> None:
        for hook in hooks:
            try:
                hook(workspace, image_ids)
            except Exception:  # the batch is committed; what the hook derives is redone later
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
    def __init__(
        self,
        library: Library,
        pipeline: Pipeline,
        decoder: ImageDecoder,
        fetcher: SafeFetcher,
        batch_size: int,
        after_commit: Callable[[int, list[str]], None] | None = None,
    ) -> None:
        self.after_commit = after_commit  # (workspace, image ids): e.g. fuse captions into search vectors
        self.library = library
        self.pipeline = pipeline
        self.decoder = decoder
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
        reports = dict(zip(fresh, self.pipeline.analyze_sources(names, list(fresh.values())), strict=True))
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
        if item.post is not None:
            post_pk = repo.upsert_post(session, workspace, _post_fields(item.post), item.post.hashtags)
            repo.link_post_image(session, post_pk, image_id, item.position)
        return ItemOutcome(item, status, image_id=image_id)


def items_from_paths(paths: Iterable[Path]) -> Iterator[IngestItem]:
    """Ingest items for image files, folders (recursively; feed files inside are skipped) and feed
    exports (.jsonl/.csv): one item per post image, and one failed item per bad feed row."""
    for path in paths:
        if path.is_file() and feed_format(path) is not None:
            yield from _feed_items(path)
            continue
        for file in iter_image_files([path]):
            if feed_format(file) is None:
                yield IngestItem(source=str(file), path=file)


def _feed_items(feed: Path) -> Iterator[IngestItem]:
    for row in read_feed(feed):
        where = f"{feed}:{row.line}"
        if row.record is None:
            error = row.error.to_dict() if row.error else {"code": "feed_invalid_record"}
            yield IngestItem(source=where, error=error)
            continue
        for position, ref in enumerate(row.record.images):
            try:
                target = resolve_image(ref, feed.parent)
            except FeedError as exc:
                yield IngestItem(source=where, error=exc.to_dict())
                continue
            if isinstance(target, Path):
                yield IngestItem(source=str(target), path=target, post=row.record, position=position)
            else:
                yield IngestItem(source=target, url=target, post=row.record, position=position)


@dataclass
class _Waiting:
    workspace: int
    item: IngestItem
    future: Future[ItemOutcome]


class CoalescingIngestor:
    """Stores single-image requests in shared batches: requests that arrive while the models are busy are
    taken together by the next `drain()`, so concurrent clients get batched inference (one forward pass
    for many images) without any client waiting for a timer.

    Usage per request: `future = submit(...)`, then run `drain()` on an inference thread; the future is
    done afterwards (by this drain or an earlier one).
    """

    def __init__(self, ingestor: Ingestor, linger_s: float = 0.05) -> None:
        self.ingestor = ingestor
        self.linger_s = linger_s
        self._last_batch = 1
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []

    def submit(self, workspace: int, item: IngestItem) -> Future[ItemOutcome]:
        future: Future[ItemOutcome] = Future()
        with self._lock:
            self._waiting.append(_Waiting(workspace, item, future))
        return future

    def drain(self) -> int:
        """Process up to one batch of waiting items; returns how many were taken."""
        with self._lock:
            short = 0 < len(self._waiting) < self._last_batch
        if short:
            # Clients that were just answered send their next image within milliseconds; waiting that
            # long keeps batches full instead of alternating between one image and the rest.
            time.sleep(self.linger_s)
        with self._lock:
            taken = self._waiting[: self.ingestor.batch_size]
            del self._waiting[: len(taken)]
            if taken:
                self._last_batch = len(taken)
        if taken:
            log.debug("coalesced %d waiting images into one batch", len(taken))
        for workspace in dict.fromkeys(w.workspace for w in taken):
            group = [w for w in taken if w.workspace == workspace]  # a batch commits into one workspace
            try:
                outcomes = self.ingestor.process_batch(workspace, [w.item for w in group])
            except BaseException as exc:  # e.g. the database went away: every waiting request learns it
                for waiting in group:
                    waiting.future.set_exception(exc)
                continue
            for waiting, outcome in zip(group, outcomes, strict=True):
                waiting.future.set_result(outcome)
        return len(taken)
