"""`feedlens serve` on a busy port: one line and exit 2 before any model loads (issue 23: it used to fail
only after a 20 s start-up)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from feedlens.cli.serve import check_port
from feedlens.core.errors import ConfigError
from tests.e2e.server import FEEDLENS


def test_a_busy_port_is_refused_at_once(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match="the port is in use"):
            check_port("127.0.0.1", port)
        env = {k: v for k, v in os.environ.items() if k != "FEEDLENS_DATABASE_URL"}
        env["FEEDLENS_DATA_DIR"] = str(tmp_path)
        started = time.monotonic()
        done = subprocess.run(
            [FEEDLENS, "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        took = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in done.stderr
    assert "checking models" not in done.stderr and took < 30  # refused before any model check
    check_port("127.0.0.1", port)  # free again: no error
