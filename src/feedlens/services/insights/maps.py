"""Places of a workspace: kept locations grouped on a grid, with posts, engagement and sentiment per place,
and the import of a feed's locations (docs/insights.md "Places").

An image's place is its post's location from the feed when there is one (what the author tagged), else the
GPS position in its stored copy. Grid cells are named by their rounded coordinates, so a place is never
shown more precisely than FEEDLENS_INSIGHTS__PLACE_PRECISION allows; a name without coordinates is a place
of its own that the map cannot draw (it is listed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedlens.core.errors import FeedlensError
from feedlens.services.analytics import Window
from feedlens.services.insights.audience import Tally
from feedlens.services.insights.places import Place, cell, describe, most_common, read_places
from feedlens.services.insights.sentiment import NEGATIVE, mean
from feedlens.storage import insights as rows_repo
from feedlens.storage.insights_tables import InsightPlace
from feedlens.storage.tables import utcnow

if TYPE_CHECKING:
    from feedlens.services.insights.service import InsightsService

OFF = (
    "locations are not kept: FEEDLENS_STORE_METADATA is {policy}; set it to `all` to keep GPS in stored "
    "copies and feed locations (docs/insights.md)"
)


class PlacesOffError(FeedlensError):
    """Locations were offered while the operator keeps none."""

    code = "places_off"
    http_status = 409


@dataclass(frozen=True, slots=True)
class Located:
    image_id: str
    name: str | None
    lat: float | None
    lon: float | None
    source: str


def located(rows: Sequence[InsightPlace]) -> dict[str, Located]:
    """image id -> its place: the feed's name and coordinates first, the EXIF position otherwise."""
    by_image: dict[str, dict[str, InsightPlace]] = defaultdict(dict)
    for row in rows:
        by_image[row.image_id][row.source] = row
    out = {}
    for image_id, found in by_image.items():
        feed, exif = found.get("feed"), found.get("exif")
        with_coords = feed if feed is not None and feed.lat is not None else exif
        name = feed.name if feed is not None else None
        lat = with_coords.lat if with_coords is not None else None
        lon = with_coords.lon if with_coords is not None else None
        source = "+".join(s for s in ("feed", "exif") if s in found)
        out[image_id] = Located(image_id, name, lat, lon, source)
    return out


class Places:
    def __init__(self, insights: InsightsService) -> None:
        self.insights = insights
        self.database = insights.database

    @property
    def kept(self) -> bool:
        return self.insights.keeps_places

    def status(self) -> dict[str, Any]:
        policy = self.insights.settings.store_metadata.value
        return {"kept": self.kept, "policy": policy, "note": None if self.kept else OFF.format(policy=policy)}

    def _placed(self, workspace: int, window: Window) -> tuple[dict[str, Located], dict[str, Any]]:
        self.insights.refresh(workspace)
        with self.database.session() as session:
            places = located(rows_repo.place_rows(session, workspace))
            dates = rows_repo.image_dates(session, workspace, list(places))
            sentiments = rows_repo.image_sentiments(session, workspace, list(places))
        keep = {i: p for i, p in places.items() if i in dates and dates[i] in window}
        return keep, sentiments

    def table(self, workspace: int, window: Window, precision: int | None = None) -> dict[str, Any]:
        """Places with images, posts, engagement and sentiment in the window, most images first."""
        precision = self.insights.settings.insights.place_precision if precision is None else precision
        places, sentiments = self._placed(workspace, window) if self.kept else ({}, {})
        groups: dict[tuple[float, float] | str, list[Located]] = defaultdict(list)
        for place in places.values():
            if place.lat is not None and place.lon is not None:
                groups[cell(place.lat, place.lon, precision)].append(place)
            else:
                groups[(place.name or "").lower()].append(place)
        rows_by_image = self._post_rows(workspace, window, list(places))
        out = []
        for key, members in groups.items():
            tally = Tally()
            for member in members:
                for row in rows_by_image.get(member.image_id, []):
                    tally.add(row)
            scores = [sentiments[m.image_id] for m in members if m.image_id in sentiments]
            summary = tally.summary()
            lat, lon = key if isinstance(key, tuple) else (None, None)
            name = most_common([m.name or "" for m in members])
            where = describe(lat, lon, precision) if lat is not None and lon is not None else "?"
            out.append(
                {
                    "place": name or where,
                    "lat": lat,
                    "lon": lon,
                    "images": len(members),
                    "posts": summary["posts"],
                    "engagement": summary["engagement"],
                    "sentiment": mean([s.score for s in scores]),
                    "negative_share": round(sum(s.label == NEGATIVE for s in scores) / len(scores), 4)
                    if scores
                    else None,
                    "sources": sorted({m.source for m in members}),
                }
            )
        out.sort(key=lambda r: (-r["images"], -r["posts"], r["place"]))
        return self.status() | {"precision": precision, "places": out}

    def _post_rows(self, workspace: int, window: Window, image_ids: Sequence[str]) -> dict[str, list[Any]]:
        wanted = set(image_ids)
        with self.database.session() as session:
            rows = rows_repo.post_rows(
                session, workspace, None, None, window.since, window.until, self.insights.hide_unreviewed
            )
            out: dict[str, list[Any]] = defaultdict(list)
            for row in rows:
                if row.image_id in wanted:
                    out[row.image_id].append(row)
        return out

    def images(
        self,
        workspace: int,
        window: Window,
        lat: float | None = None,
        lon: float | None = None,
        name: str | None = None,
        precision: int | None = None,
        limit: int = 60,
    ) -> list[dict[str, Any]]:
        """The images of one place (a grid cell, or a name without coordinates) with their sentiment."""
        precision = self.insights.settings.insights.place_precision if precision is None else precision
        if not self.kept:
            return []
        places, sentiments = self._placed(workspace, window)
        found = []
        for place in places.values():
            if lat is not None and lon is not None:
                if place.lat is None or place.lon is None:
                    continue
                if cell(place.lat, place.lon, precision) != cell(lat, lon, precision):
                    continue
            elif name is not None and (place.lat is not None or (place.name or "").lower() != name.lower()):
                continue
            row = sentiments.get(place.image_id)
            found.append(
                {"id": place.image_id, "place": place.name, "source": place.source}
                | {"score": row.score if row else None, "label": row.label if row else None}
            )
        found.sort(key=lambda r: r["id"])
        return found[:limit]

    def add(self, workspace: int, records: Sequence[tuple[str, str, Place]]) -> dict[str, int]:
        """Keep the locations of posts given as (platform, post id, place): every image of each post
        gets it. Posts the workspace does not have are counted, not an error."""
        if not self.kept:
            raise PlacesOffError(OFF.format(policy=self.insights.settings.store_metadata.value))
        with self.database.session() as session:
            found = rows_repo.find_posts(session, workspace, [(p, i) for p, i, _ in records])
            images = rows_repo.images_of_posts(session, sorted(set(found.values())))
            rows: dict[str, dict[str, Any]] = {}
            now = utcnow()
            for platform, post_id, place in records:
                pk = found.get((platform, post_id))
                for image_id in images.get(pk, []) if pk is not None else []:
                    rows[image_id] = {"image_id": image_id, "source": "feed", "workspace_id": workspace} | {
                        "lat": place.lat,
                        "lon": place.lon,
                        "name": place.name,
                        "updated_at": now,
                    }
            rows_repo.upsert(session, InsightPlace, list(rows.values()), ["image_id", "source"])
        matched = sum(1 for p, i, _ in records if (p, i) in found)
        return {"posts": matched, "unknown_posts": len(records) - matched, "images": len(rows)}

    def import_feed(self, workspace: int, path: Path) -> dict[str, Any]:
        """The locations of a feed export (JSONL or CSV); bad lines are reported, not fatal."""
        records, errors = [], []
        for line in read_places(path):
            if line.error is not None or line.place is None:
                errors.append(line.error or f"line {line.line}: no location")
            else:
                records.append((line.platform, line.post_id, line.place))
        return self.add(workspace, records) | {"errors": errors[:50], "error_count": len(errors)}

    def forget(self, workspace: int) -> int:
        """Delete the workspace's kept locations (e.g. after leaving FEEDLENS_STORE_METADATA=all)."""
        with self.database.session() as session:
            return rows_repo.forget_places(session, workspace)
