"""Batch jobs: accepted at once, stored, processed in the background, resumed after a restart.

Uploaded bytes are staged in the blob store before the job row commits, so an accepted job never
depends on memory. Workers (one thread per server, any number of servers on one database) lease items
from the queue in the database (services/job_queue.py); an item becomes `done`/`failed` in the same
transaction that stores its image, and only while its lease is still the worker's, so a restart or
another replica resumes exactly the items still `pending`: none lost, none done twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedlens.services.feeds import PostRecord
from feedlens.services.ingest import IngestItem, Ingestor, ItemOutcome
from feedlens.services.job_queue import (
    DONE,
    FAILED,
    PENDING,
    ClaimedItem,
    JobQueue,
    LeaseLostError,
    default_replica_id,
)
from feedlens.services.library import Library, printable, utc
from feedlens.storage import repositories as repo
from feedlens.storage.tables import Job, JobItem

if TYPE_CHECKING:
    from feedlens.services.cluster.ray_ingest import ClusterIngestor

log = logging.getLogger(__name__)

__all__ = ["DONE", "FAILED", "PENDING", "BatchItem", "JobService"]


@dataclass(frozen=True, slots=True)
class BatchItem:
    source: str
    data: bytes | None = None
    url: str | None = None
    post: PostRecord | None = None


class JobService:
    def __init__(self, library: Library, ingestor: Ingestor, replica: str | None = None) -> None:
        self.library = library
        self.ingestor = ingestor
        jobs = library.settings.jobs
        self.queue = JobQueue(
            library.database,
            replica or jobs.replica_id or default_replica_id(),
            jobs.lease_seconds,
            jobs.max_attempts,
        )
        self.poll_seconds = jobs.poll_seconds
        self.chunk_images = library.settings.cluster.chunk_images
        self._on_cluster: ClusterIngestor | None = None
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
        # a previous process under this replica id is gone (serve checked its port is free): take its
        # claims back now rather than after their leases run out
        if released := self.queue.release_all():
            log.info("took back %d batch items this replica (%s) held before", released, self.queue.replica)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._on_cluster is not None:
            self._on_cluster.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # a broken item must not kill the worker; it is retried after a pause
                log.exception("job worker step failed")
                worked = False
            if not worked:
                # other replicas' submissions and expired leases are only seen by looking again
                self._wake.wait(timeout=self.poll_seconds)
                self._wake.clear()

    def run_once(self) -> bool:
        """Lease and process one chunk of the oldest job with free items; False when there is nothing."""
        cluster = self._cluster()
        # on a cluster a claim is a round of `chunk_images`: its actors load their models once per round
        claim = self.queue.claim(self.ingestor.batch_size if cluster is None else self.chunk_images)
        if claim is None:
            return self._finish(None)
        if not claim.items:
            self._finish(claim.job_id)  # its last items were given up
            return True
        ids = [item.id for item in claim.items]
        try:
            with _Heartbeat(self.queue, ids):
                items = [self._to_ingest(item) for item in claim.items]

                def mark(session: Session, outcomes: list[ItemOutcome]) -> None:
                    for item_id, outcome in zip(ids, outcomes, strict=True):
                        status = FAILED if outcome.status == FAILED else DONE
                        self.queue.complete(session, item_id, status, outcome.image_id, outcome.error)

                (cluster or self.ingestor).process_batch(claim.workspace, items, on_commit=mark)
        except LeaseLostError as e:  # another replica owns them now; what we stored was rolled back
            log.warning("gave up a chunk of job %s: %s", claim.job_id, e)
            return True
        except BaseException:
            self.queue.release(ids)  # retried at once, by any replica (the attempt is counted)
            raise
        # Staged bytes are in the library now (or were bad): free those no pending item still needs.
        self._free_staged({i.source_blob for i in items if i.source_blob})
        self._finish(claim.job_id)
        return True

    def _cluster(self) -> ClusterIngestor | None:
        """With FEEDLENS_RAY_ADDRESS set, the Ray cluster analyses the items this replica claims (the
        replica stores them); None: this process analyses them."""
        address = self.library.settings.ray_address
        if not address:
            return None
        if self._on_cluster is None:
            from feedlens.services.cluster.ray_ingest import ClusterIngestor

            self._on_cluster = ClusterIngestor(self.ingestor, self.library.settings, address)
        return self._on_cluster

    def _finish(self, job_id: str | None) -> bool:
        """Close jobs with nothing pending (this one, or any: a replica may have died before closing its
        job) and sweep their staged uploads; True if one was closed."""
        finished = self.queue.finish_jobs(job_id)
        for done in finished:
            # a crash between an item's commit and freeing its upload leaves the file behind: sweep
            with self.library.database.session() as session:
                leftovers = set(
                    session.scalars(
                        select(JobItem.staged_blob).where(
                            JobItem.job_id == done, JobItem.staged_blob.is_not(None)
                        )
                    )
                )
            self._free_staged({b for b in leftovers if b})
        return bool(finished)

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

    def _to_ingest(self, row: ClaimedItem) -> _StagedItem:
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


class _Heartbeat:
    """Renews a claim's lease every third of its length while the chunk is being processed: a slow
    chunk keeps its items; a killed process stops renewing and another replica takes them over."""

    def __init__(self, queue: JobQueue, item_ids: list[int]) -> None:
        self.queue = queue
        self.item_ids = item_ids
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="jobs-lease", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        interval = self.queue.lease.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                if not self.queue.renew(self.item_ids):
                    return  # nothing of ours left to renew (committed, or taken over)
            except Exception:  # a database hiccup: the next beat tries again before the lease ends
                log.warning("could not renew the lease of job items %s", self.item_ids, exc_info=True)
