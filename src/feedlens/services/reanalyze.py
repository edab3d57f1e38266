"""Recompute results that an analyzer's newer version would change (`feedlens reanalyze --analyzer X`).

Old results stay (they are kept per version); the new ones become current. Works from the stored
copies, so it needs no access to the original files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from feedlens.services.library import Library
from feedlens.services.pipeline import Pipeline
from feedlens.storage import repositories as repo


@dataclass
class ReanalyzeProgress:
    total: int
    done: int = 0
    failed: int = 0


def reanalyze(
    library: Library, pipeline: Pipeline, analyzer: str, workspace: int | None, batch_size: int
) -> Iterator[ReanalyzeProgress]:
    """Yield progress after each committed batch; images whose analysis fails are counted and skipped.

    Images are those whose `analyzer` result is stale; every result the pipeline reports is stored (the
    analyzers that draw on `analyzer`, e.g. `embedding` on `text`, are refreshed with it)."""
    versions = pipeline.versions()
    version = versions[analyzer]
    with library.database.session() as session:
        progress = ReanalyzeProgress(total=repo.count_stale(session, workspace, analyzer, version))
    failed: list[str] = []
    while True:
        with library.database.session() as session:
            images = repo.stale_images(session, workspace, analyzer, version, batch_size, skip=failed)
        if not images:
            return
        data = [library.blobs.get("originals", image.blob) for image in images]
        reports = pipeline.analyze_sources([i.id for i in images], data)
        with library.database.session() as session:
            for image, report in zip(images, reports, strict=True):
                if not report.ok:
                    failed.append(image.id)
                    progress.failed += 1
                    continue
                results = {name: result.to_dict() for name, result in report.results.items()}
                repo.add_analyses(session, image.id, results, {n: versions[n] for n in results})
                library.store_vectors(session, image.id, report, versions)
                progress.done += 1
        yield dataclasses.replace(progress)  # a snapshot: callers may keep them
