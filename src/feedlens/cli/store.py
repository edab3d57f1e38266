"""`feedlens store list | pull | verify | path`: the offline store of pretrained model files (trained
models are `feedlens models`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from feedlens.cli.context import services_from
from feedlens.cli.tables import Col, print_table

if TYPE_CHECKING:
    from feedlens.runtime.store import ModelStore
    from feedlens.services.factory import Services

app = typer.Typer(help="The offline model store: list, pull, verify, locate artifacts.", no_args_is_help=True)


def _store(ctx: typer.Context) -> ModelStore:
    return services_from(ctx).store


@app.command("list")
def list_models(ctx: typer.Context) -> None:
    """Every artifact in the manifest with its state in the local store."""
    columns = [
        Col("name", flex=True, min_width=24),
        Col("version", drop=2, flex=True, min_width=8),
        Col("state"),
        Col("source", drop=3),
        Col("sha256", drop=4),
    ]
    rows = []
    for status in _store(ctx).statuses():
        style = {"ok": "green", "missing": "yellow", "corrupt": "red"}[status.state.value]
        rows.append(
            [
                escape(status.spec.name),
                escape(status.spec.version),
                f"[{style}]{status.state.value}[/]",
                status.spec.source.kind,
                (status.sha256 or "")[:16],
            ]
        )
    print_table(columns, rows)


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


def _unmeasured(services: Services) -> list[str]:
    """The batched models of the switched-on analyzers with no batch recorded for this machine."""
    from feedlens.runtime.calibration import BatchSizes

    sizes, threads = BatchSizes(services.store.root), services.settings.threads_per_worker
    models = {a.batch_model() for a in services.pipeline(services.analyzers).analyzers} - {None}
    return sorted(
        m
        for m in models
        if m is not None and sizes.get(f"{m}@{services.store.manifest.get(m).version}", threads) is None
    )


@app.command()
def calibrate(
    ctx: typer.Context,
    if_needed: Annotated[
        bool, typer.Option("--if-needed", help="only when a model has no batch measured on this machine")
    ] = False,
) -> None:
    """Measure the fastest forward batch of each model on this machine and record it (analyzers then use
    it; FEEDLENS_BATCH_SIZE, when set, wins). Takes a minute or so."""
    services = services_from(ctx)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if if_needed and not _unmeasured(services):
        err.print("batch sizes: already measured on this machine (measure again: feedlens store calibrate)")
        return
    err.print("measuring batch sizes on random inputs, one model at a time ...")
    measured = services.calibrate_batches()
    if not measured:
        err.print("no model with a free batch size among the switched-on analyzers: nothing to measure")
        return
    columns = [Col("model", flex=True, min_width=20), Col("batch"), Col("ms per image", flex=True)]
    rows = []
    for m in measured:
        tried = ", ".join(f"{b}: {ms:.1f}" for b, ms in sorted(m.ms_per_image.items()))
        rows.append([escape(m.artifact), str(m.batch), f"{m.ms_per_image[m.batch]:.1f}  (by batch {tried})"])
    print_table(columns, rows)
    if "batch_size" in services.settings.model_fields_set:
        err.print(f"note: FEEDLENS_BATCH_SIZE={services.settings.batch_size} is set and wins over these")


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
