"""`feedlens faces identity on|off|status`: face identity (compare, collections, search) per workspace,
off until an operator switches it on; switching it off erases every face descriptor (docs/faces.md)."""

from __future__ import annotations

import getpass
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from feedlens.cli.context import AsJson, Workspace, open_workspace
from feedlens.core.errors import ConfigError

if TYPE_CHECKING:
    from feedlens.services.faces.people import PeopleService

app = typer.Typer(help="Faces beyond detection: identity (opt-in per workspace).", no_args_is_help=True)
identity_app = typer.Typer(
    help="Face identity per workspace: compare faces, collections, search (off by default).",
    no_args_is_help=True,
)
app.add_typer(identity_app, name="identity")
console = Console()

Yes = Annotated[bool, typer.Option("--yes", help="confirm erasing every face descriptor of the workspace")]


@identity_app.command("on")
def identity_on(ctx: typer.Context, workspace: Workspace) -> None:
    """Switch face identity on: the Rekognition CompareFaces and collection operations then compute and
    keep face descriptors (biometric data) for this workspace."""
    services, workspace_id = open_workspace(ctx, workspace)
    services.face_identity.enable(workspace_id, f"cli:{getpass.getuser()}")
    console.print(f"face identity is on for {workspace}; `feedlens faces identity off` erases it all")


@identity_app.command("off")
def identity_off(ctx: typer.Context, workspace: Workspace, yes: Yes = False) -> None:
    """Switch face identity off and erase every collection and face descriptor of the workspace."""
    if not yes:
        raise ConfigError("switching face identity off erases every face descriptor: add --yes")
    services, workspace_id = open_workspace(ctx, workspace)
    erased = services.face_identity.disable(workspace_id)
    console.print(f"face identity is off for {workspace}; {erased} face descriptors erased")


@identity_app.command("status")
def identity_status(ctx: typer.Context, workspace: Workspace, as_json: AsJson = False) -> None:
    """Whether face identity is on for the workspace."""
    services, workspace_id = open_workspace(ctx, workspace)
    on = services.face_identity.enabled(workspace_id)
    if as_json:
        typer.echo(json.dumps({"workspace": workspace, "face_identity": on}))
    else:
        console.print(f"face identity is {'on' if on else 'off'} for {workspace}")


people_app = typer.Typer(help="People: stored photos grouped by who is in them (needs identity on).")
app.add_typer(people_app, name="people")
Person = Annotated[int, typer.Argument(help="a person's id, from `feedlens faces people list`")]


def _people(ctx: typer.Context, workspace: str) -> tuple[PeopleService, int]:
    services, workspace_id = open_workspace(ctx, workspace)
    return services.face_people, workspace_id


@people_app.command("scan")
def people_scan(
    ctx: typer.Context,
    workspace: Workspace,
    limit: Annotated[int, typer.Option("--limit", min=1, help="stored images to take at most")] = 100_000,
) -> None:
    """Take the faces of the stored photos not taken yet and group them into people."""
    people, workspace_id = _people(ctx, workspace)
    report = people.scan(workspace_id, workspace, limit)
    console.print(f"{report.images} photos looked at, {report.faces} faces added, {report.people} people")


@people_app.command("list")
def people_list(ctx: typer.Context, workspace: Workspace, as_json: AsJson = False) -> None:
    """The people found, most photographed first."""
    people, workspace_id = _people(ctx, workspace)
    found = people.people(workspace_id, workspace)
    if as_json:
        typer.echo(
            json.dumps([{"id": p.id, "name": p.name, "faces": p.faces, "images": p.images} for p in found])
        )
        return
    for p in found:
        console.print(f"{p.id:>6}  {p.name or '(no name)'}: {p.images} photos")


@people_app.command("name")
def people_name(ctx: typer.Context, workspace: Workspace, person: Person, name: str) -> None:
    """Name a person (an empty name clears it)."""
    people, workspace_id = _people(ctx, workspace)
    people.rename(workspace_id, workspace, person, name)


@people_app.command("photos")
def people_photos(ctx: typer.Context, workspace: Workspace, person: Person) -> None:
    """The ids of the stored photos a person is in."""
    people, workspace_id = _people(ctx, workspace)
    for image_id in people.images(workspace_id, workspace, person):
        typer.echo(image_id)


@people_app.command("delete")
def people_delete(ctx: typer.Context, workspace: Workspace, person: Person) -> None:
    """Erase a person and their faces' descriptors (the photos stay)."""
    people, workspace_id = _people(ctx, workspace)
    console.print(f"{people.delete(workspace_id, workspace, person)} face descriptors erased")
