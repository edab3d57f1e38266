"""A new image's results stored in bulk (`add_first_analyses`, ingest's path) read back exactly as the
row-by-row path (`add_analyses`, used when results replace others) stores them, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from feedlens.storage import repositories as repo
from feedlens.storage.database import Database
from feedlens.storage.tables import Analysis, Facet

RESULTS: dict[str, dict[str, Any]] = {
    "labels": {
        "labels": [{"id": "cat", "name": "Cat", "score": 0.9}, {"id": "pet", "name": "Pet", "score": 0.8}],
        "classes": [],
    },
    "safety": {"verdict": "safe", "explicit": 0.01, "suggestive": 0.02, "regions": []},
    "properties": {"width": 10, "height": 10},
}
VERSIONS = {"labels": "l@1", "safety": "s@1", "properties": "p@1"}


def _image(session: Any, workspace: int, sha: str) -> str:
    image_id, created = repo.insert_image(
        session, workspace_id=workspace, sha256=sha, blob=sha, format="png", width=10, height=10,
        size_bytes=1, source="test",
    )  # fmt: skip
    assert created
    return image_id


def _stored(session: Any, image_id: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    analyses = session.execute(
        select(Analysis.analyzer, Analysis.version, Analysis.result).where(Analysis.image_id == image_id)
    ).all()
    facets = session.execute(
        select(Facet.analyzer, Facet.kind, Facet.value, Facet.score).where(Facet.image_id == image_id)
    ).all()
    return sorted(map(tuple, analyses), key=repr), sorted(map(tuple, facets), key=repr)


def test_bulk_path_stores_what_the_row_path_stores(db: Database) -> None:
    with db.session() as session:
        workspace = repo.ensure_workspace(session, "first")
        bulk, rows = _image(session, workspace, "a" * 64), _image(session, workspace, "b" * 64)
        repo.add_first_analyses(session, bulk, RESULTS, VERSIONS)
        repo.add_analyses(session, rows, RESULTS, VERSIONS)
        repo.add_first_analyses(session, _image(session, workspace, "c" * 64), {}, {})  # nothing: no-op
    with db.session() as session:
        stored = _stored(session, bulk)
        assert stored == _stored(session, rows)
        analyses, facets = stored
        assert [a[0] for a in analyses] == ["labels", "properties", "safety"]
        assert ("labels", "label", "cat", 0.9) in [tuple(f) for f in facets]
        assert repo.current_analyses(session, [bulk])[bulk]["labels"].created_at is not None
