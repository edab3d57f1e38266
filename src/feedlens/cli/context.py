"""Access to the services wired by the CLI's start-up callback."""

from __future__ import annotations

import typer

from feedlens.core.errors import ConfigError
from feedlens.services.factory import Services


def services_from(ctx: typer.Context) -> Services:
    services = ctx.find_root().obj
    if not isinstance(services, Services):  # pragma: no cover - set by the app callback
        raise ConfigError("services are not initialised")
    return services
