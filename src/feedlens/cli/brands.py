"""`feedlens brands ...`: register brands with reference logos, list, remove, rescan, count mentions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from feedlens.cli.context import Workspace, open_workspace
from feedlens.core.errors import ConfigError

if TYPE_CHECKING:
    from feedlens.services.brands.service import BrandService

app = typer.Typer(help="Brands to watch for: logos, names in image text, captions.", no_args_is_help=True)


def _open(ctx: typer.Context, workspace: str, create: bool = False) -> tuple[BrandService, int]:
    services, workspace_id = open_workspace(ctx, workspace, create)
    return services.brands, workspace_id


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the brand's name, as people write it")],
    logo: Annotated[list[Path] | None, typer.Option("--logo", help="a reference logo image (repeat)")] = None,
    alias: Annotated[list[str] | None, typer.Option("--alias", help="another spelling (repeat)")] = None,
    hashtag: Annotated[
        list[str] | None, typer.Option("--hashtag", help="a hashtag meaning it (repeat)")
    ] = None,
    rescan: Annotated[bool, typer.Option(help="look for it in every stored image now")] = True,
    workspace: Workspace = "default",
) -> None:
    """Register a brand, or add logos, aliases and hashtags to one. Every logo is checked first."""
    missing = [str(p) for p in logo or [] if not p.is_file()]
    if missing:
        raise ConfigError(f"no such file: {', '.join(missing)}")
    brands, workspace_id = _open(ctx, workspace, create=True)
    logos = [(str(p), p.read_bytes()) for p in logo or []]
    view = brands.add(workspace_id, name, alias or [], hashtag or [], logos)
    err = Console(stderr=True)
    err.print(
        f"brand [bold]{view['name']}[/]: {len(view['logos'])} logos, aliases {view['aliases'] or '-'}, "
        f"hashtags {view['hashtags'] or '-'}",
        highlight=False,
    )
    if rescan:
        err.print(f"scanned {brands.rescan(workspace_id)} images", highlight=False)


@app.command("list")
def list_brands(ctx: typer.Context, workspace: Workspace = "default") -> None:
    brands, workspace_id = _open(ctx, workspace)
    table = Table("brand", "aliases", "hashtags", "logos")
    for brand in brands.registered(workspace_id):
        table.add_row(
            brand["name"],
            ", ".join(brand["aliases"]),
            ", ".join("#" + t for t in brand["hashtags"]),
            ", ".join(f"{lg['id']} ({lg['width']}x{lg['height']})" for lg in brand["logos"]),
        )
    Console().print(table)


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    logo_id: Annotated[int | None, typer.Option("--logo", help="remove only this logo")] = None,
    workspace: Workspace = "default",
) -> None:
    """Forget a brand (or one of its logos) and rescan."""
    brands, workspace_id = _open(ctx, workspace)
    done = (
        brands.remove(workspace_id, name)
        if logo_id is None
        else brands.remove_logo(workspace_id, name, logo_id)
    )
    if not done:
        raise ConfigError(f"no brand {name!r}" + (f" with logo {logo_id}" if logo_id is not None else ""))
    Console(stderr=True).print(f"removed; scanned {brands.rescan(workspace_id)} images", highlight=False)


@app.command("rescan")
def rescan(ctx: typer.Context, workspace: Workspace = "default") -> None:
    """Look for every registered brand in every stored image again."""
    brands, workspace_id = _open(ctx, workspace)
    typer.echo(brands.rescan(workspace_id))


def _day(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"{option}: not a date (YYYY-MM-DD): {value!r}") from None


@app.command("counts")
def counts(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    until: Annotated[str | None, typer.Option(help="YYYY-MM-DD (exclusive)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    workspace: Workspace = "default",
) -> None:
    """Images mentioning each brand per day (by post date, else ingest date)."""
    brands, workspace_id = _open(ctx, workspace)
    rows = brands.counts(workspace_id, _day(since, "--since"), _day(until, "--until"))
    if as_json:
        typer.echo(json.dumps([{"day": d.isoformat(), "brand": b, "images": n} for d, b, n in rows]))
        return
    for day, brand, n in rows:
        typer.echo(f"{day.isoformat()}\t{brand}\t{n}")
