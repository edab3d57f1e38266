"""Real Ray nodes on loopback for the cluster tests and benchmarks/cluster_bench.py.

Each node is one `ray start --block` process started in its own process group, with its own short temporary
folder (Ray's unix socket paths must stay under 108 bytes, which pytest's deep tmp paths can exceed). What
it starts (GCS, raylet, workers, actors) is found by that process group or by that folder in a process's
command line, so stopping or killing a node touches no other Ray cluster on the machine: never `ray stop`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RAY = str(Path(sys.executable).parent / "ray")
SRC = Path(__file__).resolve().parents[2] / "src"  # the nodes import this checkout's feedlens
START_TIMEOUT_S = 90
# How fast the head declares a node dead whose raylet stopped answering: 4 missed checks 1 s apart instead
# of Ray's default 5 missed 3 s apart, so that a test of a lost node spends seconds, not half a minute. Each
# check still waits 3 s for an answer: a live raylet on a loaded machine is not declared dead.
QUICK_NODE_DEATH = {
    "health_check_initial_delay_ms": 1000,
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 3000,
    "health_check_failure_threshold": 4,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def node_env() -> dict[str, str]:
    """The environment of a node: this one, with this checkout's sources first and usage stats off."""
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0"}


class RayNode:
    """One Ray node: the head (`head` None; `address` is then its own) or a node joining `head`."""

    def __init__(
        self, cpus: int, head: str | None = None, system_config: dict[str, Any] | None = None
    ) -> None:
        self.cpus = cpus
        self.head = head
        self.system_config = system_config
        self.folder = Path(tempfile.mkdtemp(prefix="fl-ray-"))
        self.log = self.folder / "node.log"
        self.port = free_port() if head is None else 0
        self.address = head or f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        command = [RAY, "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", str(self.cpus)]
        command += ["--disable-usage-stats", "--temp-dir", str(self.folder / "t")]
        # ports Ray would otherwise take at fixed numbers, which two nodes (or clusters) on one host share
        command += ["--dashboard-agent-listen-port", str(free_port())]
        if self.head is not None:
            return [*command, "--address", self.head]
        command += ["--head", "--port", str(self.port), "--include-dashboard", "false"]
        command += ["--dashboard-port", str(free_port()), "--ray-client-server-port", str(free_port())]
        if self.system_config:  # only the head takes it; the other nodes read it from the GCS
            command += ["--system-config", json.dumps(self.system_config)]
        return command

    def start(self) -> RayNode:
        """Start the node and return once Ray says it runs (for a joining node: registered with the head)."""
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.command(), env=node_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Ray runtime started" not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ray node did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        return self

    def processes(self) -> dict[int, str]:
        """pid -> command line of every live process of this node: its process group, whatever names its
        temporary folder, and their descendants (the workers the raylet starts retitle themselves)."""
        table = _process_table()
        marker = str(self.folder)
        group = self.process.pid if self.process is not None else -1
        members = {pid for pid, (_, pgid, command) in table.items() if pgid == group or marker in command}
        grown = True
        while grown:
            children = {pid for pid, (ppid, _, _) in table.items() if ppid in members} - members
            members |= children
            grown = bool(children)
        return {pid: table[pid][2] for pid in members}

    def analysing(self) -> bool:
        """Whether a Ray Data actor on this node is past its constructor (Ray retitles its process; for
        feedlens's AnalyzeActor: the models are loaded)."""
        return any("MapWorker" in c and "__init__" not in c for c in self.processes().values())

    def raylet(self) -> int:
        """The pid of this node's raylet."""
        found = self.processes()
        pids = [pid for pid, command in found.items() if command.split(" ", 1)[0].endswith("/raylet")]
        assert len(pids) == 1, found
        return pids[0]

    def kill_raylet(self) -> None:
        """SIGKILL this node's raylet, as a node whose machine died: nothing is told first."""
        os.kill(self.raylet(), signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM the node's process group, then SIGKILL whatever of the node is left; remove its folder."""
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(2)
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        deadline = time.monotonic() + 10
        while (left := self.processes()) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        shutil.rmtree(self.folder, ignore_errors=True)


def _process_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, command line) of every live process but zombies."""
    table: dict[int, tuple[int, int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if command:  # kernel threads and zombies have none
            table[int(entry.name)] = (int(fields[1]), int(fields[2]), command.strip())
    return table


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
