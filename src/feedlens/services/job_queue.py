"""The batch-job queue in the database: items are claimed under a lease, so several API replicas sharing
one PostgreSQL each take work without doubling it, and a replica that dies loses nothing.

- Claim: pending items whose lease is free or expired, oldest job first, read with `FOR UPDATE SKIP LOCKED`
  (PostgreSQL: two replicas never wait on or take the same rows), then stamped with this replica's id, a
  lease end and one more attempt. SQLite has no SKIP LOCKED; there the plain claim serves one process.
- Lease: renewed while the replica works on the items; when it ends unrenewed (the replica was killed or
  hangs), any replica takes the items over.
- Exactly once: an item becomes done/failed by a conditional UPDATE (still pending, still ours) in the
  transaction that stores its image. A replica that lost its lease meanwhile finds no row to update and
  rolls its whole chunk back, so only one outcome is ever committed per item.
- Retries: an item claimed `max_attempts` times without an outcome (its worker died or failed every time)
  fails with a clear error instead of looping forever; an item that was retried is claimed alone, so it
  cannot take healthy neighbours down with it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import CursorResult, exists, or_, select, update
from sqlalchemy.orm import Session

from feedlens.storage.database import Database
from feedlens.storage.tables import Job, JobItem, utcnow

log = logging.getLogger(__name__)

PENDING, DONE, FAILED = "pending", "done", "failed"


class LeaseLostError(Exception):
    """Another replica took these items over (our lease ran out): this replica's work on them is void."""


def default_replica_id() -> str:
    """Unique per process: host, process id and a random tail (a pid may be reused after a restart)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class ClaimedItem:
    id: int
    source: str
    staged_blob: str | None
    post: dict[str, Any] | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Claim:
    """Items of one job now leased to this replica (`items` may be empty when all were given up)."""

    job_id: str
    workspace: int
    items: list[ClaimedItem]


class JobQueue:
    def __init__(
        self, database: Database, replica: str, lease_seconds: float = 60.0, max_attempts: int = 3
    ) -> None:
        self.database = database
        self.replica = replica
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts

    def claim(self, limit: int) -> Claim | None:
        """Lease up to `limit` pending items of the oldest job that has free ones; None: nothing to do."""
        now = utcnow()
        with self.database.session() as session:
            rows = list(
                session.scalars(
                    select(JobItem)
                    .join(Job, Job.id == JobItem.job_id)
                    .where(
                        Job.status == PENDING,
                        JobItem.status == PENDING,
                        or_(JobItem.lease_until.is_(None), JobItem.lease_until < now),
                    )
                    .order_by(Job.created_at, JobItem.job_id, JobItem.position)
                    .limit(limit)
                    .with_for_update(of=JobItem, skip_locked=True)
                )
            )
            if not rows:
                return None
            job = session.get(Job, rows[0].job_id)
            assert job is not None
            rows = [r for r in rows if r.job_id == job.id]
            # a retried item goes alone; fresh ones go as a chunk
            rows = rows[:1] if rows[0].attempts else [r for r in rows if not r.attempts]
            claimed: list[ClaimedItem] = []
            for row in rows:
                if row.attempts >= self.max_attempts:
                    self._give_up(row)
                    continue
                row.claimed_by, row.lease_until = self.replica, now + self.lease
                row.attempts += 1
                claimed.append(ClaimedItem(row.id, row.source, row.staged_blob, row.post, row.attempts))
            return Claim(job.id, job.workspace_id, claimed)

    def _give_up(self, row: JobItem) -> None:
        log.warning("job %s item %d failed after %d attempts", row.job_id, row.position, row.attempts)
        row.status, row.claimed_by, row.lease_until = FAILED, None, None
        row.error = {
            "code": "too_many_attempts",
            "message": f"processing was started {row.attempts} times and never finished (the worker "
            "stopped or failed each time); the item was given up",
        }

    def complete(
        self, session: Session, item_id: int, status: str, image_id: str | None, error: dict[str, Any] | None
    ) -> None:
        """Record an item's outcome inside the caller's transaction; LeaseLostError if it is not ours now."""
        result = session.execute(
            update(JobItem)
            .where(JobItem.id == item_id, JobItem.status == PENDING, JobItem.claimed_by == self.replica)
            .values(status=status, image_id=image_id, error=error, claimed_by=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            raise LeaseLostError(f"job item {item_id} is no longer leased to {self.replica}")

    def renew(self, item_ids: Sequence[int]) -> int:
        """Push the lease of these items (still pending and ours) one lease length ahead; how many were."""
        if not item_ids:
            return 0
        with self.database.session() as session:
            result = session.execute(
                update(JobItem)
                .where(*self._ours(item_ids))
                .values(lease_until=utcnow() + self.lease)
                .execution_options(synchronize_session=False)
            )
            return _rowcount(result)

    def release(self, item_ids: Sequence[int]) -> None:
        """Free these items at once (processing failed here): any replica retries them; attempts stay."""
        if not item_ids:
            return
        with self.database.session() as session:
            session.execute(
                update(JobItem)
                .where(*self._ours(item_ids))
                .values(claimed_by=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )

    def release_all(self) -> int:
        """Free every item this replica id holds: a restarted replica under the same id (its old process
        is gone) takes its work back at once instead of waiting for the leases to run out."""
        with self.database.session() as session:
            result = session.execute(
                update(JobItem)
                .where(JobItem.claimed_by == self.replica, JobItem.status == PENDING)
                .values(claimed_by=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )
            return _rowcount(result)

    def finish_jobs(self, job_id: str | None = None) -> list[str]:
        """Mark done the pending jobs (or this one) with no pending item left; the ids this call marked."""
        still_pending = exists().where(JobItem.job_id == Job.id, JobItem.status == PENDING)
        query = select(Job.id).where(Job.status == PENDING, ~still_pending)
        if job_id is not None:
            query = query.where(Job.id == job_id)
        finished: list[str] = []
        with self.database.session() as session:
            for found in session.scalars(query.order_by(Job.created_at).limit(100)).all():
                # conditional: when two replicas race to close a job, one of them does
                result = session.execute(
                    update(Job).where(Job.id == found, Job.status == PENDING).values(status=DONE)
                )
                if _rowcount(result) == 1:
                    finished.append(found)
        return finished

    def _ours(self, item_ids: Sequence[int]) -> tuple[Any, ...]:
        return (JobItem.id.in_(list(item_ids)), JobItem.claimed_by == self.replica, JobItem.status == PENDING)


def _rowcount(result: Any) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0
