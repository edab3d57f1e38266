"""Followers' engagements and the recommendations made from them, over a workspace's stored vectors and
categories (services/insights/recommend.py has the method)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedlens.core.errors import CodedError, FeedlensError
from feedlens.services.insights.recommend import KIND_WEIGHTS, Catalog, Params, evaluate, recommend
from feedlens.storage import embeddings as vectors
from feedlens.storage import insights as rows_repo
from feedlens.storage import insights_audience as audience_repo
from feedlens.storage.insights_tables import Engagement
from feedlens.storage.tables import utcnow

if TYPE_CHECKING:
    from feedlens.services.insights.service import InsightsService

KINDS = tuple(KIND_WEIGHTS)
MAX_FOLLOWER = 256


class NoHistoryError(FeedlensError):
    code = "no_history"
    http_status = 404


@dataclass(frozen=True, slots=True)
class EngagementIn:
    """One engagement as offered: a follower, an image id or a post (platform, post id), a kind."""

    follower: str
    kind: str = "like"
    image_id: str | None = None
    platform: str = ""
    post_id: str | None = None
    at: datetime | None = None

    def checked(self) -> EngagementIn:
        follower = self.follower.strip().removeprefix("@").strip()
        if not follower or len(follower) > MAX_FOLLOWER:
            raise CodedError("invalid_engagement", f"a follower is 1-{MAX_FOLLOWER} characters")
        if self.kind not in KIND_WEIGHTS:
            raise CodedError("invalid_engagement", f"kind must be one of {', '.join(KINDS)}")
        if (self.image_id is None) == (self.post_id is None):
            raise CodedError("invalid_engagement", "name an image_id or a post_id, not both")
        at = self.at
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return EngagementIn(follower, self.kind, self.image_id, self.platform.lower(), self.post_id, at)


def read_engagements(path: Path) -> Iterator[EngagementIn | str]:
    """Engagements from JSONL or CSV (`follower` or `user`, `image_id` or `post_id` + `platform`,
    `kind`, `at`); a bad line yields its message."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if path.suffix.lower() == ".csv":
            lines: Iterator[tuple[int, Any]] = ((n + 2, r) for n, r in enumerate(csv.DictReader(handle)))
        else:
            lines = ((n, t) for n, t in enumerate(handle, start=1) if t.strip())
        for number, raw in lines:
            try:
                record = raw if isinstance(raw, dict) else json.loads(raw)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
                when = record.get("at") or record.get("created_at")
                yield EngagementIn(
                    follower=str(record.get("follower") or record.get("user") or ""),
                    kind=str(record.get("kind") or "like").strip().lower(),
                    image_id=record.get("image_id") or None,
                    platform=str(record.get("platform") or ""),
                    post_id=str(record["post_id"]) if record.get("post_id") else None,
                    at=datetime.fromisoformat(str(when)) if when else None,
                ).checked()
            except (ValueError, CodedError) as exc:
                yield f"line {number}: {getattr(exc, 'message', exc)}"


class Recommendations:
    def __init__(self, insights: InsightsService) -> None:
        self.insights = insights
        self.database = insights.database
        s = insights.settings.insights
        self.params = Params(s.recommend_visual_weight, s.recommend_diversity, s.recommend_duplicate_cosine)

    def add(self, workspace: int, records: Sequence[EngagementIn]) -> dict[str, int]:
        """Store engagements (again: no change); images or posts the workspace lacks are counted."""
        checked = [r.checked() for r in records]
        with self.database.session() as session:
            posts = rows_repo.find_posts(
                session, workspace, [(r.platform, r.post_id) for r in checked if r.post_id is not None]
            )
            post_images = rows_repo.images_of_posts(session, sorted(set(posts.values())))
            named = [r.image_id for r in checked if r.image_id is not None]
            known = audience_repo.workspace_image_ids(session, workspace, named)
            rows: dict[tuple[str, str, str], dict[str, Any]] = {}
            unknown = 0
            for r in checked:
                if r.image_id is not None:
                    images = [r.image_id] if r.image_id in known else []
                else:
                    pk = posts.get((r.platform, str(r.post_id)))
                    images = post_images.get(pk, []) if pk is not None else []
                unknown += not images
                for image_id in images:
                    rows[(r.follower, image_id, r.kind)] = {
                        "workspace_id": workspace,
                        "follower": r.follower,
                        "image_id": image_id,
                        "kind": r.kind,
                        "created_at": r.at or utcnow(),
                    }
            keys = ["workspace_id", "follower", "image_id", "kind"]
            rows_repo.upsert(session, Engagement, list(rows.values()), keys)
        return {"engagements": len(rows), "unknown": unknown}

    def import_file(self, workspace: int, path: Path) -> dict[str, Any]:
        records: list[EngagementIn] = []
        errors: list[str] = []
        for item in read_engagements(path):
            if isinstance(item, str):
                errors.append(item)
            else:
                records.append(item)
        return self.add(workspace, records) | {"errors": errors[:50], "error_count": len(errors)}

    def catalog(self, workspace: int) -> Catalog:
        with self.database.session() as session:
            hidden = (
                audience_repo.hidden_images(session, workspace) if self.insights.hide_unreviewed else set()
            )
            found = vectors.of_workspace(session, workspace, "visual", exclude=hidden)
            categories = audience_repo.category_scores(session, workspace)
        return Catalog.build(found, categories)

    def histories(self, workspace: int, source: str = "engagements") -> dict[str, dict[str, float]]:
        """follower -> image id -> weight: from stored engagements (the strongest kind per image), or,
        with `source` "authors", each author's own posted images (weight 1)."""
        out: dict[str, dict[str, float]] = {}
        with self.database.session() as session:
            if source == "authors":
                for author, image_id in audience_repo.author_images(session, workspace):
                    out.setdefault(author.lower(), {})[image_id] = 1.0
            else:
                for follower, image_id, kind, _ in audience_repo.engagements(session, workspace):
                    seen = out.setdefault(follower.lower(), {})
                    seen[image_id] = max(seen.get(image_id, 0.0), KIND_WEIGHTS[kind])
        return out

    def recommend(
        self, workspace: int, follower: str | None = None, author: str | None = None, k: int = 10
    ) -> dict[str, Any]:
        """Images for a follower (their engagements) or for an author's audience (their posted images)."""
        if (follower is None) == (author is None):
            raise CodedError("invalid_request", "name a follower or an author")
        name = (follower or author or "").lower().lstrip("@")
        history = self.histories(workspace, "engagements" if follower else "authors").get(name)
        if not history:
            who = f"follower {follower!r}" if follower else f"author {author!r}"
            raise NoHistoryError(f"no engaged or posted images of {who} in this workspace")
        catalog = self.catalog(workspace)
        index = catalog.index()
        seeds = {index[i]: w for i, w in history.items() if i in index}
        picks = recommend(catalog, seeds, k, self.params) if seeds else []
        return {
            "for": {"follower": follower} if follower else {"author": author},
            "engaged": len(history),
            "candidates": len(catalog.ids) - len(seeds),
            "items": [p.to_dict() for p in picks],
        }

    def evaluate(
        self, workspace: int, source: str = "engagements", seed: int = 0, k: int = 10, holdout: float = 0.2
    ) -> dict[str, Any]:
        """The held-out evaluation (recommend.evaluate) on the workspace's own histories."""
        catalog = self.catalog(workspace)
        index = catalog.index()
        histories = {
            f: {index[i]: w for i, w in seen.items() if i in index}
            for f, seen in self.histories(workspace, source).items()
        }
        return evaluate(catalog, histories, k, holdout, seed, self.params) | {"source": source}
