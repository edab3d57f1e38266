"""`feedlens unlabel` and `feedlens relabel`: remove or replace a wrong label on one image (recorded in the
image's corrections; `feedlens show IMAGE_ID` lists what is left)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from feedlens.cli.context import AsJson, Workspace, open_workspace
from feedlens.core.errors import ConfigError

ImageId = Annotated[str, typer.Argument(help="an image id (search, similar, al next and review print them)")]


def _said(labels: list[dict[str, object]]) -> str:
    shows = [str(lab["category"]) for lab in labels if lab["positive"]]
    not_shown = [str(lab["category"]) for lab in labels if not lab["positive"]]
    return f"shows {', '.join(shows) or '-'}; does not show {', '.join(not_shown) or '-'}"


def unlabel(
    ctx: typer.Context,
    image_id: ImageId,
    categories: Annotated[list[str], typer.Argument(help="the categories whose label goes")],
    workspace: Workspace = "default",
    as_json: AsJson = False,
) -> None:
    """Remove an image's labels for these categories (whether it shows them or not)."""
    from feedlens.services.training.labels import LabelEdits

    services, workspace_id = open_workspace(ctx, workspace)
    done = LabelEdits(services.database).remove(workspace_id, image_id, categories, by="cli")
    if done is None:
        raise ConfigError(f"no image {image_id!r} in workspace {workspace}")
    if as_json:
        typer.echo(json.dumps(done, indent=2))
        return
    Console().print(
        f"removed {escape(', '.join(done['removed']))}; labels now: {escape(_said(done['labels']))}",
        highlight=False,
        soft_wrap=True,
    )


def relabel(
    ctx: typer.Context,
    image_id: ImageId,
    old: Annotated[str, typer.Argument(help="the wrong category")],
    new: Annotated[str, typer.Argument(help="the category it shows instead")],
    workspace: Workspace = "default",
    as_json: AsJson = False,
) -> None:
    """Replace a label: the image shows NEW, not OLD (the label for OLD is removed, not negated)."""
    from feedlens.services.training.labels import LabelEdits

    services, workspace_id = open_workspace(ctx, workspace)
    edits = LabelEdits(services.database)
    done = edits.replace(services.categories, workspace_id, image_id, old, new, by="cli")
    if done is None:
        raise ConfigError(f"no image {image_id!r} in workspace {workspace}")
    if as_json:
        typer.echo(json.dumps(done, indent=2))
        return
    Console().print(
        f"replaced {escape(old)} with {escape(new)}; labels now: {escape(_said(done['labels']))}",
        highlight=False,
        soft_wrap=True,
    )
