"""Batching of single-image API requests into shared forward passes."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

from feedlens.services.ingest import IngestItem, Ingestor, ItemOutcome

log = logging.getLogger(__name__)


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
