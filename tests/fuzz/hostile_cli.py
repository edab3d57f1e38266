"""`feedlens analyze` over the hostile files: one run over a folder, as a user runs it, then guarded runs
for special files (a link to /dev/zero, a named pipe) that a folder from an unpacked archive can hold.

A run that dies is a failure of the file it died on (the first one it had not reported, in its sorted
order); that file is set aside and the run repeats over the rest, so one crash hides nothing after it.
Memory: the CLI's VmRSS, sampled every 10 ms, minus its RSS once the models are loaded (when the first,
good, image is reported); a run past KILL_ABOVE_MB is killed as unbounded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.fuzz.measure import Outcome, RssSampler

FEEDLENS = str(Path(sys.executable).parent / "feedlens")
CONTROL = "000-control"  # sorts first: a good image reported once the models are loaded
KILL_ABOVE_MB = 6000.0
SPECIAL_TIMEOUT_S = 60.0
MAX_RUNS = 20


def _write(folder: Path, images: dict[str, bytes]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in images.items():
        (folder / name).write_bytes(data)
    return sorted(images)


def _analyze(
    folder: Path, data_dir: Path, timeout: float | None
) -> tuple[list[tuple[str, bool, float]], int, str, RssSampler]:
    """One `feedlens analyze FOLDER -f jsonl` (batch size 1): per reported file (name, refused, seconds
    since the previous report), the exit code (-9: killed, 124: timed out), stderr's tail, the sampler."""
    env = {**os.environ, "FEEDLENS_BATCH_SIZE": "1", "FEEDLENS_DATA_DIR": str(data_dir)}
    proc = subprocess.Popen(
        [FEEDLENS, "analyze", str(folder), "-f", "jsonl", "-a", "labels"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    timer = threading.Timer(timeout, proc.kill) if timeout else None
    if timer:
        timer.start()
    reports: list[tuple[str, bool, float]] = []
    with RssSampler(proc.pid, kill_above_mb=KILL_ABOVE_MB) as sampler:
        last = time.perf_counter()
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            now = time.perf_counter()
            item = json.loads(line)
            name = Path(item["path"]).name
            if name == CONTROL:
                sampler.reset()  # models loaded: what follows is extra
            reports.append((name, "error" in item and item["error"] is not None, now - last))
            last = now
            sampler.current = name
        code = proc.wait()
        stderr = proc.stderr.read()
    timed_out = timer is not None and not timer.is_alive() and code == -9 and not sampler.killed
    if timer:
        timer.cancel()
    return (
        reports,
        (124 if timed_out else code),
        stderr.strip().splitlines()[-1:][0] if stderr.strip() else "",
        sampler,
    )


def _bulk(out: Outcome, images: dict[str, bytes], work: Path) -> None:
    folder, parked = work / "files", work / "done"
    names = _write(folder, images)
    parked.mkdir()
    reported: set[str] = set()
    for _ in range(MAX_RUNS):
        reports, code, last_error, sampler = _analyze(folder, work / "data", None)
        for name, refused, seconds in reports:
            if name != CONTROL:
                reported.add(name)
                out.record(name, 422 if refused else 200, seconds)
                shutil.move(folder / name, parked / name)
        if sampler.peak - sampler.baseline > out.peak_extra_mb:
            out.peak_extra_mb, out.peak_case = sampler.peak - sampler.baseline, sampler.peak_case
        if code == 0:
            return
        crashed = next((n for n in names if n not in reported and n != CONTROL), None)
        if crashed is None:
            out.notes.append(f"exit {code} after every file was reported: {last_error}")
            return
        out.record(crashed, -1, 0.0, f"(exit {code}: {last_error[:200]})")
        reported.add(crashed)
        shutil.move(folder / crashed, parked / crashed)


def _special(out: Outcome, control: bytes, work: Path, name: str) -> None:
    folder = work / name
    folder.mkdir(parents=True)
    (folder / CONTROL).write_bytes(control)
    target = folder / "photo.jpg"
    if name == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    began = time.perf_counter()
    reports, code, last_error, sampler = _analyze(folder, work / "data", SPECIAL_TIMEOUT_S)
    seconds = time.perf_counter() - began
    done = {n: refused for n, refused, _ in reports}
    if sampler.killed:
        detail = f"(unbounded memory: killed at {sampler.peak:,.0f} MB after {seconds:.0f} s)"
        out.record(f"special:{name}", 0, seconds, detail)
    elif code == 124:
        out.record(f"special:{name}", 0, seconds, f"(still running after {SPECIAL_TIMEOUT_S:.0f} s)")
    elif code != 0 or "photo.jpg" not in done:
        out.record(f"special:{name}", -1, seconds, f"(exit {code}: {last_error[:200]})")
    else:
        out.record(f"special:{name}", 422 if done["photo.jpg"] else 200, seconds)


def run_cli(images: dict[str, bytes], work: Path) -> Outcome:
    """Every hostile file through `feedlens analyze`, then the special files."""
    out = Outcome("cli")
    control = images["control-png"]
    _bulk(out, {CONTROL: control, **{k: v for k, v in images.items() if k != "control-png"}}, work / "bulk")
    for name in ("dev-zero-symlink", "fifo"):
        _special(out, control, work / "special", name)
    return out
