"""`feedlens insights ...`: how posts feel, brand monitoring, influencers, authors, places, alert rules,
followers' engagements and recommendations (docs/insights.md). `--json` prints what the API answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from feedlens.cli.context import AsJson, Workspace, open_workspace
from feedlens.cli.tables import Col, print_table
from feedlens.core.errors import ConfigError

if TYPE_CHECKING:
    from feedlens.services.analytics import Table, Window
    from feedlens.services.insights import InsightsService

app = typer.Typer(
    help="Audience insights: sentiment, monitoring, influencers, places, alerts.", no_args_is_help=True
)
alerts_app = typer.Typer(help="Negative-share alert rules and their alerts.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")

Kind = Annotated[str | None, typer.Option("--kind", help="brand, hashtag or category")]
Value = Annotated[str | None, typer.Option("--value", help="one brand, hashtag or category")]
Since = Annotated[str | None, typer.Option("--since", help="YYYY-MM-DD (UTC)")]
Until = Annotated[str | None, typer.Option("--until", help="YYYY-MM-DD, exclusive")]
Bucket = Annotated[str, typer.Option("--bucket", help="day or week")]


def _open(ctx: typer.Context, workspace: str) -> tuple[InsightsService, int]:
    services, workspace_id = open_workspace(ctx, workspace)
    return services.insights, workspace_id


def _day(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option}: not a date (YYYY-MM-DD): {value!r}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _window(since: str | None, until: str | None, bucket: str = "week") -> Window:
    from feedlens.services.analytics import Bucket as Buckets
    from feedlens.services.analytics import Window

    if bucket not in ("day", "week"):
        raise ConfigError("--bucket: day or week")
    start, end = _day(since, "--since"), _day(until, "--until")
    if start is not None and end is not None and start >= end:
        raise ConfigError("--since must be before --until")
    return Window(start, end, Buckets(bucket))


def _kind(kind: str | None) -> str | None:
    if kind is not None and kind not in ("brand", "hashtag", "category"):
        raise ConfigError("--kind: brand, hashtag or category")
    return kind


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:+.2f}" if -1 <= value <= 1 else f"{value:.1f}"
    return str(value)


def _print(table: Table, as_json: bool, name: str) -> None:
    if as_json:
        typer.echo(json.dumps({"columns": list(table.columns), "rows": table.rows}))
        return
    columns = [Col(c, justify="left" if i < 2 else "right") for i, c in enumerate(table.columns)]
    print_table(columns, ([_fmt(r[c]) for c in table.columns] for r in table.rows), markup=False)
    if not table.rows:
        Console(stderr=True).print(f"no {name} in this range", highlight=False)


@app.command("refresh")
def refresh(ctx: typer.Context, workspace: Workspace = "default") -> None:
    """Bring every image's and post's sentiment (and kept locations) up to date now."""
    insights, ws = _open(ctx, workspace)
    done = insights.refresh(ws)
    typer.echo(f"images {done['images']}, posts {done['posts']}, locations read {done['places']}")


@app.command("sentiment")
def sentiment(
    ctx: typer.Context,
    posts: Annotated[bool, typer.Option("--posts", help="posts instead of images")] = False,
    mood: Annotated[str | None, typer.Option(help="positive, neutral, negative or unknown")] = None,
    brand: Annotated[str | None, typer.Option()] = None,
    category: Annotated[str | None, typer.Option()] = None,
    hashtag: Annotated[str | None, typer.Option()] = None,
    author: Annotated[str | None, typer.Option()] = None,
    min_score: Annotated[float | None, typer.Option(min=-1, max=1)] = None,
    max_score: Annotated[float | None, typer.Option(min=-1, max=1)] = None,
    order: Annotated[
        str, typer.Option(help="negative (most negative first), positive or newest")
    ] = "negative",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: AsJson = False,
    workspace: Workspace = "default",
) -> None:
    """Images (or posts) with their sentiment and its parts: caption, text in the image, faces."""
    from feedlens.core.filters import ImageFilter
    from feedlens.services.insights.service import SentimentQuery

    if order not in ("negative", "positive", "newest"):
        raise ConfigError("--order: negative, positive or newest")
    if mood is not None and mood not in ("positive", "neutral", "negative", "unknown"):
        raise ConfigError("--mood: positive, neutral, negative or unknown")
    insights, ws = _open(ctx, workspace)
    query = SentimentQuery(mood, min_score, max_score, order, limit)
    filters = ImageFilter(brand=brand, category=category, hashtag=hashtag, author=author)
    page = insights.posts(ws, query, filters) if posts else insights.images(ws, filters, query)
    if as_json:
        typer.echo(json.dumps(page))
        return
    header = "post" if posts else "image"
    columns = [Col(header), Col("score", justify="right"), Col("label"), Col("caption", justify="right"),
               Col("image text", justify="right", drop=2), Col("faces", justify="right", drop=1),
               Col("caption" if posts else "source", flex=True, drop=3)]  # fmt: skip
    rows = (
        [
            f"{i.get('author') or '-'}/{i['post_id']}" if posts else i["id"],
            _fmt(i["score"]),
            i["label"],
            *(_fmt(i["parts"][p]) for p in ("caption", "image_text", "faces")),
            " ".join(str(i.get("caption") if posts else i.get("source") or "").split()),
        ]
        for i in page["items"]
    )
    print_table(columns, rows, markup=False)
    Console(stderr=True).print(f"{len(page['items'])} of {page['total']}", highlight=False)


@app.command("monitor")
def monitor(
    ctx: typer.Context,
    kind: Kind = "brand",
    value: Value = None,
    bucket: Bucket = "week",
    since: Since = None,
    until: Until = None,
    top: Annotated[int, typer.Option(min=1, max=100)] = 10,
    as_json: AsJson = False,
    workspace: Workspace = "default",
) -> None:
    """Posts, engagement and sentiment per period for each brand, hashtag or category (or one)."""
    insights, ws = _open(ctx, workspace)
    table = insights.audience.monitor(ws, _kind(kind), _window(since, until, bucket), value, top)
    _print(table, as_json, "posts")


@app.command("influencers")
def influencers(
    ctx: typer.Context,
    kind: Kind = None,
    value: Value = None,
    order: Annotated[str, typer.Option(help="engagement, or posts (how often they carry it)")] = "engagement",
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 20,
    as_json: AsJson = False,
    workspace: Workspace = "default",
) -> None:
    """Authors ranked by engagement of their posts about a brand, hashtag or category, or by how often
    their posts carry it, with their sentiment."""
    if (kind is None) != (value is None) or order not in ("engagement", "posts"):
        raise ConfigError("give --kind and --value together; --order engagement or posts")
    insights, ws = _open(ctx, workspace)
    table = insights.audience.influencers(ws, _window(since, until), _kind(kind), value, order, limit)
    _print(table, as_json, "authors")


@app.command("author")
def author(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the author's handle")],
    since: Since = None,
    until: Until = None,
    workspace: Workspace = "default",
) -> None:
    """An author's page as JSON: totals, sentiment, brands, categories, hashtags, timeline, latest posts."""
    insights, ws = _open(ctx, workspace)
    page = insights.audience.author(ws, name, _window(since, until))
    if page is None:
        raise ConfigError(f"no post by {name!r} in workspace {workspace!r}")
    typer.echo(json.dumps(page))


@app.command("places")
def places(
    ctx: typer.Context,
    import_feed: Annotated[
        Path | None, typer.Option("--import", help="keep the locations of this feed export (JSONL/CSV)")
    ] = None,
    forget: Annotated[bool, typer.Option("--forget", help="delete every kept location")] = False,
    precision: Annotated[int | None, typer.Option(min=0, max=3, help="grid decimals")] = None,
    since: Since = None,
    until: Until = None,
    as_json: AsJson = False,
    workspace: Workspace = "default",
) -> None:
    """Places with images, posts, engagement and sentiment (kept only with FEEDLENS_STORE_METADATA=all)."""
    insights, ws = _open(ctx, workspace)
    err = Console(stderr=True, highlight=False)
    if forget:
        err.print(f"deleted {insights.places.forget(ws)} kept locations")
        return
    if import_feed is not None:
        if not import_feed.is_file():
            raise ConfigError(f"no such file: {import_feed}")
        report = insights.places.import_feed(ws, import_feed)
        located = f"{report['posts']} posts ({report['images']} images) located"
        err.print(
            f"{located}; {report['unknown_posts']} not in the workspace; {report['error_count']} bad lines"
        )
        for line in report["errors"]:
            err.print(f"  - {line}")
        return
    table = insights.places.table(ws, _window(since, until), precision)
    if as_json:
        typer.echo(json.dumps(table))
        return
    if not table["kept"]:
        err.print(table["note"])
    numbers = ("lat", "lon", "images", "posts", "engagement", "sentiment", "negative")
    columns = [Col("place", flex=True), *(Col(n, justify="right") for n in numbers)]
    keys = ("place", "lat", "lon", "images", "posts", "engagement", "sentiment", "negative_share")
    print_table(columns, ([_fmt(r[k]) for k in keys] for r in table["places"]), markup=False)


@alerts_app.command("add")
def add_rule(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="what the team calls it")],
    kind: Annotated[str, typer.Option("--kind", help="brand, hashtag or category")],
    value: Annotated[str, typer.Option("--value", help="the brand, hashtag or category to watch")],
    bucket: Bucket = "week",
    threshold: Annotated[float, typer.Option(help="negative share that alerts")] = 0.3,
    min_rise: Annotated[float, typer.Option(help="rise over the period before")] = 0.15,
    min_posts: Annotated[int, typer.Option(help="posts a period needs")] = 5,
    webhook: Annotated[str | None, typer.Option(help="POST new alerts here (needs webhooks on)")] = None,
    workspace: Workspace = "default",
) -> None:
    """Add an alert rule; prints it as JSON."""
    from feedlens.services.insights.alerts import RuleSpec

    insights, ws = _open(ctx, workspace)
    spec = RuleSpec(name, kind, value, bucket, threshold, min_rise, min_posts, webhook)
    typer.echo(json.dumps(insights.alerts.add_rule(ws, spec, "cli")))


@alerts_app.command("rules")
def list_rules(ctx: typer.Context, workspace: Workspace = "default") -> None:
    insights, ws = _open(ctx, workspace)
    typer.echo(json.dumps(insights.alerts.rules(ws)))


@alerts_app.command("remove")
def remove_rule(
    ctx: typer.Context, rule_id: Annotated[int, typer.Argument()], workspace: Workspace = "default"
) -> None:
    insights, ws = _open(ctx, workspace)
    insights.alerts.remove_rule(ws, rule_id)


@alerts_app.command("check")
def check(ctx: typer.Context, workspace: Workspace = "default") -> None:
    """Check every rule now; prints the new alerts (webhooks sent) as JSON."""
    insights, ws = _open(ctx, workspace)
    typer.echo(json.dumps(insights.alerts.check(ws)))


@alerts_app.command("list")
def list_alerts(
    ctx: typer.Context,
    rule: Annotated[int | None, typer.Option(help="one rule's")] = None,
    as_json: AsJson = False,
    workspace: Workspace = "default",
) -> None:
    insights, ws = _open(ctx, workspace)
    found = insights.alerts.list(ws, rule)
    if as_json:
        typer.echo(json.dumps(found))
        return
    columns = [Col("period"), Col("rule", flex=True), Col("watching"), Col("posts", justify="right"),
               Col("negative", justify="right"), Col("before", justify="right"), Col("webhook")]  # fmt: skip
    rows = (_alert_row(a) for a in found)
    print_table(columns, rows, markup=False)


@app.command("engagements")
def engagements(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="JSONL or CSV: follower, image_id or post_id, kind, at")],
    workspace: Workspace = "default",
) -> None:
    """Import followers' engagements (likes, comments, shares, saves, views) for recommendations."""
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    insights, ws = _open(ctx, workspace)
    report = insights.recommendations.import_file(ws, path)
    err = Console(stderr=True, highlight=False)
    err.print(f"{report['engagements']} engagements kept; {report['unknown']} name no stored image or post; "
              f"{report['error_count']} bad lines")  # fmt: skip
    for line in report["errors"]:
        err.print(f"  - {line}")


@app.command("recommend")
def recommend(
    ctx: typer.Context,
    follower: Annotated[str | None, typer.Option(help="from this follower's engagements")] = None,
    author: Annotated[str | None, typer.Option(help="from this author's own posts")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100)] = 10,
    workspace: Workspace = "default",
) -> None:
    """Unseen images most like what a follower engaged with (or an author posts), as JSON."""
    insights, ws = _open(ctx, workspace)
    typer.echo(json.dumps(insights.recommendations.recommend(ws, follower, author, k)))


@app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    source: Annotated[str, typer.Option(help="engagements, or authors (their own posts)")] = "engagements",
    seed: Annotated[int, typer.Option(min=0)] = 0,
    k: Annotated[int, typer.Option("-k", min=1, max=100)] = 10,
    holdout: Annotated[float, typer.Option(min=0.01, max=0.99)] = 0.2,
    workspace: Workspace = "default",
) -> None:
    """Hit rate@k of recommendations vs popularity and random on a seeded held-out split, as JSON."""
    if source not in ("engagements", "authors"):
        raise ConfigError("--source: engagements or authors")
    insights, ws = _open(ctx, workspace)
    typer.echo(json.dumps(insights.recommendations.evaluate(ws, source, seed, k, holdout)))


def _alert_row(alert: dict[str, Any]) -> list[str]:
    before = alert["previous_share"]
    return [
        alert["period"],
        alert["rule"],
        f"{alert['kind']} {alert['value']}",
        str(alert["posts"]),
        f"{alert['negative_share']:.0%}",
        "-" if before is None else f"{before:.0%}",
        alert["webhook"]["status"],
    ]
