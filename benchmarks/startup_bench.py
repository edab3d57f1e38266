"""Start-up cost of the CLI and the server: wall time and peak memory of commands that need no model, and
the server's time to ready, for this tree and (with `--before REF`) an older commit's source tree run with
the same virtual environment. Writes the "Start-up" section of docs/benchmarks.md.

The older tree is checked out with `git worktree` into a temporary folder and put first on PYTHONPATH, so
both run on the same interpreter, packages and models; nothing else differs.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.run import write_section

START, END = "<!-- bench:startup:start -->", "<!-- bench:startup:end -->"
ROUNDS = 5
# the console entry point, run so that PYTHONPATH can put an older source tree first
CLI = (sys.executable, "-c", "from feedlens.cli.app import main; main()")
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--help",),
    ("workspaces", "list"),
    ("keys", "create", "-w", "bench"),
    ("taxonomy", "default"),
    ("store", "list"),
)


@dataclass(frozen=True)
class Timing:
    seconds: float  # median wall time
    rss_mb: float  # median peak resident memory


def _run(command: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one run, via GNU time's %M (KiB)."""
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", report.name, *command],
            env=env,
            capture_output=True,
            check=True,
            timeout=300,
        )
        wall = time.perf_counter() - start
        return wall, int(report.read().split()[-1]) / 1024


def time_command(args: Sequence[str], env: dict[str, str]) -> Timing:
    command = [*CLI, *args]
    _run(command, env)  # warm the page cache
    runs = [_run(command, env) for _ in range(ROUNDS)]
    return Timing(statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))


def time_server_ready(env: dict[str, str]) -> float:
    """Seconds from `feedlens serve` to /readyz answering 200 (every default model loaded)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    process = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - start < 300:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    return time.perf_counter() - start
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server did not become ready in 300 s")
    finally:
        process.terminate()
        process.wait(30)


def measure(source: Path | None, data: Path) -> tuple[dict[tuple[str, ...], Timing], float]:
    env = {**os.environ, "FEEDLENS_DATA_DIR": str(data)}
    if source is not None:
        env["PYTHONPATH"] = str(source / "src")
    subprocess.run([*CLI, "workspaces", "create", "bench"], env=env, check=True)
    return {c: time_command(c, env) for c in COMMANDS}, time_server_ready(env)


def section(now: dict[tuple[str, ...], Timing], ready: float, before: tuple[str, dict, float] | None) -> str:
    lines = [
        START,
        "## Start-up (issue 22: one wiring, lazy heavy imports)",
        "",
        f"Measured {date.today().isoformat()} by `benchmarks/startup_bench.py` on "
        f"{platform.processor() or 'x86_64'} ({os.cpu_count()} cores); median of {ROUNDS} runs after a "
        "warm-up, peak RSS from GNU time. Commands that need no model never import torch, kornia, faiss or "
        "scikit-learn "
        "(`tests/test_startup.py` blocks them and runs the commands).",
        "",
    ]
    header = "| command | now: wall | now: peak RSS |"
    rule = "|---|--:|--:|"
    if before is not None:
        header += f" {before[0]}: wall | {before[0]}: peak RSS |"
        rule += "--:|--:|"
    lines += [header, rule]
    for command, timing in now.items():
        row = f"| `feedlens {' '.join(command)}` | {timing.seconds:.2f} s | {timing.rss_mb:.0f} MB |"
        if before is not None:
            old = before[1][command]
            row += f" {old.seconds:.2f} s | {old.rss_mb:.0f} MB |"
        lines.append(row)
    row = f"| `feedlens serve` until /readyz is 200 | {ready:.1f} s | |"
    if before is not None:
        row += f" {before[2]:.1f} s | |"
    lines += [row, "", END]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="docs/benchmarks.md to update (default: print)")
    parser.add_argument("--before", help="a git commit to measure beside this tree")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        now, ready = measure(None, Path(tmp) / "now")
        before = None
        if args.before:
            tree = Path(tmp) / "before"
            subprocess.run(
                ["git", "-C", str(root), "worktree", "add", "-f", str(tree), args.before], check=True
            )
            try:
                old, old_ready = measure(tree, Path(tmp) / "before-data")
                before = (f"`{args.before[:7]}`", old, old_ready)
            finally:
                subprocess.run(
                    ["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], check=False
                )
                shutil.rmtree(tree, ignore_errors=True)
    text = section(now, ready, before)
    if args.out:
        write_section(args.out, text, START, END)
    print(text)


if __name__ == "__main__":
    main()
