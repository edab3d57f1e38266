"""Fixtures of the end-to-end tests: the in-process CLI over a module's own data folder; real `feedlens
serve` processes, their keys and an HTTP client; the web app's demo library and a headless browser.

Servers. Each `feedlens serve` loads every model (seconds and about 1 GB), so modules whose settings are
the shared ones (SHARED_SETTINGS) use ONE session-wide server, `shared_server`: the default `server`. Each
module works in workspaces named after it (`team`), so modules stay independent on it. A module whose
tests need other settings overrides `server` with `launch(...)` and says there why.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL.Image import Image as PILImage
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from feedlens.config import Settings
from feedlens.services.factory import Services, build_services
from tests.e2e.server import SHARED_SETTINGS, Launch, Server, Team, team_keys
from tests.e2e.webdemo import Demo, load_demo
from tests.support.browser import CHROMIUM
from tests.support.cli import Cli, in_process_cli


@pytest.fixture(scope="module")
def cli_services(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Services:
    """Services over a fresh data folder (SQLite); models load once for the whole module."""
    data = tmp_path_factory.mktemp("cli")
    return build_services(settings.model_copy(update={"data_dir": data, "database_url": None}))


@pytest.fixture(scope="module")
def feedlens(cli_services: Services) -> Cli:
    return in_process_cli(cli_services)


# -- servers -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The one server of every module content with SHARED_SETTINGS, up until the session ends."""
    process = Server(tmp_path_factory.mktemp("shared"), dict(SHARED_SETTINGS)).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launch]:
    """`launch(name, env)`: start a server of the module's own with these FEEDLENS_* settings (on top of
    the environment's) in a fresh data folder; every one started is stopped when the module ends."""
    started: list[Server] = []

    def start(name: str, env: dict[str, str] | None = None) -> Server:
        process = Server(tmp_path_factory.mktemp(name), env)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="module")
def server(shared_server: Server) -> Server:
    """The module's server: the shared one, unless the module overrides this fixture."""
    return shared_server


@pytest.fixture(scope="module")
def team(request: pytest.FixtureRequest) -> Team:
    """Workspaces named after the module (test_search_api -> search-api-a, search-api-b)."""
    return Team(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-"))


@pytest.fixture(scope="module")
def keys(server: Server, team: Team) -> dict[str, str]:
    return team_keys(server, team)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=300) as c:
        yield c


# -- the web app -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(server: Server, keys: dict[str, str], team: Team, sample_dir: Path, chelsea: PILImage) -> Demo:
    """The web app's library (tests/e2e/webdemo.py) in the module's workspaces on its server."""
    return load_demo(server, keys, team, sample_dir, chelsea)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A tab in the module's `context` (each web module logs its own in); fails the test on a script
    error or anything the page's Content Security Policy had to block."""
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    yield tab
    tab.close()
    assert not errors, errors  # no uncaught script error, nothing the page's CSP had to block
