"""Audience insights of a workspace (issue 26, docs/insights.md): the one entry point the API, the CLI and
the after-ingest hook use. Sentiment rows are kept here; monitoring, influencers, places, alerts and
recommendations read them (services/insights/*.py).

Rows are derived, never typed in: each image's and post's sentiment is (re)computed when it is missing,
made by another method version, or older than the image's text or faces analysis, and the after-ingest
hook recomputes a batch's images and posts at once (a re-exported caption changes its post).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import update

from feedlens.config import MetadataPolicy, Settings
from feedlens.core.filters import ImageFilter
from feedlens.core.results import FacesResult
from feedlens.core.results.text import TextResult
from feedlens.services.insights.sentiment import (
    SentimentModel,
    faces_score,
    image_text_score,
    mean,
    text_score,
)
from feedlens.storage import insights as rows_repo
from feedlens.storage import repositories as repo
from feedlens.storage.blobs import BlobStore
from feedlens.storage.database import Database
from feedlens.storage.insights import SentimentQuery
from feedlens.storage.insights_tables import InsightImage, InsightPlace, InsightPost
from feedlens.storage.tables import Post, utcnow

log = logging.getLogger(__name__)
BATCH = 500
__all__ = ["InsightsService", "SentimentQuery"]


def utc_text(value: Any) -> str | None:
    from feedlens.storage.analytics import as_utc

    return as_utc(value).isoformat() if value is not None else None


def sentiment_view(row: InsightImage | InsightPost) -> dict[str, Any]:
    return {
        "score": row.score,
        "label": row.label,
        "parts": {"caption": row.caption, "image_text": row.image_text, "faces": row.faces},
    }


class InsightsService:
    """Sentiment of images and posts, kept current; `audience`, `places`, `alerts` and
    `recommendations` (built by the factory) answer the rest."""

    def __init__(self, database: Database, blobs: BlobStore, settings: Settings) -> None:
        self.database = database
        self.blobs = blobs
        self.settings = settings
        self.model = SentimentModel(settings.insights)
        self.hide_unreviewed = settings.review.hide_unreviewed
        from feedlens.services.insights.alerts import Alerts
        from feedlens.services.insights.audience import Audience
        from feedlens.services.insights.followers import Recommendations
        from feedlens.services.insights.maps import Places

        self.audience = Audience(self)
        self.places = Places(self)
        self.alerts = Alerts(self.audience, settings.insights)
        self.recommendations = Recommendations(self)

    # -- keeping rows current ----------------------------------------------------------------------------
    def refresh(self, workspace: int) -> dict[str, int]:
        """Bring every stale image and post row of the workspace up to date (a query when none is), and
        read new stored copies for a location when locations are kept. Counts of what was written."""
        done = {"images": 0, "posts": 0, "places": 0}
        seen: set[str] = set()
        while True:
            with self.database.session() as session:
                ids = [
                    i
                    for i in rows_repo.stale_images(session, workspace, self.model.version, BATCH)
                    if i not in seen
                ]
            if not ids:
                break
            seen.update(ids)
            done["images"] += self._images(workspace, ids)
        done["posts"] = self._stale_posts(workspace)
        done["places"] = self.scan_places(workspace)
        return done

    def after_ingest(self, workspace: int, image_ids: list[str]) -> None:
        """Ingest hook: the batch's images (new, or newly linked to a post) and their posts now, then the
        workspace's alert rules (new jumps are recorded and their webhooks sent)."""
        if not image_ids:
            return
        self._images(workspace, image_ids)
        with self.database.session() as session:
            posts = rows_repo.posts_of_images(session, image_ids)
        self._posts(workspace, posts)
        self.scan_places(workspace)
        self.alerts.check(workspace)

    def close(self) -> None:
        self.alerts.close()

    def _images(self, workspace: int, image_ids: Sequence[str]) -> int:
        now = utcnow()
        with self.database.session() as session:
            analyses = repo.current_analyses(session, list(image_ids))
            posts = repo.posts_of(session, list(image_ids))
            rows = []
            for image_id in image_ids:
                found = analyses.get(image_id, {})
                text = found["text"].loaded if "text" in found else None
                faces = found["faces"].loaded if "faces" in found else None
                caption = mean([text_score(p.caption, p.hashtags or []) for p in posts.get(image_id, [])])
                sentiment = self.model.combine(
                    caption,
                    image_text_score(text if isinstance(text, TextResult) else None),
                    faces_score(faces if isinstance(faces, FacesResult) else None),
                )
                rows.append(
                    {"image_id": image_id, "workspace_id": workspace, "version": self.model.version}
                    | {"score": sentiment.score, "label": sentiment.label, "updated_at": now}
                    | sentiment.parts()
                )
            rows_repo.upsert(session, InsightImage, rows, ["image_id"])
        return len(rows)

    def _posts(self, workspace: int, post_pks: Sequence[int]) -> int:
        if not post_pks:
            return 0
        now = utcnow()
        with self.database.session() as session:
            posts = rows_repo.post_details(session, post_pks)
            parts = rows_repo.image_parts(session, post_pks)
            rows = []
            for pk, post in posts.items():
                images = parts.get(pk, [])
                sentiment = self.model.combine(
                    text_score(post.caption, post.hashtags or []),
                    mean([i.image_text for i in images]),
                    mean([i.faces for i in images]),
                )
                rows.append(
                    {"post_pk": pk, "workspace_id": workspace, "version": self.model.version}
                    | {"score": sentiment.score, "label": sentiment.label, "updated_at": now}
                    | sentiment.parts()
                )
            rows_repo.upsert(session, InsightPost, rows, ["post_pk"])
        return len(rows)

    def _stale_posts(self, workspace: int) -> int:
        done, seen = 0, set[int]()
        while True:
            with self.database.session() as session:
                stale = rows_repo.stale_posts(session, workspace, self.model.version, BATCH)
            todo = [p for p in stale if p not in seen]
            if not todo:
                return done
            seen.update(todo)
            done += self._posts(workspace, todo)

    # -- places ------------------------------------------------------------------------------------------
    @property
    def keeps_places(self) -> bool:
        """Locations are kept only under FEEDLENS_STORE_METADATA=all (the operator's GPS opt-in)."""
        return self.settings.store_metadata is MetadataPolicy.ALL

    def scan_places(self, workspace: int) -> int:
        """Read the GPS position of stored copies not read yet; how many had one. Nothing under `none`
        and `no_gps`: their stored copies carry no GPS."""
        if not self.keeps_places:
            return 0
        from feedlens.services.insights.places import exif_place

        found = 0
        while True:
            with self.database.session() as session:
                todo = rows_repo.unscanned_images(session, workspace, BATCH)
            if not todo:
                return found
            rows, now = [], utcnow()
            for image_id, blob in todo:
                path = self.blobs.path("originals", blob)
                place = exif_place(path) if path.is_file() else None
                if place is not None:
                    rows.append(
                        {"image_id": image_id, "source": "exif", "workspace_id": workspace}
                        | {"lat": place.lat, "lon": place.lon, "name": None, "updated_at": now}
                    )
            with self.database.session() as session:
                rows_repo.upsert(session, InsightPlace, rows, ["image_id", "source"])
                scanned = [i for i, _ in todo]
                session.execute(
                    update(InsightImage).where(InsightImage.image_id.in_(scanned)).values(places_scanned=True)
                )
            found += len(rows)

    # -- listings ----------------------------------------------------------------------------------------
    def images(self, workspace: int, filters: ImageFilter, query: SentimentQuery) -> dict[str, Any]:
        """A page of images with their sentiment (and parts), filtered like GET /v1/images."""
        self.refresh(workspace)
        if self.hide_unreviewed:
            from dataclasses import replace

            filters = replace(filters, hide_unreviewed=True)
        with self.database.session() as session:
            page, total = rows_repo.list_images(
                session, workspace, repo.filter_conditions(workspace, filters), query
            )
            items = [
                {"id": image.id, "source": image.source, "created_at": utc_text(image.created_at)}
                | sentiment_view(row)
                for image, row in page
            ]
        return {"total": total, "offset": query.offset, "items": items}

    def posts(
        self,
        workspace: int,
        query: SentimentQuery,
        filters: ImageFilter,
    ) -> dict[str, Any]:
        """A page of posts with their sentiment: author, platform and posted window on the post, the
        image filters (brand, category, label ...) on any of its images."""
        self.refresh(workspace)
        image_filters = ImageFilter(
            label=filters.label,
            label_terms=filters.label_terms,
            label_min_score=filters.label_min_score,
            category=filters.category,
            brand=filters.brand,
            safety=filters.safety,
            hashtag=filters.hashtag,
            hide_unreviewed=self.hide_unreviewed,
        )
        where = repo.filter_conditions(workspace, image_filters)
        with self.database.session() as session:
            page, total = rows_repo.list_posts(
                session,
                workspace,
                query,
                where,
                filters.author,
                filters.platform,
                filters.posted_since,
                filters.posted_until,
            )
            images = rows_repo.images_of_posts(session, [p.id for p, _ in page])
            items = [post_item(post, row, images.get(post.id, [])) for post, row in page]
        return {"total": total, "offset": query.offset, "items": items}

    def image(self, workspace: int, image_id: str) -> dict[str, Any] | None:
        """One image's sentiment, or None when the workspace has no such image."""
        self.refresh(workspace)
        with self.database.session() as session:
            found = rows_repo.image_sentiments(session, workspace, [image_id]).get(image_id)
            return {"id": image_id} | sentiment_view(found) if found else None


def post_item(post: Post, row: InsightPost, images: list[str]) -> dict[str, Any]:
    return {
        "platform": post.platform,
        "post_id": post.post_id,
        "author": post.author,
        "caption": post.caption,
        "created_at": utc_text(post.created_at),
        "likes": post.likes,
        "comments": post.comments,
        "shares": post.shares,
        "url": post.url,
        "images": images,
    } | sentiment_view(row)
