"""What every command shares: the services wired by the CLI's start-up callback, and workspace lookup.

Nothing heavy is imported at module level anywhere in the CLI: `feedlens --help` and `feedlens keys ...`
must start in well under a second, so each command imports the services it uses when it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from feedlens.core.errors import ConfigError

if TYPE_CHECKING:
    from feedlens.services.factory import Services

Workspace = Annotated[str, typer.Option("--workspace", "-w", help="workspace name")]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def services_from(ctx: typer.Context) -> Services:
    from feedlens.services.factory import Services

    services = ctx.find_root().obj
    if not isinstance(services, Services):  # pragma: no cover - set by the app callback
        raise ConfigError("services are not initialised")
    return services


def open_workspace(ctx: typer.Context, name: str, create: bool = False) -> tuple[Services, int]:
    """The services (schema migrated) and the id of workspace `name`; `create` makes it if it is new
    (as `ingest` does), otherwise an unknown name is a one-line error."""
    services = services_from(ctx)
    services.database.migrate()
    access = services.access
    return services, (access.create_workspace(name) if create else access.workspace_id(name))
