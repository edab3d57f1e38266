"""`feedlens search`, `similar`, `duplicates`, `clusters` and `index rebuild`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from feedlens.cli.context import AsJson, Workspace, open_workspace
from feedlens.cli.tables import Col, out_console, print_table
from feedlens.core.errors import ConfigError

if TYPE_CHECKING:
    from feedlens.services.factory import Services
    from feedlens.services.search import Hit, SearchService

index_app = typer.Typer(help="The vector indexes behind search.", no_args_is_help=True)


def _open(ctx: typer.Context, workspace: str) -> tuple[Services, SearchService, int]:
    services, workspace_id = open_workspace(ctx, workspace)
    return services, services.search, workspace_id


def _print_hits(services: Services, workspace: int, hits: list[Hit], as_json: bool) -> None:
    found = services.library.sources(workspace, [h.image_id for h in hits])
    sources = {h.image_id: found.get(h.image_id, "") for h in hits}
    rows = [
        {
            "image_id": h.image_id,
            "score": round(h.score, 4),
            "cosine": round(h.cosine, 4),
            "source": sources[h.image_id],
        }
        for h in hits
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        Console(stderr=True).print(
            f"no match above the relevance cut-off ({services.settings.search.min_score}); "
            "lower it with --min-score"
        )
        return
    columns = [Col("score"), Col("cosine", drop=1), Col("image"), Col("source", flex=True, cut_start=True)]
    rendered = [
        [f"{row['score']:.3f}", f"{row['cosine']:.3f}", str(row["image_id"]), escape(str(row["source"]))]
        for row in rows
    ]
    print_table(columns, rendered)


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help='words, e.g. "dog on a beach"')],
    workspace: Workspace = "default",
    not_: Annotated[list[str] | None, typer.Option("--not", help="a negative term (repeatable)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
    min_score: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    as_json: AsJson = False,
) -> None:
    """Find images by words: content, text in the image, captions and hashtags."""
    services, search_service, workspace_id = _open(ctx, workspace)
    hits = search_service.text(workspace_id, query, not_ or [], limit=limit, min_score=min_score)
    _print_hits(services, workspace_id, hits, as_json)


def similar(
    ctx: typer.Context,
    image: Annotated[str, typer.Argument(help="an image file, or the id of a stored image")],
    workspace: Workspace = "default",
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
    min_score: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    as_json: AsJson = False,
) -> None:
    """Find images that look like a file or a stored image."""
    services, search_service, workspace_id = _open(ctx, workspace)
    path = Path(image)
    if path.exists():
        vector = services.visual_vector(path)  # the backbone alone, as stored images were embedded
        hits = search_service.similar(workspace_id, vector=vector, limit=limit, min_score=min_score)
    else:
        hits = search_service.similar(workspace_id, image_id=image, limit=limit, min_score=min_score)
        if hits is None:
            raise ConfigError(f"{image!r} is neither a file nor an image id of workspace {workspace!r}")
    _print_hits(services, workspace_id, hits or [], as_json)


def _names(services: Services, workspace: int, ids: list[str]) -> dict[str, str]:
    """image id -> the file name (or URL, upload name) it came from."""
    sources = services.library.sources(workspace, ids)
    return {i: Path(sources[i]).name or sources[i] if i in sources else "?" for i in ids}


DUPLICATE_KINDS = (
    ("near", "near duplicates (the same photo re-encoded, resized, cropped or mirrored)"),
    ("similar", "similar (the same scene or subject in another shot)"),
)


def duplicates(ctx: typer.Context, workspace: Workspace = "default", as_json: AsJson = False) -> None:
    """Exact duplicates (one file in several posts), near duplicates and similar images, as groups."""
    services, search_service, workspace_id = _open(ctx, workspace)
    found = search_service.duplicates(workspace_id)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    ids = [e["image_id"] for e in found["exact"]]
    ids += [i for kind, _ in DUPLICATE_KINDS for g in found[kind] for i in g["images"]]
    names = _names(services, workspace_id, ids)
    console = out_console()
    console.print(
        f"[bold]exact duplicates[/] (one file, stored once, in several posts): {len(found['exact'])}"
    )
    for entry in found["exact"]:
        posts = ", ".join(f"{p['post_id']} by {p['author'] or '?'}" for p in entry["posts"])
        line = f"{names[entry['image_id']]}  {entry['image_id']}  in {len(entry['posts'])} posts: {posts}"
        console.print(f"  {escape(line)}", highlight=False)
    for kind, title in DUPLICATE_KINDS:
        groups = found[kind]
        console.print(f"[bold]{title}[/]: {len(groups)} group{'' if len(groups) == 1 else 's'}")
        for n, group in enumerate(groups, start=1):
            cosines = [p["cosine"] for p in group["pairs"]]
            alike = f"similarity {min(cosines):.2f}" + (
                f"-{max(cosines):.2f}" if len(set(cosines)) > 1 else ""
            )
            console.print(f"  group {n}: {len(group['images'])} images, {alike}", highlight=False)
            width = max(len(names[i]) for i in group["images"])
            for image_id in group["images"]:
                console.print(f"    {escape(names[image_id].ljust(width))}  {image_id}", highlight=False)


def clusters(
    ctx: typer.Context,
    workspace: Workspace = "default",
    min_size: Annotated[int, typer.Option(min=2, help="the fewest alike images that make a cluster")] = 3,
    as_json: AsJson = False,
) -> None:
    """Visual clusters named from their labels, and the outliers."""
    services, search_service, workspace_id = _open(ctx, workspace)
    found: dict[str, Any] = search_service.clusters(workspace_id, min_size)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    total = sum(c["size"] for c in found["clusters"]) + len(found["outliers"])
    if not found["clusters"]:
        hint = "try --min-size 2, or add" if min_size > 2 else "add"
        if total < 2 * min_size:  # HDBSCAN needs several groups' worth of images to tell groups apart
            err.print(
                f"too few images to cluster: {total} in workspace {workspace}; a cluster is {min_size} or "
                f"more images that look alike ({hint} more photos)"
            )
        else:
            err.print(
                f"no clusters: none of the {total} images in workspace {workspace} look alike enough to "
                f"group (a cluster is {min_size} or more; {hint} more photos of the same subjects)"
            )
        return
    shown = [i for c in found["clusters"] for i in c["images"][:5]]
    names = _names(services, workspace_id, shown)
    columns = [
        Col("cluster"),
        Col("size"),
        Col("also", flex=True, drop=1),
        Col("images", flex=True, min_width=20),
    ]
    rows = [
        [
            escape(c["name"]),
            str(c["size"]),
            escape(", ".join(c["also"])),
            escape(", ".join(names[i] for i in c["images"][:5]) + (" ..." if c["size"] > 5 else "")),
        ]
        for c in found["clusters"]
    ]
    print_table(columns, rows)
    err.print(f"{len(found['clusters'])} clusters; {len(found['outliers'])} images fit none (outliers)")


@index_app.command("rebuild")
def rebuild(ctx: typer.Context, workspace: Workspace = "default") -> None:
    """Rebuild the workspace's vector indexes from the stored embeddings."""
    _, search_service, workspace_id = _open(ctx, workspace)
    counts = search_service.rebuild(workspace_id)
    typer.echo(", ".join(f"{kind}: {n}" for kind, n in counts.items()))
