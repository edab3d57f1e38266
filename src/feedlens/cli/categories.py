"""`feedlens taxonomy ...`, `label`, `categories ...`, `recategorize`, and the categories `analyze` shows."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from feedlens.cli.context import Workspace, open_workspace, services_from
from feedlens.cli.progress import EXIT_INTERRUPTED, Reporter, batched, command_line, run_interruptible
from feedlens.core.errors import ConfigError
from feedlens.core.taxonomy import Taxonomy, parse_taxonomy

if TYPE_CHECKING:
    from feedlens.services.categories import CategoryService
    from feedlens.services.categories.imports import LabelImport
    from feedlens.services.categories.in_memory import ReportCategoriser
    from feedlens.services.factory import Services
    from feedlens.services.ingest import IngestItem, Ingestor, ItemOutcome

taxonomy_app = typer.Typer(
    help="The workspace's categories: show, set (versioned), start from the default.", no_args_is_help=True
)
categories_app = typer.Typer(
    help="Train (through the model registry), list models, images per category and day.",
    no_args_is_help=True,
)

MAX_ERRORS_SHOWN = 20


class TaxonomyFormat(StrEnum):
    YAML = "yaml"
    JSON = "json"


class CountsFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


def _open(ctx: typer.Context, workspace: str, create: bool = False) -> tuple[Services, CategoryService, int]:
    """The category service and the workspace's id; `create` makes the workspace as `ingest` does."""
    services, workspace_id = open_workspace(ctx, workspace, create)
    return services, services.categories, workspace_id


def _compact(taxonomy: Taxonomy) -> dict[str, Any]:
    """The definition without empty fields, as one would write it by hand."""
    data = taxonomy.to_dict()
    data["categories"] = [
        {k: v for k, v in c.items() if k == "name" or v not in (None, "", [])} for c in data["categories"]
    ]
    if not data["description"]:
        del data["description"]
    return data


def _read_taxonomy(path: Path) -> Taxonomy:
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    media_type = "application/json" if path.suffix.lower() == ".json" else None
    return parse_taxonomy(path.read_bytes(), media_type)


# -- taxonomy ------------------------------------------------------------------------------------------
@taxonomy_app.command("show")
def taxonomy_show(
    ctx: typer.Context,
    workspace: Workspace = "default",
    output_format: Annotated[TaxonomyFormat, typer.Option("--format", "-f")] = TaxonomyFormat.YAML,
) -> None:
    """Print the current taxonomy (stdout, ready to edit and `set` again) and its version (stderr)."""
    _, service, workspace_id = _open(ctx, workspace)
    taxonomy, version = service.taxonomy(workspace_id)
    data = _compact(taxonomy)
    if output_format is TaxonomyFormat.JSON:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110), nl=False)
    about = f"taxonomy {taxonomy.name} version {version} of workspace {workspace}"
    Console(stderr=True).print(escape(about), highlight=False)


@taxonomy_app.command("set")
def taxonomy_set(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="YAML or JSON, e.g. from `feedlens taxonomy default`")],
    workspace: Workspace = "default",
) -> None:
    """Store a new taxonomy version and recategorise the workspace's images with it. A bad file changes
    nothing: every problem in it is printed."""
    taxonomy = _read_taxonomy(file)  # before touching the database: a bad file fails fast
    _, service, workspace_id = _open(ctx, workspace, create=True)
    version, recategorized = service.set_taxonomy(workspace_id, taxonomy)
    typer.echo(f"taxonomy {taxonomy.name} version {version}: {len(taxonomy.categories)} categories")
    Console(stderr=True).print(f"{recategorized} images recategorised", highlight=False)


@taxonomy_app.command("versions")
def taxonomy_versions(ctx: typer.Context, workspace: Workspace = "default") -> None:
    """Every taxonomy version of the workspace, newest (current) first."""
    _, service, workspace_id = _open(ctx, workspace)
    table = Table("version", "name", "categories", "created")
    for i, row in enumerate(service.history(workspace_id)):
        table.add_row(
            f"{row['version']}{' (current)' if i == 0 else ''}",
            escape(str(row["name"])),
            escape(", ".join(row["categories"])),
            row["created_at"],
        )
    Console().print(table)


@taxonomy_app.command("default")
def taxonomy_default() -> None:
    """Print the shipped default taxonomy (commented YAML): copy it, edit it, `feedlens taxonomy set`."""
    from feedlens.services.categories.taxonomies import default_taxonomy_text

    typer.echo(default_taxonomy_text(), nl=False)


@taxonomy_app.command("concepts")
def taxonomy_concepts(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="part of a name or WordNet id, e.g. dog")] = "",
) -> None:
    """WordNet classes and concepts a category's `concepts:` may name (id, name, kind). A name that
    several senses share is ambiguous: use its id."""
    table = services_from(ctx).categories.compiler.table
    senses: dict[str, int] = {}
    for name in table.names:
        senses[name.casefold()] = senses.get(name.casefold(), 0) + 1
    needle = query.strip().casefold()
    shown = 0
    for wnid, name, is_class in zip(table.wnids, table.names, table.is_class, strict=True):
        if needle and needle not in name.casefold() and needle not in wnid:
            continue
        kind = "class" if is_class else "concept"
        note = "\t(ambiguous name: use the id)" if senses[name.casefold()] > 1 else ""
        typer.echo(f"{wnid}\t{name}\t{kind}{note}")
        shown += 1
    if not shown:
        Console(stderr=True).print(f"no concept matches {query!r}", highlight=False)


# -- labels --------------------------------------------------------------------------------------------
def _print_import(result: LabelImport, err: Console) -> None:
    for error in result.errors[:MAX_ERRORS_SHOWN]:
        detail = escape(f"{error['where']}: [{error['code']}] {error['message']}")
        err.print(f"[red]error[/] {detail}", soft_wrap=True, highlight=False)
    if len(result.errors) > MAX_ERRORS_SHOWN:
        err.print(f"... and {len(result.errors) - MAX_ERRORS_SHOWN} more errors", highlight=False)
    for category, n in sorted(result.labelled.items()):
        typer.echo(f"{category}\t{n}")
    err.print(
        f"{sum(result.labelled.values())} labels recorded"
        + (f" (and {result.negatives} 'not' labels)" if result.negatives else "")
        + f", {result.added} images added, {len(result.errors)} errors",
        highlight=False,
    )


def label(
    ctx: typer.Context,
    image_id: Annotated[str | None, typer.Argument(help="a stored image's id")] = None,
    categories: Annotated[list[str] | None, typer.Argument(help="categories the image shows")] = None,
    not_: Annotated[
        list[str] | None, typer.Option("--not", help="a category the image does not show (repeatable)")
    ] = None,
    folder: Annotated[
        Path | None,
        typer.Option("--folder", help="ingest DIR/<category>/<images> and label each by its folder"),
    ] = None,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="rows image,category[,positive]; image: id, sha256 or path")
    ] = None,
    workspace: Workspace = "default",
) -> None:
    """Label images with the categories they show (and don't), for `feedlens categories train`: one
    image (IMAGE_ID CATEGORY... [--not CATEGORY]), an ImageFolder-style directory, or a CSV file."""
    modes = sum(x is not None for x in (image_id, folder, csv_file))
    if modes != 1:
        raise ConfigError("label needs exactly one of: IMAGE_ID CATEGORY..., --folder DIR, --csv FILE")
    err = Console(stderr=True)
    from feedlens.services.categories.imports import import_csv

    if folder is not None:
        _label_folder(ctx, folder, workspace, err)
        return
    _, service, workspace_id = _open(ctx, workspace)
    if csv_file is not None:
        _print_import(import_csv(service, workspace_id, csv_file, "cli"), err)
        return
    assert image_id is not None
    if not categories and not not_:
        raise ConfigError("name at least one category (or --not CATEGORY)")
    labels = service.label(workspace_id, image_id, categories or [], not_ or [], "cli", "cli")
    if labels is None:
        raise ConfigError(f"no image {image_id!r} in workspace {workspace!r}")
    for row in labels:
        typer.echo(f"{row['category']}\t{'yes' if row['positive'] else 'no'}\t{row['source']}")


def _label_folder(ctx: typer.Context, folder: Path, workspace: str, err: Console) -> None:
    """`label --folder`: ingest and label with progress; a first Ctrl-C stops at a batch boundary."""
    from feedlens.services.categories.imports import import_folder
    from feedlens.services.pipeline import iter_image_files

    services, service, workspace_id = _open(ctx, workspace, create=True)
    inner = services.default_ingestor
    subfolders = (
        [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")] if folder.is_dir() else []
    )
    total = sum(1 for _ in iter_image_files(subfolders))  # what import_folder ingests
    again = command_line("label", "--folder", str(folder), "--workspace", workspace)

    def work(stop: threading.Event) -> LabelImport:
        reporter.loading()
        inner.pipeline.load()
        reporter.start(total)
        reporting = _reporting_ingestor(inner, reporter.advance, stop)
        return import_folder(service, reporting, workspace_id, folder, "cli")

    def on_quit() -> str:
        return f"quit: the batch in flight is not stored; to finish, run again: {again}"

    with Reporter(f"label {folder}", console=err) as reporter:
        run = run_interruptible(work, reporter, on_quit)
    _print_import(run.value, err)
    if run.stopped and reporter.done < total:
        err.print(f"stopped by Ctrl-C; to finish, run again (stored images are skipped): {escape(again)}")
        raise typer.Exit(EXIT_INTERRUPTED)


def _reporting_ingestor(inner: Ingestor, advance: Callable[[int], None], stop: threading.Event) -> Ingestor:
    """`inner`'s twin whose `ingest` reports each committed batch and stops between batches once `stop`
    is set (import_folder labels what each batch stored before the next one starts)."""
    from feedlens.services.ingest import Ingestor as Base

    class Reporting(Base):
        def ingest(self, workspace: int, items: Iterable[IngestItem]) -> Iterator[ItemOutcome]:
            for batch in batched(list(items), self.batch_size):
                if stop.is_set():
                    return
                outcomes = self.process_batch(workspace, batch)
                advance(len(batch))
                yield from outcomes

    return Reporting(inner.library, inner.pipeline, inner.fetcher, inner.batch_size, inner.after_commit)


# -- models, counts, recategorize ----------------------------------------------------------------------
@categories_app.command("train")
def categories_train(
    ctx: typer.Context,
    workspace: Workspace = "default",
    mode: Annotated[
        str, typer.Option("--mode", help="probe (seconds) or finetune (minutes; 10+ labels per category)")
    ] = "probe",
) -> None:
    """Train on the workspace's labels (the same recipe and registry as `feedlens train`), make the new
    version production and recategorise with it."""
    from feedlens.training.advice import accuracy_text

    _, service, workspace_id = _open(ctx, workspace)
    report = service.train(workspace_id, mode, created_by="cli")
    typer.echo(
        f"model version {report.version} ({report.mode}, now production; taxonomy version "
        f"{report.taxonomy_version}): {report.images} labelled images"
    )
    for category, n in report.positives.items():
        typer.echo(f"  {category}\t{n} labelled")
    if report.skipped:
        typer.echo(f"  zero-shot only (no images labelled with just it): {', '.join(report.skipped)}")
    typer.echo(f"  {accuracy_text(report.metrics)}")
    err = Console(stderr=True)
    for warning in report.warnings:
        err.print(f"[yellow]warning[/] {escape(warning)}", highlight=False)
    err.print(f"{report.recategorized} images recategorised", highlight=False)
    typer.echo(f"  report: feedlens models report {report.version} -w {workspace}")


@categories_app.command("models")
def categories_models(ctx: typer.Context, workspace: Workspace = "default") -> None:
    """The workspace's models, newest first: the registry's (the production one drives the categories),
    then older category models (read-only)."""
    _, service, workspace_id = _open(ctx, workspace)
    table = Table("version", "from", "current", "images", "categories", "created")
    for model in service.models(workspace_id):
        metrics = model["metrics"] or {}
        if model["source"] == "registry":
            images, names = str(metrics.get("n") or ""), ", ".join(model["classes"])
        else:
            positives = metrics.get("positives") or {}
            images, names = (
                str(metrics.get("images", "")),
                ", ".join(f"{c} {n}" for c, n in positives.items()),
            )
        table.add_row(
            str(model["version"]),
            "registry" if model["source"] == "registry" else "older model",
            "yes" if model["current"] else "",
            images,
            escape(names),
            model["created_at"],
        )
    Console().print(table)


def _day(value: datetime | None, end: bool) -> datetime | None:
    """A day as UTC midnight; `--until` includes its day, so its bound is the next midnight."""
    if value is None:
        return None
    start = value.replace(tzinfo=UTC)
    return start + timedelta(days=1) if end else start


@categories_app.command("counts")
def categories_counts(
    ctx: typer.Context,
    workspace: Workspace = "default",
    since: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="first day (UTC)")] = None,
    until: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], help="last day, included")] = None,
    output_format: Annotated[CountsFormat, typer.Option("--format", "-f")] = CountsFormat.TABLE,
) -> None:
    """Images per category and day (the post's day, or the ingest day for images without a post)."""
    _, service, workspace_id = _open(ctx, workspace)
    rows = service.counts(workspace_id, _day(since, end=False), _day(until, end=True))
    if output_format is CountsFormat.JSON:
        data = [{"date": d.isoformat(), "category": c, "images": n} for d, c, n in rows]
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif output_format is CountsFormat.CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["date", "category", "images"])
        writer.writerows((d.isoformat(), c, n) for d, c, n in rows)
        typer.echo(buffer.getvalue(), nl=False)
    else:
        table = Table("date", "category", "images")
        for d, c, n in rows:
            table.add_row(d.isoformat(), escape(c), str(n))
        Console().print(table)


def recategorize(ctx: typer.Context, workspace: Workspace = "default") -> None:
    """Categorise every image of the workspace again with its current taxonomy and model."""
    _, service, workspace_id = _open(ctx, workspace)
    typer.echo(f"{service.recategorize(workspace_id)} images recategorised")


# -- `feedlens analyze` --------------------------------------------------------------------------------
def analyze_categoriser(services: Services, taxonomy_file: Path | None, caption: str) -> ReportCategoriser:
    """What `feedlens analyze` categorises with: the default taxonomy or the file's, zero-shot."""
    from feedlens.services.categories.in_memory import ReportCategoriser

    taxonomy = _read_taxonomy(taxonomy_file) if taxonomy_file is not None else None
    threshold = services.settings.categories.threshold
    return ReportCategoriser(services.categories.compiler, taxonomy, caption, threshold)
