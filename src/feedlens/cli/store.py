"""`feedlens store list | pull | verify | path`: the offline store of pretrained model files (trained
models are `feedlens models`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from feedlens.cli.context import services_from

if TYPE_CHECKING:
    from feedlens.runtime.store import ModelStore

app = typer.Typer(help="The offline model store: list, pull, verify, locate artifacts.", no_args_is_help=True)


def _store(ctx: typer.Context) -> ModelStore:
    return services_from(ctx).store


@app.command("list")
def list_models(ctx: typer.Context) -> None:
    """Every artifact in the manifest with its state in the local store."""
    table = Table()
    for column in ("name", "version", "state", "source", "sha256"):
        table.add_column(column, overflow="fold")
    for status in _store(ctx).statuses():
        style = {"ok": "green", "missing": "yellow", "corrupt": "red"}[status.state.value]
        table.add_row(
            status.spec.name,
            status.spec.version,
            f"[{style}]{status.state.value}[/]",
            status.spec.source.kind,
            (status.sha256 or "")[:16],
        )
    Console().print(table)


@app.command()
def pull(
    ctx: typer.Context,
    names: Annotated[list[str] | None, typer.Argument(help="artifacts to pull (default: all)")] = None,
    force: Annotated[bool, typer.Option("--force", help="re-fetch even if present and valid")] = False,
) -> None:
    """Fetch (offline sources only) and verify artifacts; build conversions. Idempotent."""
    from feedlens.runtime.store import ArtifactState

    store = _store(ctx)
    console = Console(stderr=True)
    targets = names or [s.name for s in store.manifest.artifacts]
    for name in targets:
        before = store.status(name).state
        path = store.pull(name, force=force)
        verb = "verified" if before is ArtifactState.OK and not force else "pulled"
        console.print(f"{verb:>8} {name} -> {path}", highlight=False, soft_wrap=True)


@app.command()
def verify(ctx: typer.Context) -> None:
    """Check every artifact's SHA-256; exit 1 if any is missing or corrupt."""
    from feedlens.runtime.store import ArtifactState

    bad = [s for s in _store(ctx).statuses() if s.state is not ArtifactState.OK]
    for status in bad:
        Console(stderr=True).print(
            f"{status.state.value}: {status.spec.name} (fix: feedlens store pull {status.spec.name})"
        )
    if bad:
        raise typer.Exit(1)
    Console(stderr=True).print("all model artifacts verified")


@app.command()
def path(ctx: typer.Context, name: str) -> None:
    """Print the verified path of an artifact (fails if missing or corrupt)."""
    typer.echo(str(_store(ctx).path(name)))
