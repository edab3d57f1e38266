"""`feedlens ingest`, `reanalyze`, `workspaces` and `keys`: the library from the command line."""

from __future__ import annotations

import threading
from collections.abc import Generator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from feedlens.cli.context import Workspace, open_workspace, services_from
from feedlens.cli.progress import EXIT_INTERRUPTED, Reporter, batched, command_line, run_interruptible
from feedlens.cli.tables import Col, print_table
from feedlens.cli.tally import IngestTally
from feedlens.core.access import Scope
from feedlens.core.errors import ConfigError

if TYPE_CHECKING:
    from feedlens.services.factory import Services
    from feedlens.services.ingest import IngestItem, ItemOutcome

# `--ray ADDRESS` of ingest and reanalyze: analysis on a Ray cluster (docs/scale.md)
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray",
        metavar="ADDRESS",
        help="analyse on this Ray cluster (host:port, auto); needs PostgreSQL; env FEEDLENS_RAY_ADDRESS",
    ),
]

workspaces_app = typer.Typer(help="Create and list workspaces (one per team).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: one workspace and one scope each.", no_args_is_help=True)
MAX_FAILURES_SHOWN = 20


def _migrated(ctx: typer.Context) -> Services:
    services = services_from(ctx)
    services.database.migrate()
    return services


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="image files, folders, feed exports (.jsonl/.csv)")],
    workspace: Workspace = "default",
    ray: RayAddress = None,
) -> None:
    """Store and analyse images and posts in a workspace. Idempotent and resumable: a rerun skips what
    is stored (same bytes, same post id) and finishes what a killed or interrupted run left."""
    address = ray or services_from(ctx).settings.ray_address
    cluster = ("--ray", address) if address else ()
    again = command_line("ingest", *(str(p) for p in paths), "--workspace", workspace, *cluster)
    ingest_paths(ctx, paths, workspace, again, ray=address)


def ingest_paths(
    ctx: typer.Context, paths: list[Path], workspace: str, again: str, ray: str | None = None
) -> IngestTally:
    """Ingest with progress; `again` is the command that finishes an interrupted run. A first Ctrl-C
    stops at the next batch boundary (exit 130, what is stored is said), a second at once. `ray`: the
    address of a Ray cluster that analyses (services/cluster/ray_ingest.py); storing stays here."""
    from feedlens.services.sources import items_from_paths

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"no such file or folder: {', '.join(missing)}")
    if ray:  # refused before anything is stored: a cluster needs PostgreSQL
        from feedlens.services.cluster.ray_ingest import check_cluster_store

        check_cluster_store(services_from(ctx).settings)
    services, workspace_id = open_workspace(ctx, workspace, create=True)
    items = list(items_from_paths(paths))
    ingestor = services.default_ingestor
    tally = IngestTally()

    def work(stop: threading.Event) -> None:
        reporter.loading()
        if not ray:
            ingestor.pipeline.load()  # models load before the bar starts counting
        reporter.start(len(items))
        with closing(_committed_batches(services, workspace_id, items, ray)) as committed:
            for outcomes in committed:  # one transaction per batch
                for outcome in outcomes:
                    tally.count(outcome)
                reporter.advance(len(outcomes))
                if stop.is_set():
                    return

    def on_quit() -> str:
        return (
            f"quit: the batch in flight is not stored; stored so far in {workspace}: {tally.summary()}\n"
            f"to finish, run again (stored images are skipped): {again}"
        )

    with Reporter(f"ingest into {workspace}") as reporter:
        run = run_interruptible(
            work, reporter, on_quit, batch_note=f"the batch in flight (up to {ingestor.batch_size} images)"
        )
    err = reporter.console
    for failure in tally.failures[:MAX_FAILURES_SHOWN]:
        error = failure.error or {}
        detail = escape(f"{failure.item.source}: [{error.get('code')}] {error.get('message', '')}")
        err.print(f"[red]failed[/] {detail}", soft_wrap=True, highlight=False)
    if len(tally.failures) > MAX_FAILURES_SHOWN:
        err.print(f"... and {len(tally.failures) - MAX_FAILURES_SHOWN} more failures", highlight=False)
    err.print(f"workspace [bold]{escape(workspace)}[/]: {escape(tally.summary())}", soft_wrap=True)
    if run.stopped and tally.items < len(items):
        err.print(
            f"stopped by Ctrl-C after {tally.items} of {len(items)} images; what is counted above is "
            "stored.\n"
            f"to finish, run again (stored images are skipped): {escape(again)}",
            soft_wrap=True,
            highlight=False,
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    return tally


def _committed_batches(
    services: Services, workspace_id: int, items: list[IngestItem], ray: str | None
) -> Generator[list[ItemOutcome]]:
    """Each batch's outcomes once it is stored: analysed here, or on the Ray cluster at `ray`."""
    ingestor = services.default_ingestor
    if ray:
        from feedlens.services.cluster.ray_ingest import ClusterIngestor

        yield from ClusterIngestor(ingestor, services.settings, ray).ingest(workspace_id, items)
        return
    for batch in batched(items, ingestor.batch_size):
        yield ingestor.process_batch(workspace_id, batch)


def reanalyze(
    ctx: typer.Context,
    analyzer: Annotated[str, typer.Option("--analyzer", "-a", help="the analyzer whose results to refresh")],
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", help="default: all")] = None,
    ray: RayAddress = None,
) -> None:
    """Recompute results stored by an older version of an analyzer (older results are kept)."""
    reanalyze_stale(ctx, analyzer, workspace, ray=ray or services_from(ctx).settings.ray_address)


def reanalyze_stale(
    ctx: typer.Context, analyzer: str, workspace: str | None, quiet: bool = False, ray: str | None = None
) -> int:
    """Recompute `analyzer`'s stale results with progress; how many were recomputed. `quiet`: say
    nothing when nothing was stale (the demo's start-up). `ray`: a Ray cluster's address to analyse on
    (rounds of `cluster.chunk_images` stored originals; storing stays here)."""
    from feedlens.services.reanalyze import ReanalyzeProgress
    from feedlens.services.reanalyze import reanalyze as reanalyze_images

    if ray:  # refused before anything is read: a cluster needs PostgreSQL
        from feedlens.services.cluster.ray_ingest import check_cluster_store

        check_cluster_store(services_from(ctx).settings)
    services = _migrated(ctx)
    library = services.library
    workspace_id = services.access.workspace_id(workspace) if workspace else None
    # decode as ingest does: results (and vectors) depend on the decoded size
    # with the analyzers that draw on it (text -> embedding): their results change with it
    pipeline = services.pipeline([analyzer, *services.followers(analyzer)], decode_like_ingest=True)
    last = ReanalyzeProgress(total=0)
    where = ("--workspace", workspace) if workspace else ()
    again = command_line("reanalyze", "--analyzer", analyzer, *where, *(("--ray", ray) if ray else ()))
    batch = services.settings.batch_size
    cluster = None
    if ray:
        from feedlens.services.cluster.ray_ingest import ClusterPipeline

        pipeline = cluster = ClusterPipeline(pipeline, services.settings, ray)
        batch = services.settings.cluster.chunk_images  # a round per actor pool: models load once a round

    def work(stop: threading.Event) -> None:
        nonlocal last
        reporter.loading()
        pipeline.load()
        reporter.loading("first batch under way")  # the total comes with the first committed batch
        steps = reanalyze_images(library, pipeline, analyzer, workspace_id, batch)
        try:
            for step in steps:  # each step is a committed batch
                if reporter.total is None:
                    reporter.start(step.total)
                reporter.advance(step.done + step.failed - last.done - last.failed)
                last = step
                if stop.is_set():
                    return
        finally:
            if cluster is not None:
                cluster.close()

    def on_quit() -> str:
        return f"quit: {last.done} recomputed so far; to finish, run again: {again}"

    with Reporter(f"reanalyze {analyzer}") as reporter:
        run = run_interruptible(work, reporter, on_quit)
    err = reporter.console
    if not (quiet and last.total == 0):
        err.print(f"{analyzer} {pipeline.versions()[analyzer]}: {last.done} recomputed, {last.failed} failed")
    if run.stopped and last.done + last.failed < last.total:
        err.print(f"stopped by Ctrl-C; to finish, run again (done ones are skipped): {escape(again)}")
        raise typer.Exit(EXIT_INTERRUPTED)
    return last.done


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
    columns = [
        Col("id"),
        Col("prefix"),
        Col("scope"),
        Col("name", flex=True),
        Col("created", drop=2),
        Col("revoked", drop=1),
    ]
    rows = [
        [
            str(key["id"]),
            key["prefix"] + "...",
            key["scope"],
            escape(key["name"]),
            key["created_at"],
            key["revoked_at"] or "",
        ]
        for key in _migrated(ctx).access.keys(workspace)
    ]
    print_table(columns, rows)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context, key_id: Annotated[int, typer.Argument()], workspace: Workspace = "default"
) -> None:
    if not _migrated(ctx).access.revoke_key(workspace, key_id):
        raise ConfigError(f"no active key {key_id} in workspace {workspace!r}")
    typer.echo(f"revoked key {key_id}")
