"""`feedlens train`, `feedlens evaluate` and `feedlens models list|show|promote|rollback|ab|history|report|
explain`: the trained-model registry from the command line (docs/training.md)."""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from feedlens.cli.context import AsJson, Workspace, open_workspace
from feedlens.cli.render import number
from feedlens.cli.tables import Col, out_console, print_table
from feedlens.core.training import WORKSPACE

if TYPE_CHECKING:
    from feedlens.services.training import TrainingService

app = typer.Typer(
    help="Trained models of a workspace: list, promote, roll back, A/B test, reports, Grad-CAM.",
    no_args_is_help=True,
)
Task = Annotated[str, typer.Option("--task", help="what the model predicts")]
Dataset = Annotated[
    str,
    typer.Option(
        "--dataset",
        "-d",
        help=f"'{WORKSPACE}' (the workspace's labels), an ImageFolder directory, a path,label .csv or a "
        "COCO-style .json",
    ),
]


def _open(ctx: typer.Context, workspace: str) -> tuple[TrainingService, int]:
    services, workspace_id = open_workspace(ctx, workspace)
    return services.training, workspace_id


def _source(dataset: str) -> str | Path:
    return dataset if dataset == WORKSPACE else Path(dataset)


def _recategorise(training: TrainingService, workspace_id: int, task: str) -> None:
    """A new production model: the workspace's categories follow it (services/categories/models.py)."""
    done = training.categories.recategorize(workspace_id) if task == "categories" else 0
    Console(stderr=True).print(f"{done} images recategorised with the production model", highlight=False)


def _print_version(model: dict[str, Any], console: Console) -> None:
    from feedlens.training.advice import accuracy_text, int8_verdict

    m = model["metrics"]
    console.print(
        f"version {model['version']} ({model['mode']}, {model['runtime']}) "
        f"{' '.join(model['aliases']) or ''}".rstrip(),
        highlight=False,
    )
    console.print(f"  {accuracy_text(m)}", highlight=False)
    verdict = int8_verdict(model.get("compression"))
    if verdict is not None and (model.get("compression") or {}).get("kept"):  # a rejection is a warning below
        console.print(f"  {verdict}", highlight=False)
    for warning in model.get("warnings", []):
        console.print(f"  [yellow]warning[/] {escape(warning)}", highlight=False)


def train(
    ctx: typer.Context,
    dataset: Dataset = WORKSPACE,
    mode: Annotated[str, typer.Option("--mode", help="probe (seconds) or finetune (minutes)")] = "probe",
    workspace: Workspace = "default",
    task: Task = "categories",
    epochs: Annotated[int, typer.Option(help="fine-tuning epochs (early stopping may end sooner)")] = 15,
    seed: Annotated[int, typer.Option(help="split and training seed")] = 0,
    balance: Annotated[
        str, typer.Option(help="weights, resample or none: under-represented classes")
    ] = "weights",
    int8: Annotated[bool, typer.Option("--int8/--no-int8", help="try int8 compression")] = True,
    max_int8_loss: Annotated[float, typer.Option(help="accuracy points int8 may lose and be kept")] = 1.0,
    skip_bad_images: Annotated[bool, typer.Option(help="skip corrupt images instead of refusing")] = False,
    promote: Annotated[bool, typer.Option(help="make the new version production")] = False,
    checkpoints: Annotated[
        Path | None, typer.Option(help="fine-tuning: keep a checkpoint here after every epoch")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="fine-tuning: continue from the checkpoint in --checkpoints")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Train a model on a labelled dataset, evaluate it, compress it, and register it as a new version."""
    from feedlens.training.recipe import TrainOptions

    if resume and checkpoints is None:
        raise typer.BadParameter("--resume needs --checkpoints DIR")
    try:
        options = TrainOptions(
            mode=mode,  # type: ignore[arg-type]  # checked by TrainOptions
            seed=seed,
            epochs=epochs,
            balance=balance,  # type: ignore[arg-type]
            int8=int8,
            max_int8_loss_points=max_int8_loss,
            skip_bad_images=skip_bad_images,
            progress=not as_json,
            checkpoint_dir=checkpoints,
            resume=resume,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    training, workspace_id = _open(ctx, workspace)
    model = training.train(workspace_id, _source(dataset), options, task=task, created_by="cli")
    if promote:
        model = training.registry.promote(workspace_id, task, model["version"], by="cli")
        _recategorise(training, workspace_id, task)
    if as_json:
        typer.echo(json.dumps(model, indent=2, default=str))
        return
    console = Console()
    _print_version(model, console)
    console.print(f"  report: feedlens models report {model['version']} -w {workspace}", highlight=False)
    if promote:
        from feedlens.training.advice import promotion_warnings

        for warning in promotion_warnings(model):
            Console(stderr=True).print(f"[yellow]warning[/] {escape(warning)}", highlight=False)


def evaluate(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument(help="the model version")],
    dataset: Dataset = WORKSPACE,
    workspace: Workspace = "default",
    task: Task = "categories",
    against: Annotated[
        int | None, typer.Option(help="compare with this version (default: production)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="write metrics.json and report.html here")] = None,
    as_json: AsJson = False,
) -> None:
    """Evaluate a version on a dataset (its test split if it is the one it was trained on, else all of it)."""
    training, workspace_id = _open(ctx, workspace)
    report, part = training.evaluate(workspace_id, version, _source(dataset), against=against, task=task)
    if out is not None:
        report.write(out)
    if as_json:
        typer.echo(report.to_json())
        return
    m = report.metrics
    console = out_console()
    console.print(
        f"version {version} on {part} of {dataset}: accuracy {number(m['accuracy'])}, macro-F1 "
        f"{number(m['macro']['f1'])}, ECE {number(m['calibration']['ece'])}, {m['n_items']} images",
        highlight=False,
    )
    columns = [
        Col("class", flex=True, min_width=16),
        Col("support"),
        Col("precision"),
        Col("recall"),
        Col("F1"),
    ]
    rows = [
        [
            escape(row["class"]),
            str(row["support"]),
            number(row["precision"]),
            number(row["recall"]),
            number(row["f1"]),
        ]
        for row in m["per_class"]
    ]
    print_table(columns, rows, console)
    if m.get("comparison"):
        delta = m["comparison"]["deltas"]["accuracy"]
        baseline = m["comparison"]["baseline_model"]["version"]
        console.print(
            f"against {baseline}: accuracy {number(delta['baseline'])} -> "
            f"{number(delta['model'])} ({delta['delta']:+.3f})",
            highlight=False,
        )
    if out is not None:
        console.print(f"report: {out / 'report.html'}", highlight=False)


@app.command("list")
def list_versions(
    ctx: typer.Context, workspace: Workspace = "default", task: Task = "categories", as_json: AsJson = False
) -> None:
    """Every version with its aliases, metrics, dataset hash and parent."""
    training, workspace_id = _open(ctx, workspace)
    versions = training.registry.versions(workspace_id, task)
    if as_json:
        typer.echo(json.dumps(versions, indent=2, default=str))
        return
    if not versions:
        Console(stderr=True).print(
            f"no trained {task} model in workspace {workspace} yet; train one: feedlens train -w {workspace}",
            highlight=False,
        )
        return
    columns = [
        Col("version"),
        Col("aliases", flex=True),
        Col("mode", drop=3),
        Col("runtime", drop=4),
        Col("accuracy"),
        Col("macro-F1"),
        Col("dataset", drop=5),
        Col("parent", drop=2),
        Col("created", drop=6),
    ]
    rows = training.registry.rows(workspace_id, task, [v["parent"] for v in versions])
    table = []
    for v in versions:
        parent = rows.get(v["parent"]) if v["parent"] else None
        table.append(
            [
                str(v["version"]),
                ", ".join(v["aliases"]),
                v["mode"],
                v["runtime"],
                number(v["metrics"].get("accuracy")),
                number(v["metrics"].get("macro_f1")),
                v["dataset_hash"][:12],
                "-" if parent is None else str(parent.version),
                v["created_at"][:19],
            ]
        )
    print_table(columns, table)


@app.command()
def show(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument()],
    workspace: Workspace = "default",
    task: Task = "categories",
) -> None:
    """One version in full (JSON): metrics, parameters, training details, artifacts."""
    training, workspace_id = _open(ctx, workspace)
    typer.echo(json.dumps(training.registry.get(workspace_id, task, version), indent=2, default=str))


@app.command()
def promote(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument()],
    workspace: Workspace = "default",
    task: Task = "categories",
) -> None:
    """Make a version the task's production model (what the API, ingest and the categories use)."""
    training, workspace_id = _open(ctx, workspace)
    from feedlens.training.advice import promotion_warnings

    model = training.registry.promote(workspace_id, task, version, by="cli")
    Console().print(f"version {model['version']} is now production for {task}", highlight=False)
    _recategorise(training, workspace_id, task)
    for warning in promotion_warnings(model):
        Console(stderr=True).print(f"[yellow]warning[/] {escape(warning)}", highlight=False)


@app.command()
def rollback(ctx: typer.Context, workspace: Workspace = "default", task: Task = "categories") -> None:
    """Production goes back to the model the last promotion replaced."""
    training, workspace_id = _open(ctx, workspace)
    model = training.registry.rollback(workspace_id, task, by="cli")
    Console().print(f"rolled back: version {model['version']} is production for {task}", highlight=False)
    _recategorise(training, workspace_id, task)


@app.command()
def ab(
    ctx: typer.Context,
    candidate: Annotated[
        int | None, typer.Argument(help="the version to try (omit with --off/--status)")
    ] = None,
    share: Annotated[float, typer.Option(help="share of images the candidate answers (split)")] = 0.1,
    shadow: Annotated[bool, typer.Option(help="candidate predicts on all images, answers none")] = False,
    off: Annotated[bool, typer.Option(help="stop the A/B test")] = False,
    workspace: Workspace = "default",
    task: Task = "categories",
) -> None:
    """Start, change or stop an A/B test, then show its status with live accuracy from people's labels."""
    training, workspace_id = _open(ctx, workspace)
    registry = training.registry
    if off:
        registry.set_ab(workspace_id, task, None, "off", 0.0, by="cli")
    elif candidate is not None:
        registry.set_ab(workspace_id, task, candidate, "shadow" if shadow else "split", share, by="cli")
    status = registry.ab_status(workspace_id, task)
    console = out_console()
    console.print(
        f"A/B {status['mode']}" + (f", share {status['share']:.2f}" if status["mode"] == "split" else "")
    )
    columns = [
        Col("arm"),
        Col("version"),
        Col("predictions", drop=2),
        Col("served", drop=3),
        Col("labelled"),
        Col("live accuracy"),
        Col("served accuracy", drop=1),
    ]
    rows = []
    for arm in ("production", "candidate"):
        s = status[arm]
        if s is not None:
            rows.append(
                [
                    arm,
                    str(s["version"]),
                    str(s["predictions"]),
                    str(s["served"]),
                    str(s["labelled"]),
                    number(s["accuracy"]),
                    number(s["served_accuracy"]),
                ]
            )
    print_table(columns, rows, console)
    if status["paired"]:
        p = status["paired"]
        console.print(
            f"on the {p['images']} labelled images both predicted: production "
            f"{number(p['production_accuracy'])}, candidate {number(p['candidate_accuracy'])}",
            highlight=False,
        )


@app.command()
def history(ctx: typer.Context, workspace: Workspace = "default", task: Task = "categories") -> None:
    """Promotions, rollbacks and A/B changes, oldest first."""
    training, workspace_id = _open(ctx, workspace)
    columns = [
        Col("when"),
        Col("action"),
        Col("version"),
        Col("detail", flex=True, min_width=12),
        Col("by", drop=1),
    ]
    rows = [
        [
            e["created_at"][:19],
            e["action"],
            number(e["version"]),
            escape(json.dumps(e["detail"])),
            e["created_by"],
        ]
        for e in training.registry.history(workspace_id, task)
    ]
    print_table(columns, rows)


@app.command()
def report(
    ctx: typer.Context,
    version: Annotated[int, typer.Argument()],
    out: Annotated[Path, typer.Option(help="folder for report.html and metrics.json")] = Path("."),
    workspace: Workspace = "default",
    task: Task = "categories",
    open_browser: Annotated[bool, typer.Option("--open", help="open the page in a browser")] = False,
) -> None:
    """Write the evaluation report made after training (report.html + metrics.json)."""
    training, workspace_id = _open(ctx, workspace)
    out.mkdir(parents=True, exist_ok=True)
    for kind, name in (("report", "report.html"), ("metrics", "metrics.json")):
        (out / name).write_bytes(training.report(workspace_id, version, kind, task))
    typer.echo(str(out / "report.html"))
    if open_browser:
        webbrowser.open((out / "report.html").resolve().as_uri())


@app.command()
def explain(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="an image file")],
    out: Annotated[Path, typer.Option(help="where to write the overlay PNG")] = Path("gradcam.png"),
    version: Annotated[int | None, typer.Option(help="default: production")] = None,
    category: Annotated[str | None, typer.Option(help="default: the predicted one")] = None,
    workspace: Workspace = "default",
    task: Task = "categories",
) -> None:
    """Grad-CAM: where in the image the model sees the category, as a heatmap over the image."""
    training, workspace_id = _open(ctx, workspace)
    decoded = training.decoder.decode(image)  # full size: the overlay matches the file
    png, info = training.explain(workspace_id, decoded.image, version=version, category=category, task=task)
    out.write_bytes(png)
    Console().print(
        f"{out}: version {info['version']}, {escape(info['category'])} ({info['score']:.3f})", highlight=False
    )
