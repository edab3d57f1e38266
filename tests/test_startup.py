"""Start-up stays light: the CLI and the API app import and start with torch, kornia, faiss and scikit-learn
made unimportable, and the commands that need no model start in well under a second."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

FEEDLENS = str(Path(sys.executable).parent / "feedlens")
BLOCKED = ("torch", "kornia", "faiss", "sklearn", "captum", "matplotlib", "transformers", "ray")

# A meta-path finder that refuses the heavy packages: importing one raises, so a command that starts must
# not have touched them. Run in a fresh interpreter through `python -c`.
_BLOCKER = f"""
import importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r}:
            raise ImportError(f"{{name}} is blocked in this test")
        return None
sys.meta_path.insert(0, Blocked())
"""


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKER + code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "FEEDLENS_DATA_DIR": str(tmp_path / "data")}


def test_cli_commands_run_without_heavy_packages(env: dict[str, str]) -> None:
    code = """
from feedlens.cli.app import main
import sys
commands = (["workspaces", "create", "team"], ["keys", "create", "-w", "team"],
            ["keys", "list", "-w", "team"], ["taxonomy", "default"], ["store", "verify"])
for args in commands:
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code == 0, (args, exc.code)
print("heavy:", sorted(m for m in sys.modules if m.split('.')[0] in ("torch", "kornia", "faiss", "sklearn")))
"""
    done = _python(code, env)
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stdout
    assert "fl_" in done.stdout  # the key was printed


def test_the_api_app_starts_and_serves_without_heavy_packages(env: dict[str, str]) -> None:
    """The full lifespan runs (every default model loads) and requests are answered, training and search
    code paths included as far as listing, models, duplicates, review and analytics reach them (search uses
    faiss by default, so it is not in this list)."""
    code = """
from fastapi.testclient import TestClient
from feedlens.api.app import create_app
from feedlens.config import load_settings
from feedlens.services.factory import build_services
settings = load_settings()
services = build_services(settings)
services.database.migrate()
services.access.create_workspace("team")
key, _ = services.access.create_key("team", "admin")
with TestClient(create_app(settings, services)) as client:
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/readyz").status_code == 200
    paths = ("/v1/images", "/v1/models", "/v1/duplicates", "/v1/review/moderation", "/v1/analytics/safety")
    for path in paths:
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
print("served")
"""
    done = _python(code, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "served" in done.stdout


@pytest.mark.parametrize("args", [["--help"], ["keys", "list", "-w", "default"], ["workspaces", "list"]])
def test_light_commands_start_fast(env: dict[str, str], args: list[str]) -> None:
    """Under a second on this 2-core machine (measured in docs/benchmarks.md; ~0.3-0.6 s when idle). The
    bound here is loose (3 s) so a loaded CI machine does not fail it; the import check above is strict."""
    subprocess.run([FEEDLENS, "workspaces", "create", "default"], env=env, capture_output=True, check=True)
    best = min(_timed([FEEDLENS, *args], env) for _ in range(3))
    assert best < 3.0, best


def _timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, capture_output=True, check=True, timeout=60)
    return time.perf_counter() - start
