"""Batch jobs over real databases with the real model: staging, processing, views, resuming after restarts."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from feedlens.services.access import AccessService
from feedlens.services.factory import Services
from feedlens.services.feeds import PostRecord
from feedlens.services.fetch import SafeFetcher
from feedlens.services.ingest import BatchHook, IngestItem, Ingestor, ItemOutcome
from feedlens.services.jobs import BatchItem, JobService
from feedlens.services.library import Library
from feedlens.services.pipeline import Pipeline
from feedlens.storage.blobs import BlobStore
from feedlens.storage.database import Database
from feedlens.storage.tables import Analysis, Image, JobItem, Post, PostImage

ANALYZERS = ["labels", "properties"]


class ProcessKilledError(Exception):
    """Stands for the process dying: raised inside the unit of work, before its commit."""


class RecordingIngestor(Ingestor):
    """An Ingestor that remembers the source of every item it processed (to prove none ran twice)."""

    def __init__(self, library: Library, pipeline: Pipeline, fetcher: SafeFetcher, batch_size: int) -> None:
        super().__init__(library, pipeline, fetcher, batch_size)
        self.seen: list[str] = []
        self.die_before_commit = False  # simulates a kill between storing a chunk and its commit

    def process_batch(
        self, workspace: int, batch: Sequence[IngestItem], on_commit: BatchHook | None = None
    ) -> list[ItemOutcome]:
        def hook(session: Session, outcomes: list[ItemOutcome]) -> None:
            if on_commit is not None:
                on_commit(session, outcomes)
            if self.die_before_commit:
                raise ProcessKilledError

        outcomes = super().process_batch(workspace, batch, hook)
        self.seen.extend(item.source for item in batch)
        return outcomes


MakeJobs = Callable[..., JobService]


@pytest.fixture
def make_jobs(stored_services: Services) -> Iterator[MakeJobs]:
    """Builds a JobService as the API does: a fresh Library/Ingestor each time (a new process)."""
    fetchers: list[SafeFetcher] = []

    def make(s: Services = stored_services, batch_size: int = 2, seen: list[str] | None = None) -> JobService:
        library = Library(s.database, s.blobs, s.decoder, s.settings)
        fetchers.append(SafeFetcher(s.settings.fetch))
        ingestor = RecordingIngestor(library, s.pipeline(ANALYZERS), fetchers[-1], batch_size)
        if seen is not None:
            ingestor.seen = seen  # shared across "processes"
        return JobService(library, ingestor)

    yield make
    for fetcher in fetchers:
        fetcher.close()


@pytest.fixture
def workspace(stored_services: Services) -> int:
    return AccessService(stored_services.database).create_workspace("team-a")


def drain(jobs: JobService, limit: int = 50) -> int:
    """run_once until there is nothing to do; returns how many steps did work."""
    for steps in range(limit):
        if not jobs.run_once():
            return steps
    raise AssertionError("the job never finished")


def uploads(sample_dir: Path, *names: str) -> list[BatchItem]:
    return [BatchItem(source=name, data=(sample_dir / name).read_bytes()) for name in names]


def images_in(s: Services) -> int:
    with s.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(Image)) or 0)


def test_batch_of_uploads_is_processed_and_staging_cleaned(
    make_jobs: MakeJobs, stored_services: Services, workspace: int, sample_dir: Path
) -> None:
    post = PostRecord.model_validate({"id": "p9", "image": "upload", "author": "@dana", "caption": "#mug"})
    items = [
        dataclasses.replace(uploads(sample_dir, "coffee.png")[0], post=post),
        BatchItem(source="broken.jpg", data=(sample_dir / "rocket.jpg").read_bytes()[:300] + bytes(2000)),
        *uploads(sample_dir, "chelsea.png"),
    ]
    jobs = make_jobs()
    job_id = jobs.create_batch(workspace, items)
    assert stored_services.blobs.count("staging") == 3  # accepted = on disk, before any processing
    waiting = jobs.view(workspace, job_id)
    assert waiting is not None
    assert (waiting["status"], waiting["pending"], waiting["progress"]) == ("pending", 3, 0.0)

    assert drain(jobs) >= 2
    view = jobs.view(workspace, job_id)
    assert view is not None
    assert (view["status"], view["total"], view["done"], view["failed"], view["pending"]) == (
        "done",
        3,
        2,
        1,
        0,
    )
    assert view["progress"] == 1.0
    coffee, broken, cat = view["items"]
    assert [i["position"] for i in view["items"]] == [0, 1, 2]
    assert [i["source"] for i in view["items"]] == ["coffee.png", "broken.jpg", "chelsea.png"]
    for done in (coffee, cat):
        assert done["status"] == "done" and done["image_id"] and "error" not in done
        assert set(done["results"]) == set(ANALYZERS)
    assert broken["status"] == "failed" and broken["image_id"] is None and "results" not in broken
    assert broken["error"]["code"] == "corrupt" and broken["error"]["message"]
    assert stored_services.blobs.count("staging") == 0
    assert images_in(stored_services) == 2
    with stored_services.database.session() as session:
        linked = session.execute(select(Post.post_id, Post.author, PostImage.image_id).join(PostImage)).all()
    assert [tuple(r) for r in linked] == [("p9", "dana", coffee["image_id"])]
    brief = jobs.view(workspace, job_id, with_results=False)
    assert brief is not None and all("results" not in i for i in brief["items"])


@contextmanager
def restart(s: Services) -> Iterator[Services]:
    """A new process over the same data: new engine and blob store (the old engine is closed first)."""
    s.database.dispose()
    database = Database(s.settings.database)
    try:
        yield Services(s.settings, s.store, s.decoder, database, BlobStore(s.settings.blobs_dir))
    finally:
        database.dispose()


def test_job_resumes_after_a_restart_without_redoing_items(
    make_jobs: MakeJobs, stored_services: Services, workspace: int, sample_dir: Path
) -> None:
    names = ("chelsea.png", "coffee.png", "rocket.jpg", "camera.png", "flower.jpg")
    seen: list[str] = []
    first = make_jobs(seen=seen)
    job_id = first.create_batch(workspace, [*uploads(sample_dir, *names), *uploads(sample_dir, "coffee.png")])
    assert first.run_once()  # one chunk of 2, then the process stops
    assert seen == list(names[:2])
    progress = first.view(workspace, job_id, with_results=False)
    assert progress is not None and (progress["done"], progress["pending"]) == (2, 4)

    with restart(stored_services) as restarted:
        second = make_jobs(restarted, seen=seen)
        drain(second)
        assert sorted(seen) == sorted([*names, "coffee.png"])  # every item exactly once
        view = second.view(workspace, job_id, with_results=False)
        assert view is not None
        assert (view["status"], view["done"], view["failed"], view["pending"]) == ("done", 6, 0, 0)
        ids = [i["image_id"] for i in view["items"]]
        assert len(set(ids)) == len(names) and ids[5] == ids[1]  # the repeated upload is the same image
        assert images_in(restarted) == len(names)
        assert restarted.blobs.count("staging") == 0


def test_a_chunk_killed_before_commit_is_redone_whole(
    make_jobs: MakeJobs,
    stored_services: Services,
    workspace: int,
    sample_dir: Path,
) -> None:
    first = make_jobs()
    job_id = first.create_batch(workspace, uploads(sample_dir, "chelsea.png", "coffee.png", "rocket.jpg"))
    assert isinstance(first.ingestor, RecordingIngestor)
    first.ingestor.die_before_commit = True
    with pytest.raises(ProcessKilledError):
        first.run_once()
    with restart(stored_services) as restarted:
        worker = make_jobs(restarted)
        drain(worker)
        view = worker.view(workspace, job_id)
        assert view is not None and (view["done"], view["failed"]) == (3, 0)
        for item in view["items"]:
            assert set(item["results"]) == set(ANALYZERS), item["source"]
        with restarted.database.session() as session:
            analyses = session.scalar(select(func.count()).select_from(Analysis))
        assert analyses == 3 * len(ANALYZERS)


def test_jobs_of_another_workspace_are_invisible(
    make_jobs: MakeJobs, stored_services: Services, workspace: int, sample_dir: Path
) -> None:
    jobs = make_jobs()
    job_id = jobs.create_batch(workspace, uploads(sample_dir, "chelsea.png"))
    other = AccessService(stored_services.database).create_workspace("team-b")
    assert jobs.view(other, job_id) is None
    assert jobs.view(workspace, "0" * 24) is None
    drain(jobs)
    assert jobs.view(other, job_id) is None
    with stored_services.database.session() as session:
        owners = set(session.scalars(select(Image.workspace_id)))
    assert owners == {workspace}


def test_erasing_an_image_keeps_the_job_history(
    make_jobs: MakeJobs, stored_services: Services, workspace: int, sample_dir: Path
) -> None:
    jobs = make_jobs()
    job_id = jobs.create_batch(workspace, uploads(sample_dir, "chelsea.png"))
    drain(jobs)
    view = jobs.view(workspace, job_id)
    assert view is not None
    image_id = view["items"][0]["image_id"]
    assert jobs.library.delete_images(workspace, [image_id]) == [image_id]
    after = jobs.view(workspace, job_id)
    assert after is not None and after["done"] == 1
    assert after["items"][0]["image_id"] is None  # the row stays; its link to the erased image goes
    with stored_services.database.session() as session:
        assert session.scalar(select(func.count()).select_from(JobItem)) == 1


def test_background_worker_finishes_a_job(
    make_jobs: MakeJobs, stored_services: Services, workspace: int, sample_dir: Path
) -> None:
    jobs = make_jobs()
    jobs.start()
    try:
        job_id = jobs.create_batch(workspace, uploads(sample_dir, "chelsea.png", "coffee.png", "rocket.jpg"))
        deadline = time.monotonic() + 30
        while (view := jobs.view(workspace, job_id, with_results=False)) is not None and view[
            "status"
        ] != "done":
            assert time.monotonic() < deadline, view
            time.sleep(0.05)
    finally:
        jobs.stop()
    assert view is not None and (view["done"], view["failed"]) == (3, 0)
    assert images_in(stored_services) == 3


def test_items_that_cannot_be_read_fail_alone(
    make_jobs: MakeJobs, stored_services: Services, workspace: int, sample_dir: Path
) -> None:
    jobs = make_jobs(batch_size=4)
    url = "http://127.0.0.1:9/a.jpg"
    items = [*uploads(sample_dir, "chelsea.png", "coffee.png"), BatchItem(source="remote", url=url)]
    job_id = jobs.create_batch(workspace, items)
    lost = stored_services.blobs.put("staging", items[0].data or b"")  # the same name: content-addressed
    assert stored_services.blobs.delete("staging", lost)
    drain(jobs)
    view = jobs.view(workspace, job_id)
    assert view is not None and (view["status"], view["done"], view["failed"]) == ("done", 1, 2)
    staged, upload, remote = view["items"]
    assert staged["error"]["code"] == "staging_lost"
    assert upload["status"] == "done" and set(upload["results"]) == set(ANALYZERS)
    assert remote["source"] == url and remote["error"]["code"] == "fetch_disabled"  # fetching is opt-in
