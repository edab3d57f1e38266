"""`feedlens` CLI entry point: wires services once per invocation, maps errors to exit codes."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from feedlens.analyzers.registry import ANALYZER_NAMES, check_names
from feedlens.cli import brands as brands_cli
from feedlens.cli import categories as categories_cli
from feedlens.cli import faces as faces_cli
from feedlens.cli import feedback as feedback_cli
from feedlens.cli import insights as insights_cli
from feedlens.cli import labels as labels_cli
from feedlens.cli import learning as learning_cli
from feedlens.cli import library as library_cli
from feedlens.cli import search as search_cli
from feedlens.cli import serve as serve_cli
from feedlens.cli import show as show_cli
from feedlens.cli import store as store_cli
from feedlens.cli import training as training_cli
from feedlens.cli.context import services_from
from feedlens.cli.progress import EXIT_INTERRUPTED, Reporter, run_interruptible, until_stopped
from feedlens.cli.render import OutputFormat, ReportWriter
from feedlens.cli.tables import out_console
from feedlens.core.errors import ConfigError, FeedlensError, ImageError
from feedlens.core.files import write_atomic
from feedlens.core.redaction import Method, Target
from feedlens.core.results import ImageReport

if TYPE_CHECKING:
    from feedlens.services.categories.in_memory import ReportCategoriser
    from feedlens.services.factory import Services

EXIT_USAGE = 2
EXIT_BAD_INPUT = 1

app = typer.Typer(
    name="feedlens",
    help="Recognise and categorise social-media images on your own machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(store_cli.app, name="store")
app.add_typer(training_cli.app, name="models")
app.add_typer(learning_cli.app, name="al")
app.command()(training_cli.train)
app.command()(training_cli.evaluate)
app.add_typer(library_cli.workspaces_app, name="workspaces")
app.add_typer(library_cli.keys_app, name="keys")
app.command()(library_cli.ingest)
app.command()(library_cli.reanalyze)
app.command()(serve_cli.serve)
app.add_typer(search_cli.index_app, name="index")
app.command()(search_cli.search)
app.command()(search_cli.similar)
app.command()(search_cli.duplicates)
app.command()(search_cli.clusters)
app.add_typer(categories_cli.taxonomy_app, name="taxonomy")
app.add_typer(brands_cli.app, name="brands")
app.add_typer(categories_cli.categories_app, name="categories")
app.command()(categories_cli.label)
app.command()(categories_cli.recategorize)
app.command()(feedback_cli.correct)
app.command()(show_cli.show)  # everything stored about one image
app.command()(labels_cli.unlabel)
app.command()(labels_cli.relabel)
app.add_typer(feedback_cli.review_app, name="review")
app.add_typer(insights_cli.app, name="insights")  # audience insights (docs/insights.md)
app.add_typer(faces_cli.app, name="faces")  # face identity, opt-in per workspace (docs/faces.md)


@app.callback()
def _start(ctx: typer.Context) -> None:
    """Validate configuration and wire the object graph once, before any command runs (unless the caller
    passed its own: tests run many commands over one set of loaded models)."""
    if ctx.obj is None:
        from feedlens.config import load_settings
        from feedlens.services.factory import build_services

        ctx.obj = build_services(load_settings())
        ctx.call_on_close(ctx.obj.close)  # index files saved, connections closed


def _parse_analyzers(value: str) -> list[str]:
    # unknown names fail here, before any work
    return check_names([n.strip() for n in value.split(",") if n.strip()])


@app.command()
def analyze(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="image files and folders (searched recursively)")],
    analyzers: Annotated[
        str | None,
        typer.Option(
            "--analyzers",
            "-a",
            help=f"comma-separated; default every one switched on (FEEDLENS_ANALYZERS); known: "
            f"{', '.join(ANALYZER_NAMES)}",
        ),
    ] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.TABLE,
    taxonomy: Annotated[
        Path | None,
        typer.Option("--taxonomy", help="categorise with this YAML/JSON taxonomy instead of the default"),
    ] = None,
    caption: Annotated[
        str,
        typer.Option("--caption", help="a post caption/hashtags that counts as the caption of EVERY image"),
    ] = "",
) -> None:
    """Analyse images and print one result per image. Bad images are reported, not fatal (exit 0).
    With `labels` (a default), each image also gets `categories`: zero-shot, default taxonomy."""
    from feedlens.services.pipeline import iter_image_files

    services = services_from(ctx)
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ConfigError(f"no such file or folder: {', '.join(missing)}")
    names = services.analyzers if analyzers is None else _parse_analyzers(analyzers)
    if "labels" not in names and (taxonomy is not None or caption):
        raise ConfigError("--taxonomy and --caption categorise images, which needs the labels analyzer")
    categories = (
        categories_cli.analyze_categoriser(services, taxonomy, caption) if "labels" in names else None
    )
    pipeline = services.pipeline(names)
    files = list(iter_image_files(paths))
    writer = ReportWriter(output_format, out_console(), Console(stderr=True, highlight=False))
    batch_size = services.settings.batch_size

    def work(stop: threading.Event) -> None:
        reporter.loading()
        pipeline.load()  # models load before the bar starts counting
        reporter.start(len(files))
        batch: list[ImageReport] = []
        # files stop coming once Ctrl-C asks: the pipeline finishes what it already took (it decodes the
        # next batch while analysing this one)
        for report in pipeline.analyze_paths(until_stopped(files, stop), batch_size):
            batch.append(report)
            if len(batch) == batch_size:
                _emit(batch, categories, writer, reporter)
                batch = []
        _emit(batch, categories, writer, reporter)

    def on_quit() -> str:
        return f"quit after {len(writer.reports)} of {len(files)} images"

    with Reporter("analyse", console=writer.err) as reporter:
        run = run_interruptible(
            work, reporter, on_quit, batch_note=f"the images in flight (up to {2 * batch_size})"
        )
    writer.finish(pipeline.stats)
    if run.stopped and len(writer.reports) < len(files):
        writer.err.print(f"stopped by Ctrl-C after {len(writer.reports)} of {len(files)} images")
        raise typer.Exit(EXIT_INTERRUPTED)


def _emit(
    batch: list[ImageReport], categories: ReportCategoriser | None, writer: ReportWriter, reporter: Reporter
) -> None:
    """Categorise a batch of reports (one sentence-encoder call for their texts), then write them."""
    if categories is not None and batch:
        categories.add(batch)
    for report in batch:
        writer.add(report)
    reporter.advance(len(batch))


@app.command()
def redact(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="image to redact")],
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the redacted image")],
    faces: Annotated[bool, typer.Option("--faces", help="obscure faces")] = False,
    nudity: Annotated[bool, typer.Option("--nudity", help="obscure nudity regions")] = False,
    text: Annotated[bool, typer.Option("--text", help="obscure text")] = False,
    method: Annotated[Method, typer.Option("--method")] = Method.BLUR,
) -> None:
    """Blur or pixelate faces, nudity and/or text (all three if none is chosen) and strip all metadata."""
    from feedlens.services.redact import redact as redact_image

    services = services_from(ctx)
    targets = [t for t, on in ((Target.FACES, faces), (Target.NUDITY, nudity), (Target.TEXT, text)) if on]
    suffix = output.suffix.lower().lstrip(".")
    result = redact_image(services, image, targets or list(Target), method, output_format=suffix or None)
    write_atomic(output, result.data)  # a reader never sees half an image
    found = ", ".join(f"{n} {t}" for t, n in result.regions.items())
    Console(stderr=True).print(f"wrote {output} ({result.format}; obscured {found}; metadata stripped)")


@app.command()
def schema(name: Annotated[str, typer.Argument(help="analyzer name")]) -> None:
    """Print the JSON Schema of an analyzer's result."""
    from feedlens.analyzers.registry import analyzer_type

    typer.echo(json.dumps(analyzer_type(name).json_schema(), indent=2))


def _print_error(exc: FeedlensError) -> None:
    """One line; errors that list several problems (a taxonomy file) print each on a line of its own."""
    err = Console(stderr=True)
    problems = exc.problem_lines()
    message = escape(exc.message.partition(":")[0] + ":" if problems else exc.message)
    err.print(f"[bold red]error[/] {escape(f'[{exc.code}]')} {message}", highlight=False, soft_wrap=True)
    for problem in problems:
        err.print(f"  - {escape(problem)}", highlight=False, soft_wrap=True)


def main(args: Sequence[str] | None = None, services: Services | None = None) -> None:
    """Console entry point: feedlens errors become a short message and exit code 2, not a traceback.
    `args` and already wired `services` are for running commands in-process (tests)."""
    try:
        # standalone_mode=False lets feedlens errors reach us typed; click then returns exit codes instead.
        code = app(args=args, standalone_mode=False, obj=services)
    except ImageError as exc:  # a single-image command (redact) got a bad image: nothing was produced
        _print_error(exc)
        sys.exit(EXIT_BAD_INPUT)
    except FeedlensError as exc:
        _print_error(exc)
        sys.exit(EXIT_USAGE)
    except (typer.Abort, KeyboardInterrupt):
        Console(stderr=True).print("interrupted", highlight=False)
        sys.exit(EXIT_INTERRUPTED)
    except typer.TyperException as exc:  # click usage errors (bad option, missing argument)
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
    sys.exit(code if isinstance(code, int) else 0)
