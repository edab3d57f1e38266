"""The batch-job queue on both real backends: claims under leases, renewal, take-over of an expired lease,
bounded retries and closing jobs. No models: items are rows, replicas are JobQueue objects with their own
ids over their own engines (as separate processes would be)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from feedlens.services.access import AccessService
from feedlens.services.job_queue import JobQueue, LeaseLostError
from feedlens.storage.database import Database
from feedlens.storage.tables import Job, JobItem, utcnow


@pytest.fixture
def replicas(db: Database, database_url: str) -> Iterator[tuple[JobQueue, JobQueue]]:
    """Two replicas, each with its own engine (connection pool) on the same database."""
    other = Database(database_url)
    yield JobQueue(db, "replica-a", max_attempts=3), JobQueue(other, "replica-b", max_attempts=3)
    other.dispose()


def submit(db: Database, items: int) -> str:
    workspace = AccessService(db).create_workspace("team-q")
    with db.session() as session:
        job = Job(workspace_id=workspace, kind="batch", status="pending", total=items)
        session.add(job)
        session.flush()
        session.add_all(JobItem(job_id=job.id, position=n, source=f"i{n}.png") for n in range(items))
        return job.id


def expire(db: Database, owner: str) -> None:
    """What time does to a dead replica's claims: their lease is over."""
    with db.session() as session:
        session.execute(
            update(JobItem)
            .where(JobItem.claimed_by == owner)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )


def finish(queue: JobQueue, ids: list[int]) -> None:
    with queue.database.session() as session:
        for item_id in ids:
            queue.complete(session, item_id, "done", None, None)


def test_replicas_claim_disjoint_chunks_and_close_the_job(
    db: Database, replicas: tuple[JobQueue, JobQueue]
) -> None:
    a, b = replicas
    job_id = submit(db, 5)
    first, second = a.claim(2), b.claim(2)
    assert first is not None and second is not None
    ids_a, ids_b = [i.id for i in first.items], [i.id for i in second.items]
    assert len(ids_a) == len(ids_b) == 2 and not set(ids_a) & set(ids_b)
    assert [i.attempts for i in first.items] == [1, 1]
    finish(a, ids_a)
    finish(b, ids_b)
    assert a.finish_jobs(job_id) == []  # one item is still pending
    last = b.claim(2)
    assert last is not None and len(last.items) == 1
    finish(b, [last.items[0].id])
    assert a.claim(2) is None
    assert a.finish_jobs() == [job_id] and b.finish_jobs() == []  # closed once
    with db.session() as session:
        rows = session.execute(select(JobItem.status, JobItem.claimed_by, JobItem.lease_until)).all()
        assert session.scalar(select(Job.status)) == "done"
    assert {tuple(r) for r in rows} == {("done", None, None)}


def test_skip_locked_passes_over_rows_another_claim_is_reading(
    db: Database, replicas: tuple[JobQueue, JobQueue], database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no row locks (one process claims there)")
    _, b = replicas
    submit(db, 3)
    with db.engine.connect() as held:  # replica A's claim transaction, caught before its COMMIT
        locked = (
            held.execute(select(JobItem.id).where(JobItem.position < 2).with_for_update()).scalars().all()
        )
        claim = b.claim(3)  # would block without SKIP LOCKED; takes what is free instead
        held.rollback()
    assert claim is not None and len(claim.items) == 1 and claim.items[0].id not in locked


def test_an_expired_lease_is_taken_over_and_the_late_replica_cannot_commit(
    db: Database, replicas: tuple[JobQueue, JobQueue]
) -> None:
    a, b = replicas
    submit(db, 1)
    claimed = a.claim(4)
    assert claimed is not None
    item = claimed.items[0].id
    assert b.claim(4) is None  # the lease is alive
    assert a.renew([item]) == 1
    expire(db, "replica-a")  # A hangs (or died): its lease runs out
    taken = b.claim(4)
    assert taken is not None and [(i.id, i.attempts) for i in taken.items] == [(item, 2)]
    assert a.renew([item]) == 0  # A can no longer extend it...
    with pytest.raises(LeaseLostError):
        finish(a, [item])  # ...nor commit an outcome: its transaction rolls back
    finish(b, [item])
    with db.session() as session:
        assert session.scalar(select(JobItem.status).where(JobItem.id == item)) == "done"


def test_an_item_that_never_finishes_fails_after_max_attempts(
    db: Database, replicas: tuple[JobQueue, JobQueue]
) -> None:
    a, b = replicas
    job_id = submit(db, 2)
    first = a.claim(2)
    assert first is not None and len(first.items) == 2
    a.release([i.id for i in first.items])  # processing failed: retried at once, attempt counted
    for queue in (b, a):  # retried items go one at a time
        retry = queue.claim(2)
        assert retry is not None and [i.attempts for i in retry.items] == [2 if queue is b else 3]
        expire(db, queue.replica)  # each time the worker dies on the first item
    given_up = b.claim(2)
    assert given_up is not None and given_up.items == []
    assert b.finish_jobs(job_id) == []  # the second item is still to do
    second = b.claim(2)
    assert second is not None and [i.attempts for i in second.items] == [2]
    finish(b, [second.items[0].id])
    assert b.finish_jobs(job_id) == [job_id]
    with db.session() as session:
        rows = session.execute(select(JobItem.status, JobItem.error).order_by(JobItem.position)).all()
    assert rows[0][0] == "failed" and rows[0][1]["code"] == "too_many_attempts"
    assert rows[1][0] == "done" and rows[1][1] is None


def test_a_restarted_replica_takes_back_its_own_claims(
    db: Database, replicas: tuple[JobQueue, JobQueue]
) -> None:
    a, b = replicas
    submit(db, 2)
    assert a.claim(2) is not None
    restarted = JobQueue(b.database, "replica-a")  # the same name, a new process
    assert restarted.release_all() == 2
    again = b.claim(2)
    assert again is not None and len(again.items) == 1  # free at once, no lease to wait out
