"""Brand and campaign monitoring, influencers and author pages (docs/insights.md).

The unit is the post. A post is "about" a brand or category when one of its images shows it (the brands
service finds logos, names in image text and in captions; categories are each image's assigned ones), and
about a hashtag when it carries it. Reach is engagement: likes + comments + shares as the export states
them (exports carry no impressions, so nothing here estimates them); a missing count adds nothing.
Sentiment is the post's (services/insights/service.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from feedlens.core.errors import FeedlensError
from feedlens.services.analytics import Bucket, Table, Window
from feedlens.services.insights.sentiment import LABELS, NEGATIVE, POSITIVE
from feedlens.storage import insights as rows_repo
from feedlens.storage.analytics import brand_names
from feedlens.storage.insights import PostRow

if TYPE_CHECKING:
    from feedlens.services.insights.service import InsightsService

KINDS = ("brand", "hashtag", "category")
ORDERS = ("engagement", "posts")
METRICS = ("likes", "comments", "shares")


class UnknownBrandError(FeedlensError):
    """A brand the workspace has not registered (POST /v1/brands): nothing can ever be found for it."""

    code = "unknown_brand"
    http_status = 404


@dataclass
class Tally:
    """Distinct posts and images of a group, their engagement and their posts' sentiment."""

    posts: dict[int, PostRow] = field(default_factory=dict)
    images: set[str] = field(default_factory=set)

    def add(self, row: PostRow) -> None:
        self.posts.setdefault(row.post, row)
        self.images.add(row.image_id)

    def summary(self) -> dict[str, Any]:
        posts = list(self.posts.values())
        labels = Counter(p.label for p in posts)
        scores = [p.score for p in posts if p.score is not None]
        known = sum(labels[label] for label in LABELS)
        out: dict[str, Any] = {"posts": len(posts), "images": len(self.images)}
        out |= {m: sum(getattr(p, m) or 0 for p in posts) for m in METRICS}
        out["engagement"] = sum(p.engagement for p in posts)
        out["sentiment"] = round(sum(scores) / len(scores), 4) if scores else None
        out |= {label: labels[label] for label in LABELS}
        out["negative_share"] = round(labels[NEGATIVE] / known, 4) if known else None
        return out


SUMMARY = ("posts", "images", *METRICS, "engagement", "sentiment", *LABELS, "negative_share")


def monitor_table(rows: Iterable[PostRow], bucket: Bucket, column: str, top: int) -> Table:
    """Per period and value: posts, images, engagement and sentiment, for the `top` values with the most
    posts in the window (rows come windowed)."""
    tallies: dict[tuple[date, str], Tally] = defaultdict(Tally)
    totals: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        tallies[bucket.start(row.when), row.value].add(row)
        totals[row.value].add(row.post)
    keep = {v for v, _ in sorted(totals.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:top]}
    table = Table(("period", column, *SUMMARY))
    for (period, value), tally in sorted(tallies.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        if value in keep:
            table.rows.append({"period": period.isoformat(), column: value} | tally.summary())
    return table


def influencer_table(
    every: Iterable[PostRow], about: Iterable[PostRow] | None, order: str, limit: int
) -> Table:
    """Authors ranked by the engagement of their posts about the target (all their posts without one),
    or by how many of their posts carry it (`order` "posts"), with their sentiment in those posts."""
    all_posts: dict[str, set[int]] = defaultdict(set)
    for row in every:
        if row.author:
            all_posts[row.author].add(row.post)
    counted: dict[str, Tally] = defaultdict(Tally)
    for row in every if about is None else about:
        if row.author:
            counted[row.author].add(row)
    table = Table(("author", "posts", "posts_about", "share_about", *SUMMARY[2:]))
    for author, tally in counted.items():
        summary = tally.summary()
        total = len(all_posts[author] | set(tally.posts))
        about_posts = summary.pop("posts")
        summary.pop("images")
        table.rows.append(
            {"author": author, "posts": total, "posts_about": about_posts}
            | {"share_about": round(about_posts / total, 4) if total else None}
            | summary
        )

    def rank(row: dict[str, Any]) -> tuple[Any, ...]:
        if order == "posts":
            return (-row["posts_about"], -(row["share_about"] or 0), -row["engagement"], row["author"])
        return (-row["engagement"], -row["posts_about"], row["author"])

    table.rows.sort(key=rank)
    del table.rows[limit:]
    return table


def _groups(rows: Iterable[PostRow], limit: int) -> list[dict[str, Any]]:
    tallies: dict[str, Tally] = defaultdict(Tally)
    for row in rows:
        tallies[row.value].add(row)
    out = [{"name": name} | t.summary() for name, t in tallies.items()]
    out.sort(key=lambda g: (-g["posts"], -g["engagement"], g["name"]))
    return out[:limit]


class Audience:
    """Monitoring over time, influencer rankings and author pages of one workspace."""

    def __init__(self, insights: InsightsService) -> None:
        self.insights = insights
        self.database = insights.database

    def rows(
        self,
        workspace: int,
        kind: str | None,
        window: Window,
        value: str | None = None,
        author: str | None = None,
    ) -> list[PostRow]:
        """The workspace's (post, value, image) rows in the window, brand facets shown by their
        registered spelling."""
        self.insights.refresh(workspace)
        wanted = value
        with self.database.session() as session:
            names = brand_names(session, workspace) if kind == "brand" else {}
            rows = list(
                rows_repo.post_rows(
                    session,
                    workspace,
                    kind,
                    wanted,
                    window.since,
                    window.until,
                    self.insights.hide_unreviewed,
                    author,
                )
            )
        if names:
            rows = [_renamed(r, names.get(r.value, r.value)) for r in rows]
        return rows

    def check_brand(self, workspace: int, kind: str | None, value: str | None) -> None:
        """UnknownBrandError when `kind` is brand and `value` names no registered brand (a typo would
        otherwise read as "nobody talks about it")."""
        if kind != "brand" or value is None:
            return
        with self.database.session() as session:
            names = brand_names(session, workspace)
        if value.strip().lower().lstrip("#") not in names:
            known = ", ".join(sorted(names.values())[:10]) or "none yet"
            raise UnknownBrandError(f"no brand {value!r} in this workspace (registered: {known})")

    def monitor(
        self, workspace: int, kind: str | None, window: Window, value: str | None = None, top: int = 10
    ) -> Table:
        """Sentiment, engagement and volume per period for each brand, hashtag or category (or one), or
        for all posts (`kind` None)."""
        self.check_brand(workspace, kind, value)
        rows = self.rows(workspace, kind, window, value)
        if kind is None:
            rows = [_renamed(r, "all posts") for r in rows]
        return monitor_table(rows, window.bucket, kind or "posts", top)

    def influencers(
        self,
        workspace: int,
        window: Window,
        kind: str | None = None,
        value: str | None = None,
        order: str = "engagement",
        limit: int = 20,
    ) -> Table:
        self.check_brand(workspace, kind, value)
        every = self.rows(workspace, None, window)
        about = self.rows(workspace, kind, window, value) if kind is not None and value else None
        return influencer_table(every, about, order, limit)

    def author(self, workspace: int, name: str, window: Window, recent: int = 24) -> dict[str, Any] | None:
        """An author's page: totals, sentiment, what their posts carry (brands, categories, hashtags),
        a timeline and their most recent posts; None when the workspace has no post by them."""
        every = self.rows(workspace, None, window, author=name)
        if not every:
            return None
        tally = Tally()
        for row in every:
            tally.add(row)
        by_kind = {k: self.rows(workspace, k, window, author=name) for k in KINDS}
        latest = sorted(tally.posts.values(), key=lambda r: (r.when, r.post), reverse=True)[:recent]
        return {
            "author": every[0].author,
            "summary": tally.summary()
            | {"first_post": min(r.when for r in every).isoformat()}
            | {"last_post": max(r.when for r in every).isoformat()},
            "brands": _groups(by_kind["brand"], 20),
            "categories": _groups(by_kind["category"], 20),
            "hashtags": _groups(by_kind["hashtag"], 20),
            "timeline": monitor_table([_renamed(r, name) for r in every], window.bucket, "author", 1).rows,
            "posts": self._recent(workspace, [r.post for r in latest]),
        }

    def _recent(self, workspace: int, post_pks: Sequence[int]) -> list[dict[str, Any]]:
        from feedlens.services.insights.service import post_item

        with self.database.session() as session:
            posts = rows_repo.post_details(session, post_pks)
            sentiments = rows_repo.post_sentiments(session, post_pks)
            images = rows_repo.images_of_posts(session, post_pks)
            return [
                post_item(posts[pk], sentiments[pk], images.get(pk, []))
                for pk in post_pks
                if pk in posts and pk in sentiments and posts[pk].workspace_id == workspace
            ]


def _renamed(row: PostRow, value: str) -> PostRow:
    return PostRow(
        row.post,
        value,
        row.image_id,
        row.when,
        row.author,
        row.likes,
        row.comments,
        row.shares,
        row.score,
        row.label,
    )


__all__ = [
    "KINDS",
    "ORDERS",
    "POSITIVE",
    "Audience",
    "UnknownBrandError",
    "influencer_table",
    "monitor_table",
]
