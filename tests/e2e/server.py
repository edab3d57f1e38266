"""A real `feedlens serve` process on a free loopback port, for end-to-end API tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from feedlens.services.access import AccessService, Scope
from feedlens.storage.database import Database
from tests.support.api import auth
from tests.support.postgres import PostgresCluster, unique_database_name

FEEDLENS = str(Path(sys.executable).parent / "feedlens")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """`feedlens serve` with its own FEEDLENS_* environment; `url` once ready."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "FEEDLENS_DATA_DIR": str(data_dir), **(env or {})}
        self.log = data_dir / f"server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [FEEDLENS, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready in {timeout} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """kill -9: no shutdown handlers run."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the CLI against the same data (database, blobs) as the server."""
        return subprocess.run(
            [FEEDLENS, *args], env=self.env, capture_output=True, text=True, timeout=600, check=False
        )

    def key(self, workspace: str, scope: str) -> str:
        """A new API key, made in-process against the server's database (the CLI path is tested too)."""
        database = Database(self.database_url)
        try:
            access = AccessService(database)
            access.create_workspace(workspace)
            secret, _ = access.create_key(workspace, Scope(scope), "test")
            return secret
        finally:
            database.dispose()

    @property
    def database_url(self) -> str:
        return self.env.get("FEEDLENS_DATABASE_URL") or f"sqlite:///{self.data_dir / 'feedlens.db'}"


# Limits high enough that a test module's requests are never rate-limited.
RELAXED_LIMITS = {"FEEDLENS_API__BURST": "2000", "FEEDLENS_API__RATE_PER_MINUTE": "20000"}
# The shared server's settings (tests/e2e/conftest.py): the defaults but for the rate limits, and URL
# fetching off (the default, spelled out because modules check that it is refused).
SHARED_SETTINGS = {**RELAXED_LIMITS, "FEEDLENS_FETCH__ENABLED": "false"}


@dataclass(frozen=True)
class Team:
    """A module's workspaces, named after it so that modules sharing one server never see each other's
    data: `a` holds its library, `b` is another tenant for isolation checks, `workspace(x)` any more."""

    prefix: str

    @property
    def a(self) -> str:
        return self.workspace("a")

    @property
    def b(self) -> str:
        return self.workspace("b")

    def workspace(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"


def team_keys(server: Server, team: Team) -> dict[str, str]:
    """A key of every scope for workspace `team.a`, and a write key of `team.b` (isolation checks)."""
    return {
        "write": server.key(team.a, "write"),
        "read": server.key(team.a, "read"),
        "admin": server.key(team.a, "admin"),
        "other": server.key(team.b, "write"),
    }


# `launch(name, env)` (the e2e conftest's fixture): a server of the module's own, stopped with the module.
Launch = Callable[..., Server]


def on_postgres(request: pytest.FixtureRequest, name: str) -> dict[str, str]:
    """The setting that puts a server on a new database of the session's PostgreSQL cluster."""
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return {"FEEDLENS_DATABASE_URL": cluster.create_database(unique_database_name(name))}


def wait_for_job(client: httpx.Client, key: str, job_id: str, timeout: float = 180) -> dict[str, Any]:
    """Poll `GET /v1/jobs/{id}` until the batch job is done (AssertionError with its last state if not)."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=auth(key)).json()
        if job["status"] == "done":
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} not done in {timeout} s: {job}")
