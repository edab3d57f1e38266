"""Batch jobs: accepted at once, stored, processed in the background, resumed after a restart.

Uploaded bytes are staged in the blob store before the job row commits, so an accepted job never
depends on memory. An item becomes `done`/`failed` in the same transaction that stores its image, so
a restart resumes exactly the items still `pending`: none lost, none done twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedlens.services.feeds import PostRecord
from feedlens.services.ingest import IngestItem, Ingestor, ItemOutcome
from feedlens.services.library import Library, printable, utc
from feedlens.storage import repositories as repo
from feedlens.storage.tables import Job, JobItem

log = logging.getLogger(__name__)

PENDING, DONE, FAILED = "pending", "done", "failed"


@dataclass(frozen=True, slots=True)
class BatchItem:
    source: str
    data: bytes | None = None
    url: str | None = None
    post: PostRecord | None = None


class JobService:
    def __init__(self, library: Library, ingestor: Ingestor) -> None:
        self.library = library
        self.ingestor = ingestor
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- API side --------------------------------------------------------------------------------------
    def create_batch(self, workspace: int, items: Sequence[BatchItem]) -> str:
        staged = [self.library.blobs.put("staging", i.data) if i.data is not None else None for i in items]
        with self.library.database.session() as session:
            job = Job(workspace_id=workspace, kind="batch", status=PENDING, total=len(items))
            session.add(job)
            session.flush()
            session.add_all(
                JobItem(
                    job_id=job.id,
                    position=n,
                    source=item.url or printable(item.source)[:2000],
                    staged_blob=blob,
                    post=item.post.model_dump(mode="json") if item.post else None,
                )
                for n, (item, blob) in enumerate(zip(items, staged, strict=True))
            )
            job_id = job.id
        self._wake.set()
        return job_id

    def view(self, workspace: int, job_id: str, with_results: bool = True) -> dict[str, Any] | None:
        with self.library.database.session() as session:
            job = session.scalar(select(Job).where(Job.workspace_id == workspace, Job.id == job_id))
            if job is None:
                return None
            counts = dict(
                session.execute(
                    select(JobItem.status, func.count())
                    .where(JobItem.job_id == job_id)
                    .group_by(JobItem.status)
                ).all()
            )
            items = list(job.items)
            results: dict[str, dict[str, Any]] = {}
            if with_results:
                done = [i.image_id for i in items if i.image_id]
                analyses = repo.current_analyses(session, done)
                results = {i: {n: a.result for n, a in per.items()} for i, per in analyses.items()}
            finished = counts.get(DONE, 0) + counts.get(FAILED, 0)
            return {
                "id": job.id,
                "status": job.status,
                "total": job.total,
                "done": counts.get(DONE, 0),
                "failed": counts.get(FAILED, 0),
                "pending": counts.get(PENDING, 0),
                "progress": round(finished / job.total, 4) if job.total else 1.0,
                "created_at": utc(job.created_at),
                "updated_at": utc(job.updated_at),
                "items": [
                    {
                        "position": i.position,
                        "source": i.source,
                        "status": i.status,
                        "image_id": i.image_id,
                        **({"error": i.error} if i.error else {}),
                        **({"results": results.get(i.image_id, {})} if with_results and i.image_id else {}),
                    }
                    for i in items
                ],
            }

    # -- worker side -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # a broken item must not kill the worker; it is retried after a pause
                log.exception("job worker step failed")
                worked = False
            if not worked:
                self._wake.wait(timeout=1.0)
                self._wake.clear()

    def run_once(self) -> bool:
        """Process one chunk of the oldest unfinished job; False when there is nothing to do."""
        with self.library.database.session() as session:
            job = session.scalar(select(Job).where(Job.status == PENDING).order_by(Job.created_at).limit(1))
            if job is None:
                return False
            rows = list(
                session.scalars(
                    select(JobItem)
                    .where(JobItem.job_id == job.id, JobItem.status == PENDING)
                    .order_by(JobItem.position)
                    .limit(self.ingestor.batch_size)
                )
            )
            workspace, job_id = job.workspace_id, job.id
            if not rows:
                job.status = DONE
            items = [self._to_ingest(row) for row in rows]
            ids = [row.id for row in rows]
        if not rows:
            # A crash between an item's commit and freeing its upload leaves the file behind: sweep.
            with self.library.database.session() as session:
                leftovers = set(
                    session.scalars(
                        select(JobItem.staged_blob).where(
                            JobItem.job_id == job_id, JobItem.staged_blob.is_not(None)
                        )
                    )
                )
            self._free_staged({b for b in leftovers if b})
            return True

        def mark(session: Session, outcomes: list[ItemOutcome]) -> None:
            for item_id, outcome in zip(ids, outcomes, strict=True):
                row = session.get(JobItem, item_id)
                assert row is not None
                row.status = FAILED if outcome.status == FAILED else DONE
                row.image_id = outcome.image_id
                row.error = outcome.error

        self.ingestor.process_batch(workspace, items, on_commit=mark)
        # Staged bytes are in the library now (or were bad): free those no pending item still needs.
        self._free_staged({i.source_blob for i in items if i.source_blob})
        return True

    def _free_staged(self, staged: set[str]) -> None:
        if not staged:
            return
        with self.library.database.session() as session:
            needed = set(
                session.scalars(
                    select(JobItem.staged_blob).where(
                        JobItem.staged_blob.in_(staged), JobItem.status == PENDING
                    )
                )
            )
        for blob in staged - needed:
            self.library.blobs.delete("staging", blob)

    def _to_ingest(self, row: JobItem) -> _StagedItem:
        post = PostRecord.model_validate(row.post) if row.post else None
        if row.staged_blob is not None:
            if not self.library.blobs.exists("staging", row.staged_blob):
                error = {"code": "staging_lost", "message": "the uploaded bytes are no longer staged"}
                return _StagedItem(source=row.source, error=error, source_blob=None)
            data = self.library.blobs.get("staging", row.staged_blob)
            return _StagedItem(source=row.source, data=data, post=post, source_blob=row.staged_blob)
        return _StagedItem(source=row.source, url=row.source, post=post, source_blob=None)


@dataclass(frozen=True, slots=True)
class _StagedItem(IngestItem):
    source_blob: str | None = None
