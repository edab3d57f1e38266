"""Chosen safety scores for stored images: the sample photos are all safe, so the review queue's tests
write `safety` results with hand-picked scores through the repository call the pipeline's results use."""

from __future__ import annotations

from typing import Any

from feedlens.storage import repositories as repo
from feedlens.storage.database import Database


def safety_result(explicit: float, suggestive: float, verdict: str) -> dict[str, Any]:
    """A `feedlens.safety/1` result with these scores and verdict and no regions."""
    scores = {"explicit_nudity": explicit, "suggestive": suggestive}
    return {"schema": "feedlens.safety/1", "verdict": verdict, "scores": scores, "regions": []}


def put_safety(database: Database, image_id: str, explicit: float, suggestive: float, verdict: str) -> None:
    """Record that safety result as the image's current one."""
    with database.session() as session:
        repo.add_analyses(
            session,
            image_id,
            {"safety": safety_result(explicit, suggestive, verdict)},
            {"safety": "safety-test"},
        )
