"""`feedlens ingest`, `reanalyze`, `workspaces` and `keys`: the library from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from feedlens.cli.context import Workspace, open_workspace, services_from
from feedlens.core.access import Scope
from feedlens.core.errors import ConfigError

if TYPE_CHECKING:
    from feedlens.services.factory import Services

workspaces_app = typer.Typer(help="Create and list workspaces (one per team).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: one workspace and one scope each.", no_args_is_help=True)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _migrated(ctx: typer.Context) -> Services:
    services = services_from(ctx)
    services.database.migrate()
    return services


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="image files, folders, feed exports (.jsonl/.csv)")],
    workspace: Workspace = "default",
) -> None:
    """Store and analyse images and posts in a workspace. Idempotent and resumable: a rerun skips what
    is stored (same bytes, same post id) and finishes what a killed run left."""
    from feedlens.services.ingest import IngestSummary
    from feedlens.services.sources import items_from_paths

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"no such file or folder: {', '.join(missing)}")
    services, workspace_id = open_workspace(ctx, workspace, create=True)
    items = list(items_from_paths(paths))
    err = Console(stderr=True)
    summary = IngestSummary()
    ingestor = services.default_ingestor
    ingestor.pipeline.load()  # models load before the progress bar starts
    with _progress(err) as progress:
        task = progress.add_task(f"ingest into {workspace}", total=len(items))
        for outcome in ingestor.ingest(workspace_id, items):
            summary.count(outcome)
            progress.advance(task)
    for failure in summary.errors[:20]:
        error = failure.error or {}
        detail = escape(f"{failure.item.source}: [{error.get('code')}] {error.get('message', '')}")
        err.print(f"[red]failed[/] {detail}", soft_wrap=True, highlight=False)
    if len(summary.errors) > 20:
        err.print(f"... and {len(summary.errors) - 20} more failures")
    err.print(
        f"workspace [bold]{workspace}[/]: {summary.added} added, {summary.duplicate} already stored, "
        f"{summary.failed} failed"
    )


def reanalyze(
    ctx: typer.Context,
    analyzer: Annotated[str, typer.Option("--analyzer", "-a", help="the analyzer whose results to refresh")],
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="default: all")] = None,
) -> None:
    """Recompute results stored by an older version of an analyzer (older results are kept)."""
    from feedlens.services.reanalyze import reanalyze as reanalyze_images

    services = _migrated(ctx)
    library = services.library
    workspace_id = services.access.workspace_id(workspace) if workspace else None
    # decode as ingest does: results (and vectors) depend on the decoded size
    # with the analyzers that draw on it (text -> embedding): their results change with it
    pipeline = services.pipeline([analyzer, *services.followers(analyzer)], decode_like_ingest=True)
    pipeline.load()
    err = Console(stderr=True)
    done = failed = 0
    with _progress(err) as progress:
        task = progress.add_task(f"reanalyze {analyzer}", total=None)
        for step in reanalyze_images(library, pipeline, analyzer, workspace_id, services.settings.batch_size):
            progress.update(task, total=step.total, completed=step.done + step.failed)
            done, failed = step.done, step.failed
    err.print(f"{analyzer} {pipeline.versions()[analyzer]}: {done} recomputed, {failed} failed")


@workspaces_app.command("create")
def workspaces_create(ctx: typer.Context, name: Annotated[str, typer.Argument()]) -> None:
    _migrated(ctx).access.create_workspace(name)
    typer.echo(name)


@workspaces_app.command("list")
def workspaces_list(ctx: typer.Context) -> None:
    for row in _migrated(ctx).access.workspaces():
        typer.echo(f"{row['name']}\t{row['created_at']}")


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    workspace: Workspace = "default",
    scope: Annotated[Scope, typer.Option("--scope", "-s")] = Scope.READ,
    name: Annotated[str, typer.Option("--name", help="a note: who or what uses it")] = "",
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from feedlens.services.access import aws_key_id, signing_secret

    secret, view = _migrated(ctx).access.create_key(workspace, scope, name)
    err = Console(stderr=True)
    err.print(f"key {view['id']} ({scope}) for workspace {workspace}; store it now:")
    typer.echo(secret)
    err.print(
        f"AWS clients (Rekognition API): aws_access_key_id={aws_key_id(view['id'])} "
        f"aws_secret_access_key={signing_secret(secret)}  (again any time: feedlens keys aws KEY)",
        highlight=False,
        soft_wrap=True,
    )


@keys_app.command("aws")
def keys_aws(ctx: typer.Context, key: Annotated[str, typer.Argument(help="a feedlens key (fl_...)")]) -> None:
    """Print the AWS access key id and secret access key that sign Rekognition API calls with this key."""
    from feedlens.services.access import AccessError

    credentials = _migrated(ctx).access.aws_credentials(key.strip())
    if credentials is None:
        raise AccessError("unknown or revoked key")
    typer.echo(f"aws_access_key_id={credentials[0]}")
    typer.echo(f"aws_secret_access_key={credentials[1]}")


@keys_app.command("list")
def keys_list(ctx: typer.Context, workspace: Workspace = "default") -> None:
    table = Table("id", "prefix", "scope", "name", "created", "revoked")
    for key in _migrated(ctx).access.keys(workspace):
        table.add_row(
            str(key["id"]),
            key["prefix"] + "...",
            key["scope"],
            key["name"],
            key["created_at"],
            key["revoked_at"] or "",
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context, key_id: Annotated[int, typer.Argument()], workspace: Workspace = "default"
) -> None:
    if not _migrated(ctx).access.revoke_key(workspace, key_id):
        raise ConfigError(f"no active key {key_id} in workspace {workspace!r}")
    typer.echo(f"revoked key {key_id}")
