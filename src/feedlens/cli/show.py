"""`feedlens show IMAGE_ID`: everything stored about one image, in words, without the HTTP API.

What the file is and where it came from, the posts that show it, the categories the product decided and
the labels and corrections people gave, its review state, then one line per analyzer's newest result
(stale ones marked: `feedlens reanalyze` brings them up to date). `--json` gives the same, whole.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from feedlens.cli.context import AsJson, Workspace, open_workspace
from feedlens.cli.render import summarise_other
from feedlens.cli.tables import out_console
from feedlens.core.errors import ConfigError
from feedlens.core.results import ImageReport
from feedlens.core.results.categories import CategoriesResult
from feedlens.core.results.labels import LabelsResult
from feedlens.core.results.loading import load_results
from feedlens.core.results.objects import ObjectsResult
from feedlens.core.results.pose import PoseResult

if TYPE_CHECKING:
    from feedlens.core.results.base import AnalyzerResult
    from feedlens.services.factory import Services

CAPTION_CHARS = 100
SHOWN_LABELS = 8
ORDER = ("labels", "objects", "faces", "pose", "text", "brands", "safety", "properties", "embedding")
NOTHING = {"safety": "not assessed", "faces": "no faces", "text": "no text", "properties": "-"}


def gather(services: Services, workspace: int, image_id: str) -> dict[str, Any] | None:
    """The image's stored view plus people's labels, corrections and review state; None if unknown."""
    view = services.library.view(workspace, image_id, services.current_versions)
    if view is None:
        return None
    return {
        **view,
        "labels": services.categories.labels(workspace, image_id) or [],
        "corrections": services.corrections.history(workspace, image_id) or [],
        "review": services.review.status(workspace, image_id),
    }


def show(
    ctx: typer.Context,
    image_id: Annotated[
        str, typer.Argument(help="an image id (search, similar, al next and review print them)")
    ],
    workspace: Workspace = "default",
    as_json: AsJson = False,
) -> None:
    """Everything stored about one image: source, posts, categories, labels, corrections and results."""
    services, workspace_id = open_workspace(ctx, workspace)
    found = gather(services, workspace_id, image_id)
    if found is None:
        raise ConfigError(f"no image {image_id!r} in workspace {workspace}")
    if as_json:
        typer.echo(json.dumps(found, indent=2, default=str))
        return
    console = out_console()
    for line in _lines(found, load_results(found["results"])):
        console.print(line, highlight=False, soft_wrap=True)


def _lines(found: dict[str, Any], results: dict[str, AnalyzerResult]) -> list[str]:
    size = f"{found['width']}x{found['height']} {found['format']}, {found['size_bytes'] / 1024:.0f} KiB"
    lines = [
        f"[bold]{escape(found['id'])}[/]  {escape(str(found['source']))}",
        f"  {size}, stored {found['created_at'][:19]}, sha256 {found['sha256'][:16]}",
    ]
    lines += _posts(found["posts"])
    lines += _decided(results)
    lines += _people(found)
    lines += _analyzers(found, results)
    return lines


def _posts(posts: list[dict[str, Any]]) -> list[str]:
    if not posts:
        return ["posts: none (stored from a file, not a feed)"]
    out = [f"posts: {len(posts)}"]
    for post in posts:
        caption = " ".join((post.get("caption") or "").split())
        cut = caption[:CAPTION_CHARS] + ("…" if len(caption) > CAPTION_CHARS else "")
        by = f" by {post['author']}" if post.get("author") else ""
        out.append(f"  {escape(post['platform'])} {escape(post['post_id'])}{escape(by)}: {escape(cut)}")
    return out


def _decided(results: dict[str, AnalyzerResult]) -> list[str]:
    """The categories the product assigned, with the runners-up's scores."""
    categories = results.get("categories")
    if not isinstance(categories, CategoriesResult):
        return ["categories: not computed (no taxonomy result stored)"]
    scores = sorted(categories.categories, key=lambda c: -c.score)
    top = ", ".join(f"{c.name} {c.score:.2f}" for c in scores[:5])
    return [
        f"categories: [bold]{escape(', '.join(categories.assigned) or 'other')}[/]",
        f"  scores: {escape(top)}",
    ]


def _people(found: dict[str, Any]) -> list[str]:
    """What people said: labels (shows / does not show), corrections, the moderation review."""
    labels = found["labels"]
    shows = [lab["category"] for lab in labels if lab["positive"]]
    not_shown = [lab["category"] for lab in labels if not lab["positive"]]
    out = []
    if labels:
        said = f"shows {', '.join(shows) or '-'}; does not show {', '.join(not_shown) or '-'}"
        out.append(f"labels: {escape(said)}")
    else:
        out.append("labels: none (feedlens label IMAGE_ID CATEGORY adds one)")
    corrections = found["corrections"]
    if corrections:
        last = corrections[0]
        by = f" by {last['created_by']}" if last["created_by"] else ""
        out.append(
            f"corrections: {len(corrections)}, the last {last['created_at'][:19]}{escape(by)} "
            f"({last['kind']}: {escape(json.dumps(last['value'], default=str))})"
        )
    review = found.get("review") or {}
    if review.get("state", "none") != "none":
        item = review.get("item") or {}
        decided = review.get("decisions") or []
        out.append(
            f"review: {review['state']}, verdict {item.get('verdict')}, risk {item.get('risk')}"
            + (f", {len(decided)} decision{'s' if len(decided) != 1 else ''}" if decided else "")
        )
    return out


def _analyzers(found: dict[str, Any], results: dict[str, AnalyzerResult]) -> list[str]:
    out = ["results:"]
    stale = set(found.get("stale") or [])
    versions = found.get("versions") or {}
    names = sorted(found["results"], key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for name in names:
        if name == "categories":
            continue  # shown above
        mark = " [yellow](stale: feedlens reanalyze)[/]" if name in stale else ""
        version = str(versions.get(name, "")).split("+")[0]  # `labels-3`: the models are in --json
        text = _one(name, results.get(name), found["results"][name])
        out.append(f"  {name} ({escape(version)}){mark}: {escape(text)}")
    return out


def _one(name: str, result: AnalyzerResult | None, stored: dict[str, Any]) -> str:
    """One analyzer's result in a line."""
    if isinstance(result, LabelsResult):
        return ", ".join(f"{lab.name} {lab.score:.2f}" for lab in result.labels[:SHOWN_LABELS]) or "none"
    if isinstance(result, ObjectsResult):
        return ", ".join(f"{o.name} {o.score:.2f}" for o in result.objects) or "none"
    if isinstance(result, PoseResult):
        people = f"{result.count} {'person' if result.count == 1 else 'people'}"
        acts = sorted({a for p in result.people for a, s in p.activities.items() if s >= 0.5})
        return people + (f" ({', '.join(acts)})" if acts else "")
    if result is not None and name in NOTHING:
        return summarise_other(ImageReport(path="", results={name: result})) or NOTHING[name]
    if name == "embedding":
        return "search vectors stored (search, similar, duplicates)"
    if result is None:
        return "stored by an older version (feedlens reanalyze to read it here)"
    keys = ", ".join(sorted(stored)[:6])
    return f"stored ({keys})" if keys else "stored"
