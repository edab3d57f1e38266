"""`feedlens correct` and `feedlens review next|decide|scan|calibration` (docs/feedback.md)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from feedlens.cli.context import Workspace, open_workspace
from feedlens.cli.render import number
from feedlens.core.errors import ConfigError
from feedlens.core.results.safety import Verdict

if TYPE_CHECKING:
    from feedlens.services.factory import Services
    from feedlens.services.feedback import ReviewService

review_app = typer.Typer(
    help="The moderation review queue: what waits for a person, decisions, calibration.", no_args_is_help=True
)

WHO = "cli"


def _cell(value: Any) -> str:
    return number(None if value is None else float(value))


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    ESCALATE = "escalate"


class QueueState(StrEnum):
    PENDING = "pending"
    ESCALATED = "escalated"


def _open(ctx: typer.Context, workspace: str) -> tuple[Services, ReviewService, int]:
    services, workspace_id = open_workspace(ctx, workspace)
    return services, services.review, workspace_id


def correct(
    ctx: typer.Context,
    image_id: Annotated[str, typer.Argument(help="a stored image's id")],
    category: Annotated[
        list[str] | None, typer.Option("--category", "-c", help="a category the image shows (repeatable)")
    ] = None,
    not_: Annotated[
        list[str] | None, typer.Option("--not", help="a category the image does not show (repeatable)")
    ] = None,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="the assigned categories are right: keep them as labels")
    ] = False,
    safety: Annotated[
        Verdict | None, typer.Option("--safety", help="the right moderation verdict (safe approves)")
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="why (kept with a safety decision)")] = "",
    workspace: Workspace = "default",
) -> None:
    """Confirm or correct an image's categories and/or moderation verdict. Categories become labels (what
    training and live accuracy count as truth); a verdict becomes a moderation decision."""
    if not (category or not_ or confirm or safety):
        raise ConfigError("give --category, --not, --confirm or --safety")
    services, _, workspace_id = _open(ctx, workspace)
    done = services.corrections.correct(
        workspace_id,
        image_id,
        categories=category or [],
        not_=not_ or [],
        confirm=confirm,
        safety=safety.value if safety else None,
        reason=reason,
        by=WHO,
        source="cli",
    )
    if done is None:
        raise ConfigError(f"no image {image_id!r} in workspace {workspace!r}")
    for row in done.get("labels", []):
        typer.echo(f"{row['category']}\t{'yes' if row['positive'] else 'no'}\t{row['source']}")
    decision = done.get("decision")
    if decision is not None:
        before = decision["verdict_before"] or "no verdict"
        typer.echo(f"moderation: {decision['decision']} (was {before}) -> {decision['state']}")
    Console(stderr=True).print(f"{len(done['corrections'])} corrections recorded", highlight=False)


@review_app.command("next")
def review_next(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=200)] = 10,
    state: Annotated[QueueState, typer.Option("--state")] = QueueState.PENDING,
    workspace: Workspace = "default",
) -> None:
    """The images waiting for a moderator, most urgent (risk, then uncertainty) first."""
    _, review, workspace_id = _open(ctx, workspace)
    items = review.queue(workspace_id, limit, state.value)
    for item in items:  # tab-separated: image ids are what one copies into `review decide`
        typer.echo(
            "\t".join(
                (
                    item["image_id"],
                    str(item["verdict"]),
                    f"risk {_cell(item['risk'])}",
                    f"uncertainty {_cell(item['uncertainty'])}",
                    f"priority {_cell(item['priority'])}",
                )
            )
        )
    if not items:
        Console(stderr=True).print(f"nothing {state.value} in workspace {workspace}", highlight=False)


@review_app.command("decide")
def review_decide(
    ctx: typer.Context,
    image_id: Annotated[str, typer.Argument(help="an image in the queue")],
    decision: Annotated[Decision, typer.Argument(help="approve, reject or escalate")],
    reason: Annotated[str, typer.Option("--reason", help="why")] = "",
    workspace: Workspace = "default",
) -> None:
    """Approve, reject or escalate an image waiting for review."""
    _, review, workspace_id = _open(ctx, workspace)
    done = review.decide(workspace_id, image_id, decision.value, reason, by=WHO)
    if done is None:
        raise ConfigError(f"no image {image_id!r} in workspace {workspace!r}")
    typer.echo(f"{image_id}\t{done['decision']}\t{done['state']}")


@review_app.command("scan")
def review_scan(ctx: typer.Context, workspace: Workspace = "default") -> None:
    """Queue every image of the workspace whose safety verdict is flagged or uncertain (decided images
    keep their decisions)."""
    _, review, workspace_id = _open(ctx, workspace)
    found = review.scan(workspace_id)
    typer.echo(
        f"{found['scanned']} images scanned: {found['queued']} need review, {found['removed']} no longer; "
        f"{found['pending']} pending"
    )


@review_app.command("calibration")
def review_calibration(
    ctx: typer.Context,
    target_precision: Annotated[
        float | None, typer.Option("--target-precision", min=0.01, max=1.0, help="default from settings")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the numbers as JSON")] = False,
    workspace: Workspace = "default",
) -> None:
    """Precision and recall of the unsafe flag at thresholds of the risk score, judged by moderators'
    decisions; the current threshold's point and the threshold that reaches the target precision."""
    _, review, workspace_id = _open(ctx, workspace)
    found = review.calibration(workspace_id, target_precision)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    current, suggested = found["current"], found["suggested"]
    table = Table("threshold", "flagged", "precision", "recall")
    for point in found["grid"]:
        mark = " (current)" if point["threshold"] == current["threshold"] else ""
        table.add_row(
            f"{point['threshold']:.2f}{mark}",
            str(point["flagged"]),
            _cell(point["precision"]),
            _cell(point["recall"]),
        )
    Console().print(table)
    err = Console(stderr=True)
    err.print(
        f"{found['decisions']} decisions ({found['unsafe']} rejected, {found['safe']} approved); "
        f"current threshold {current['threshold']:.2f}: precision {_cell(current['precision'])}, "
        f"recall {_cell(current['recall'])}",
        highlight=False,
    )
    if suggested is None:
        err.print(f"no threshold reaches precision {found['target_precision']:.2f}", highlight=False)
    else:
        err.print(
            f"precision >= {found['target_precision']:.2f} from threshold {suggested['threshold']:.2f} "
            f"(recall {_cell(suggested['recall'])})",
            highlight=False,
        )
