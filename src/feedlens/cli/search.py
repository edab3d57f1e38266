"""`feedlens search`, `similar`, `duplicates`, `clusters` and `index rebuild`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from feedlens.cli.context import AsJson, Workspace, open_workspace
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
    table = Table("score", "cosine", "image", "source")
    for row in rows:
        table.add_row(f"{row['score']:.3f}", f"{row['cosine']:.3f}", str(row["image_id"]), str(row["source"]))
    Console().print(table)


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


def duplicates(ctx: typer.Context, workspace: Workspace = "default") -> None:
    """Exact, near-duplicate and similar groups, as JSON."""
    _, search_service, workspace_id = _open(ctx, workspace)
    typer.echo(json.dumps(search_service.duplicates(workspace_id), indent=2))


def clusters(
    ctx: typer.Context,
    workspace: Workspace = "default",
    min_size: Annotated[int, typer.Option(min=2)] = 3,
    as_json: AsJson = False,
) -> None:
    """Visual clusters named from their labels, and the outliers."""
    _, search_service, workspace_id = _open(ctx, workspace)
    found: dict[str, Any] = search_service.clusters(workspace_id, min_size)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    table = Table("cluster", "size", "also", "images")
    for cluster in found["clusters"]:
        table.add_row(
            cluster["name"], str(cluster["size"]), ", ".join(cluster["also"]), " ".join(cluster["images"][:5])
        )
    Console().print(table)
    Console(stderr=True).print(f"{len(found['outliers'])} outliers")


@index_app.command("rebuild")
def rebuild(ctx: typer.Context, workspace: Workspace = "default") -> None:
    """Rebuild the workspace's vector indexes from the stored embeddings."""
    _, search_service, workspace_id = _open(ctx, workspace)
    counts = search_service.rebuild(workspace_id)
    typer.echo(", ".join(f"{kind}: {n}" for kind, n in counts.items()))
