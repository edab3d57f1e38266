"""Trends of one workspace: images per category, label, brand and face sentiment over time (UTC days or
ISO weeks), engagement by category and brand, top hashtags and the share of unsafe content. Every answer
is a `Table` (named columns, rows), which the API returns as JSON or CSV."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from feedlens.core.vocabulary import Vocabulary
from feedlens.storage import analytics as rows_repo
from feedlens.storage.database import Database

SAFETY_VERDICTS = ("safe", "suggestive", "explicit")
SENTIMENTS = ("positive", "neutral", "negative")
# facets written by the analyzers (storage/facets.py): (analyzer, kind)
FACETS = {
    "category": ("categories", "category"),
    "headline": ("labels", "headline"),  # each image's leading label
    "label": ("labels", "label"),  # every label, parents included
    "class": ("labels", "class"),  # the classifier's raw ImageNet classes (a detail)
    "brand": ("brands", "brand"),
    "sentiment": ("faces", "sentiment"),
    "safety": ("safety", "safety"),
}


class Bucket(StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, named by their Monday

    def start(self, when: datetime) -> date:
        day = when.date()
        return day - timedelta(days=day.weekday()) if self is Bucket.WEEK else day


class GroupBy(StrEnum):
    CATEGORY = "category"
    BRAND = "brand"


@dataclass(frozen=True)
class Window:
    """[since, until) in aware UTC (None: open), and the bucket size of time series."""

    since: datetime | None = None
    until: datetime | None = None
    bucket: Bucket = Bucket.DAY

    def __contains__(self, when: datetime) -> bool:
        return (self.since is None or when >= self.since) and (self.until is None or when < self.until)


@dataclass
class Table:
    columns: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, name: str, window: Window) -> dict[str, Any]:
        return {
            "metric": name,
            "bucket": window.bucket.value,
            "since": window.since.isoformat() if window.since else None,
            "until": window.until.isoformat() if window.until else None,
            "columns": list(self.columns),
            "rows": self.rows,
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(_cell(row[c]) for c in self.columns)
        return out.getvalue()


def _cell(value: Any) -> Any:
    """Hashtags and brand names are user text: a spreadsheet must not run `=cmd|...` as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def _series(rows: Iterable[tuple[str, str, datetime]], window: Window, column: str, top: int) -> Table:
    """Distinct images per (period, value) for the `top` values with the most images in the window."""
    seen: set[tuple[date, str, str]] = set()
    totals: Counter[str] = Counter()
    per_value: set[tuple[str, str]] = set()
    for image_id, value, when in rows:
        if when not in window:
            continue
        seen.add((window.bucket.start(when), value, image_id))
        if (value, image_id) not in per_value:
            per_value.add((value, image_id))
            totals[value] += 1
    keep = {v for v, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:top]}
    counts: Counter[tuple[date, str]] = Counter((period, v) for period, v, _ in seen if v in keep)
    table = Table(("period", column, "images"))
    table.rows = [
        {"period": period.isoformat(), column: value, "images": n}
        for (period, value), n in sorted(counts.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))
    ]
    return table


class AnalyticsService:
    def __init__(
        self, database: Database, hide_unreviewed: bool = False, vocabulary: Vocabulary | None = None
    ) -> None:
        self.database = database
        self.hide_unreviewed = hide_unreviewed  # FEEDLENS_REVIEW__HIDE_UNREVIEWED: flagged images stay out
        self.vocabulary = vocabulary  # label ids -> display names

    def _facets(
        self, workspace: int, facet: str, window: Window, min_score: float | None = None
    ) -> list[rows_repo.FacetRow]:
        analyzer, kind = FACETS[facet]
        with self.database.session() as session:
            rows = rows_repo.facet_rows(
                session,
                workspace,
                analyzer,
                kind,
                min_score,
                window.since,
                window.until,
                self.hide_unreviewed,
            )
            return list(rows)

    def categories(self, workspace: int, window: Window, top: int = 10) -> Table:
        return _series(self._facets(workspace, "category", window), window, "category", top)

    def labels(
        self, workspace: int, window: Window, kind: str = "headline", min_score: float = 0.1, top: int = 10
    ) -> Table:
        """Images per label and period: `headline` counts each image's leading label, `label` every label
        it has (so Animal counts every cat and dog), `class` the classifier's raw ImageNet classes."""
        rows = self._facets(workspace, kind, window, min_score)
        if kind != "class" and self.vocabulary is not None:
            vocabulary = self.vocabulary
            rows = [(i, vocabulary.label(v).name if v in vocabulary else v, w) for i, v, w in rows]
        return _series(rows, window, "label", top)

    def brands(self, workspace: int, window: Window, top: int = 10) -> Table:
        with self.database.session() as session:
            names = rows_repo.brand_names(session, workspace)
        rows = ((i, names.get(v, v), w) for i, v, w in self._facets(workspace, "brand", window))
        return _series(rows, window, "brand", top)

    def sentiment(self, workspace: int, window: Window) -> Table:
        """Images with faces per dominant sentiment (positive / neutral / negative) and period."""
        return _series(self._facets(workspace, "sentiment", window), window, "sentiment", len(SENTIMENTS))

    def safety(self, workspace: int, window: Window) -> Table:
        """Per period: images with a safety verdict, how many of each verdict, and the unsafe share
        ((suggestive + explicit) / images)."""
        counts: dict[date, Counter[str]] = defaultdict(Counter)
        for _, verdict, when in self._facets(workspace, "safety", window):
            if when in window:
                counts[window.bucket.start(when)][verdict] += 1
        table = Table(("period", "images", *SAFETY_VERDICTS, "unsafe_share"))
        for period in sorted(counts):
            c = counts[period]
            total = sum(c.values())
            unsafe = c["suggestive"] + c["explicit"]
            table.rows.append(
                {
                    "period": period.isoformat(),
                    "images": total,
                    **{v: c[v] for v in SAFETY_VERDICTS},
                    "unsafe_share": round(unsafe / total, 4) if total else 0.0,
                }
            )
        return table

    def engagement(self, workspace: int, window: Window, by: GroupBy, top: int = 20) -> Table:
        """Posts, and sums and means of likes, comments and shares, per category or brand, over the
        window. A mean is over the posts that report that count (missing counts are not zeros)."""
        analyzer, kind = FACETS[by.value]
        with self.database.session() as session:
            rows = list(
                rows_repo.engagement_rows(
                    session, workspace, analyzer, kind, window.since, window.until, self.hide_unreviewed
                )
            )
            names = rows_repo.brand_names(session, workspace) if by is GroupBy.BRAND else {}
        metrics = ("likes", "comments", "shares")
        posts: dict[str, set[int]] = defaultdict(set)
        sums: dict[str, Counter[str]] = defaultdict(Counter)
        reported: dict[str, Counter[str]] = defaultdict(Counter)
        for post, value, likes, comments, shares, when in rows:
            if when not in window:
                continue
            group = names.get(value, value)
            posts[group].add(post)
            for metric, n in zip(metrics, (likes, comments, shares), strict=True):
                if n is not None:
                    sums[group][metric] += n
                    reported[group][metric] += 1
        table = Table(
            (by.value, "posts", *metrics, *(f"{m}_mean" for m in metrics)),
        )
        order = sorted(posts, key=lambda g: (-len(posts[g]), -sums[g]["likes"], g))[:top]
        for group in order:
            row: dict[str, Any] = {by.value: group, "posts": len(posts[group])}
            row |= {m: sums[group][m] for m in metrics}
            row |= {
                f"{m}_mean": round(sums[group][m] / reported[group][m], 2) if reported[group][m] else None
                for m in metrics
            }
            table.rows.append(row)
        return table

    def hashtags(self, workspace: int, window: Window, limit: int = 20) -> Table:
        """The most used hashtags: posts and images carrying each, most posts first."""
        with self.database.session() as session:
            rows = list(rows_repo.hashtag_rows(session, workspace, self.hide_unreviewed))
        posts: dict[str, set[int]] = defaultdict(set)
        images: dict[str, set[str]] = defaultdict(set)
        dated: dict[int, datetime] = {}
        for post, _, _, when in rows:  # a post without a time is dated by its earliest image
            dated[post] = min(dated.get(post, when), when)
        for post, tag, image_id, _ in rows:
            if dated[post] in window:
                posts[tag].add(post)
                images[tag].add(image_id)
        table = Table(("hashtag", "posts", "images"))
        for tag in sorted(posts, key=lambda t: (-len(posts[t]), -len(images[t]), t))[:limit]:
            table.rows.append({"hashtag": tag, "posts": len(posts[tag]), "images": len(images[tag])})
        return table
