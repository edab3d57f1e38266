"""Training and evaluation runs in the background, one at a time, for the API (the CLI runs in the
foreground). One worker because torch's thread count is process-wide and two trainings on 2 cores only
slow each other down; a short queue so a burst of requests is refused (`training_busy`) instead of
piling up. Runs live in memory: a server restart forgets queued and running ones (their result is a model
version, which is stored only when a run finishes, so nothing half-made is left behind)."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from feedlens.core.errors import CodedError, FeedlensError

log = logging.getLogger(__name__)
MAX_WAITING = 2
KEEP_FINISHED = 100


class RunError(CodedError):
    """A training run that cannot be queued (`training_busy`) or found (`run_not_found`)."""


@dataclass
class Run:
    id: str
    workspace: int
    kind: str  # train, evaluate
    status: str = "queued"  # queued, running, succeeded, failed
    result: Any = None
    error: dict[str, Any] | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
        }


class RunQueue:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feedlens-train")
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def submit(self, workspace: int, kind: str, work: Callable[[], Any]) -> Run:
        with self._lock:
            waiting = sum(r.status in ("queued", "running") for r in self._runs.values())
            if waiting > MAX_WAITING:
                raise RunError("training_busy", f"{waiting} training runs are queued or running; retry later")
            run = Run(secrets.token_hex(8), workspace, kind)
            self._runs[run.id] = run
            self._forget_old()
        self._pool.submit(self._execute, run, work)
        return run

    def _execute(self, run: Run, work: Callable[[], Any]) -> None:
        run.status = "running"
        try:
            run.result = work()
            run.status = "succeeded"
        except FeedlensError as exc:
            run.status, run.error = "failed", exc.to_dict()
        except Exception as exc:  # a bug: keep the server up, say so in the run
            log.exception("training run %s failed", run.id)
            run.status, run.error = "failed", {"code": "internal_error", "message": f"{type(exc).__name__}"}
        run.finished_at = datetime.now(UTC)

    def active(self, workspace: int, kind: str) -> Run | None:
        """A queued or running run of this kind for the workspace, if any."""
        with self._lock:
            return next(
                (
                    r
                    for r in self._runs.values()
                    if r.workspace == workspace and r.kind == kind and r.status in ("queued", "running")
                ),
                None,
            )

    def get(self, workspace: int, run_id: str) -> Run:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None or run.workspace != workspace:
            raise RunError("run_not_found", f"no training run {run_id!r} in this workspace")
        return run

    def _forget_old(self) -> None:
        done = [r for r in self._runs.values() if r.finished_at is not None]
        for run in sorted(done, key=lambda r: r.created_at)[: max(0, len(done) - KEEP_FINISHED)]:
            del self._runs[run.id]

    def wait(self, timeout: float | None = None) -> None:
        """Block until every submitted run has finished (tests, shutdown)."""
        self._pool.submit(lambda: None).result(timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
