"""Re-analysis after an analyzer's version changes: real model, real stored copies, real databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from feedlens.analyzers.labels import LabelsAnalyzer
from feedlens.services.access import AccessService
from feedlens.services.factory import Services
from feedlens.services.fetch import SafeFetcher
from feedlens.services.ingest import IngestItem, Ingestor
from feedlens.services.library import Library
from feedlens.services.pipeline import Pipeline
from feedlens.services.reanalyze import reanalyze
from feedlens.storage import repositories as repo
from feedlens.storage.tables import Analysis, Facet, Image
from tests.support import images as memes

PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg")


@pytest.fixture
def library(stored_services: Services) -> Library:
    s = stored_services
    return Library(s.database, s.blobs, s.decoder, s.settings)


@pytest.fixture
def ingested(stored_services: Services, library: Library, sample_dir: Path) -> Iterator[tuple[int, Pipeline]]:
    """Three photos analysed with labels and properties in workspace team-a; (workspace, pipeline)."""
    workspace = AccessService(stored_services.database).create_workspace("team-a")
    pipeline = stored_services.pipeline(["labels", "properties"])
    with SafeFetcher(stored_services.settings.fetch) as fetcher:
        ingestor = Ingestor(library, pipeline, fetcher, batch_size=4)
        items = [IngestItem(name, path=sample_dir / name) for name in PHOTOS]
        assert [o.status for o in ingestor.ingest(workspace, items)] == ["added"] * len(PHOTOS)
    yield workspace, pipeline


def stale(s: Services, workspace: int | None, version: str) -> int:
    with s.database.session() as session:
        return repo.count_stale(session, workspace, "labels", version)


def versions_per_image(s: Services, analyzer: str) -> dict[str, set[str]]:
    with s.database.session() as session:
        rows = session.execute(
            select(Analysis.image_id, Analysis.version).where(Analysis.analyzer == analyzer)
        )
        out: dict[str, set[str]] = {}
        for image_id, version in rows:
            out.setdefault(image_id, set()).add(version)
        return out


def test_new_labels_version_recomputes_and_keeps_old_results(
    stored_services: Services,
    library: Library,
    ingested: tuple[int, Pipeline],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workspace, pipeline = ingested
    old = pipeline.versions()["labels"]
    old_properties = versions_per_image(stored_services, "properties")
    assert stale(stored_services, workspace, old) == 0

    monkeypatch.setattr(LabelsAnalyzer, "code_version", "labels-test-next")
    new = pipeline.versions()["labels"]
    assert new != old and new.startswith("labels-test-next")
    assert stale(stored_services, workspace, new) == len(PHOTOS)
    assert stale(stored_services, workspace + 1, new) == 0  # another (empty) workspace id
    assert stale(stored_services, None, new) == len(PHOTOS)

    # progress is read as it is yielded, after each committed batch
    steps = [(p.total, p.done, p.failed) for p in reanalyze(library, pipeline, "labels", workspace, 2)]
    assert steps == [(3, 2, 0), (3, 3, 0)]
    assert stale(stored_services, workspace, new) == 0
    assert stale(stored_services, workspace, old) == 0  # the old results are still there

    per_image = versions_per_image(stored_services, "labels")
    assert len(per_image) == len(PHOTOS) and all(v == {old, new} for v in per_image.values())
    assert versions_per_image(stored_services, "properties") == old_properties  # untouched
    with stored_services.database.session() as session:
        images = list(session.scalars(select(Image).order_by(Image.source)))
        current = repo.current_analyses(session, [i.id for i in images])
        views = library.views(session, images, pipeline.versions())
        facets = session.scalar(
            select(func.count(func.distinct(Facet.image_id))).where(Facet.analyzer == "labels")
        )
    assert all(current[i.id]["labels"].version == new for i in images)
    assert all(v["versions"]["labels"] == new and v["stale"] == [] for v in views)
    assert all(v["results"]["labels"]["labels"] for v in views)
    assert facets == len(PHOTOS)  # facets follow the current results

    # nothing left to do: a rerun yields no batch
    assert list(reanalyze(library, pipeline, "labels", workspace, batch_size=2)) == []


def test_reanalyze_counts_images_it_cannot_read_back(
    stored_services: Services,
    library: Library,
    ingested: tuple[int, Pipeline],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stored copy that no longer decodes is counted as failed and skipped, not retried forever."""
    workspace, pipeline = ingested
    with stored_services.database.session() as session:
        broken = session.scalars(select(Image).where(Image.source == "coffee.png")).one()
    path = stored_services.blobs.path("originals", broken.blob)
    path.write_bytes(path.read_bytes()[:2000])  # damaged on disk
    old = pipeline.versions()["labels"]
    monkeypatch.setattr(LabelsAnalyzer, "code_version", "labels-test-next")
    new = pipeline.versions()["labels"]

    steps = [(p.total, p.done, p.failed) for p in reanalyze(library, pipeline, "labels", None, 4)]
    assert steps == [(3, 2, 1)]
    assert stale(stored_services, workspace, new) == 1
    per_image = versions_per_image(stored_services, "labels")
    assert per_image.pop(broken.id) == {old}  # its old result stays current
    assert all(v == {old, new} for v in per_image.values())


def test_search_vectors_never_start_ocr_and_take_the_text_when_it_runs(
    stored_services: Services, library: Library, tmp_path: Path
) -> None:
    """`embedding` reads OCR text only when `text` runs anyway; `reanalyze -a text` refreshes the vectors."""
    s = stored_services
    bare = s.pipeline(["embedding"])
    assert "text" not in {a.name for a in bare.analyzers}
    assert s.followers("text") == ["embedding"]
    workspace = AccessService(s.database).create_workspace("vectors")
    meme = tmp_path / "meme.png"
    meme.write_bytes(memes.meme())  # words an OCR pass reads
    with SafeFetcher(s.settings.fetch) as fetcher:
        ingestor = Ingestor(library, bare, fetcher, batch_size=4)
        [outcome] = ingestor.ingest(workspace, [IngestItem("meme.png", path=meme)])
    image_id = outcome.image_id
    assert image_id is not None
    [report] = bare.analyze_sources(["meme.png"], [meme.read_bytes()])
    assert "text" not in report.results["embedding"].parts
    with_text = s.pipeline(["text", *s.followers("text")], decode_like_ingest=True)
    steps = list(reanalyze(library, with_text, "text", workspace, 4))
    assert steps[-1].done == 1
    with s.database.session() as session:
        current = {a.analyzer for a in session.scalars(select(Analysis).where(Analysis.image_id == image_id))}
    assert {"text", "embedding"} <= current
    [again] = with_text.analyze_sources(["meme.png"], [meme.read_bytes()])
    assert "text" in again.results["embedding"].parts
