"""`feedlens al next|status|retrain|simulate`: active learning from the command line (docs/feedback.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from feedlens.cli.context import AsJson, Workspace, open_workspace, services_from
from feedlens.cli.render import number
from feedlens.cli.tables import Col, out_console, print_table

if TYPE_CHECKING:
    from feedlens.services.feedback.learning import ActiveLearning

app = typer.Typer(
    help="Active learning: what to label next, retraining cycles, the learning curve, simulation.",
    no_args_is_help=True,
)


def _learning(ctx: typer.Context, workspace: str) -> tuple[ActiveLearning, int]:
    services, workspace_id = open_workspace(ctx, workspace)
    return services.learning, workspace_id


@app.command("next")
def next_images(
    ctx: typer.Context,
    n: Annotated[int, typer.Option("-n", help="how many images")] = 20,
    strategy: Annotated[str, typer.Option(help="margin, least_confidence, entropy or random")] = "margin",
    diversity: Annotated[bool, typer.Option("--diversity/--no-diversity")] = True,
    workspace: Workspace = "default",
    as_json: AsJson = False,
) -> None:
    """The unlabelled images to label next, most informative first (label them with `feedlens label`)."""
    services, workspace_id = open_workspace(ctx, workspace)
    queue = services.learning.next(workspace_id, n, strategy, diversity=diversity)
    if as_json:
        typer.echo(json.dumps(queue, indent=2))
        return
    console = out_console()
    progress = queue["progress"]
    console.print(
        f"{progress['labelled']} labelled, {progress['unlabelled']} unlabelled; strategy {queue['strategy']}"
        + (" (cold start: fewer than 2 labelled categories)" if queue.get("cold_start") else ""),
        highlight=False,
        soft_wrap=True,
    )
    picks = queue["picks"]
    if not picks:
        Console(stderr=True).print(f"nothing left to label in workspace {workspace}", highlight=False)
        return
    sources = services.library.sources(workspace_id, [p["image_id"] for p in picks])
    columns = [
        Col("rank"),
        Col("image"),
        Col("name", flex=True, cut_start=True, min_width=14),
        Col("why", flex=True, min_width=24, drop=1),
    ]
    rows = [
        [
            str(p["rank"] + 1),
            p["image_id"],
            escape(Path(sources.get(p["image_id"], "?")).name),
            escape(_why(p)),
        ]
        for p in picks
    ]
    print_table(columns, rows, console)
    Console(stderr=True).print(
        f"label them: feedlens label IMAGE_ID CATEGORY -w {workspace} (or in the web app's labelling queue)",
        highlight=False,
        soft_wrap=True,
    )


def _why(pick: dict[str, Any]) -> str:
    """Why an image was picked: the model's doubt between its top categories, or chance (cold start)."""
    predicted = pick["predicted"] or []
    if len(predicted) < 2:
        return "random pick (no model yet)"
    first, second = predicted[0], predicted[1]
    why = (
        f"model unsure: {first['category']} {first['probability']:.2f} "
        f"or {second['category']} {second['probability']:.2f}"
    )
    return why + (
        f"; unlike the others (group {pick['cluster'] + 1})" if pick.get("cluster") is not None else ""
    )


@app.command()
def retrain(
    ctx: typer.Context,
    mode: Annotated[str | None, typer.Option(help="probe or finetune (default: the setting)")] = None,
    metric: Annotated[str | None, typer.Option(help="macro_f1 or accuracy")] = None,
    margin: Annotated[float | None, typer.Option(help="improvement needed to promote")] = None,
    workspace: Workspace = "default",
    as_json: AsJson = False,
) -> None:
    """One retraining cycle: train a candidate, score it and production on images neither trained on,
    promote it only if better by the margin."""
    from feedlens.training.recipe import TrainOptions

    learning, workspace_id = _learning(ctx, workspace)
    options = TrainOptions(mode=(mode or learning.settings.learning.mode), progress=not as_json)  # type: ignore[arg-type]
    cycle = learning.cycle(workspace_id, options, metric=metric, margin=margin, created_by="cli")
    if as_json:
        typer.echo(json.dumps(cycle, indent=2))
        return
    verdict = "[green]promoted[/]" if cycle["promoted"] else "[yellow]not promoted[/]"
    Console().print(
        f"candidate v{cycle['candidate_version']} {cycle['metric']} {number(cycle['candidate_score'])} vs "
        f"production {('v' + str(cycle['production_version'])) if cycle['production_version'] else '-'} "
        f"{number(cycle['production_score'])} on {cycle['holdout']} held-out images: {verdict} "
        f"({escape(cycle['reason'])})",
        highlight=False,
    )


@app.command()
def status(ctx: typer.Context, workspace: Workspace = "default", as_json: AsJson = False) -> None:
    """Every cycle and the learning curve: holdout metric against the number of labelled images."""
    learning, workspace_id = _learning(ctx, workspace)
    found = learning.status(workspace_id)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    console = out_console()
    columns = [
        Col("when", drop=3),
        Col("labels"),
        Col("holdout", drop=2),
        Col("metric", drop=4),
        Col("candidate"),
        Col("production"),
        Col("promoted"),
        Col("reason", flex=True, min_width=16, drop=1),
    ]
    rows = [
        [
            c["created_at"][:19],
            str(c["labels"]),
            str(c["holdout"]),
            c["metric"],
            f"v{c['candidate_version']} {number(c['candidate_score'])}",
            "-"
            if c["production_version"] is None
            else f"v{c['production_version']} {number(c['production_score'])}",
            "yes" if c["promoted"] else "no",
            escape(c["reason"]),
        ]
        for c in found["cycles"]
    ]
    print_table(columns, rows, console)
    due = found["next_cycle_at"]
    console.print(
        f"{found['labels']} labelled images now; "
        + ("automatic cycles are off" if due is None else f"the server starts the next cycle at {due}"),
        highlight=False,
    )


@app.command()
def simulate(
    ctx: typer.Context,
    dataset: Annotated[
        Path, typer.Option("--dataset", "-d", help="a fully labelled ImageFolder, CSV or COCO file")
    ],
    out: Annotated[Path, typer.Option(help="folder for curves.json and curves.png")] = Path("al-simulation"),
    seeds: Annotated[int, typer.Option(help="how many seeds")] = 3,
    initial_per_class: Annotated[int, typer.Option(help="labels per class at the start")] = 2,
    batch: Annotated[int, typer.Option(help="labels per round")] = 10,
    rounds: Annotated[int, typer.Option(help="rounds")] = 10,
) -> None:
    """Run the loop with an oracle labeller from a few labels: uncertainty+diversity against random."""
    from feedlens.services.training import dataset_from_path
    from feedlens.training.simulation import simulate_dataset

    services = services_from(ctx)
    data = dataset_from_path(dataset)
    bad = data.check_images(services.decoder)
    if bad:
        Console(stderr=True).print(f"skipping {len(bad)} unreadable images", highlight=False)
        data = data.without(b.key for b in bad)
    result = simulate_dataset(
        data,
        services.store.path("efficientnet-lite0-pth"),
        services.decoder,
        seeds=tuple(range(seeds)),
        initial_per_class=initial_per_class,
        batch_size=batch,
        rounds=rounds,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "curves.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    result.plot(out / "curves.png")
    console = Console()
    for target in result.to_dict().get("targets", []):
        console.print(json.dumps(target), highlight=False)
    console.print(f"{out / 'curves.png'}", highlight=False)
