"""Fixtures of the end-to-end tests: the in-process CLI over a module's own data folder."""

from __future__ import annotations

import pytest

from feedlens.config import Settings
from feedlens.services.factory import Services, build_services
from tests.support.cli import Cli, in_process_cli


@pytest.fixture(scope="module")
def cli_services(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Services:
    """Services over a fresh data folder (SQLite); models load once for the whole module."""
    data = tmp_path_factory.mktemp("cli")
    return build_services(settings.model_copy(update={"data_dir": data, "database_url": None}))


@pytest.fixture(scope="module")
def feedlens(cli_services: Services) -> Cli:
    return in_process_cli(cli_services)
