"""Measuring a process under hostile input: its resident memory sampled in a thread, and the outcome of
each case (status, time) per entry point. Used by benchmarks/hostile_input.py and hostile_cli.py."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path


class RssSampler:
    """VmRSS of `pid` every `period` s, in a thread; `peak` since the last `reset`, and what was running."""

    def __init__(self, pid: int, period: float = 0.01, kill_above_mb: float | None = None) -> None:
        self.pid, self.period, self.kill_above_mb = pid, period, kill_above_mb
        self.current = ""  # the case in flight
        self.peak, self.peak_case, self.baseline = 0.0, "", 0.0
        self.killed = False  # the process grew past kill_above_mb and was killed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def reset(self) -> None:
        self.baseline = self.peak = self.rss_mb()
        self.peak_case = ""

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            rss = self.rss_mb()
            if rss > self.peak:
                self.peak, self.peak_case = rss, self.current
            if self.kill_above_mb is not None and rss > self.kill_above_mb and not self.killed:
                self.killed = True  # unbounded growth: stop it before the machine runs out of memory
                os.kill(self.pid, signal.SIGKILL)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Outcome:
    """One entry point's run."""

    entry: str
    cases: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # case -> HTTP status (0: no answer, -1: crash)
    seconds: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # "case -> what happened"
    peak_extra_mb: float = 0.0
    peak_case: str = ""
    notes: list[str] = field(default_factory=list)

    def record(self, case: str, status: int, seconds: float, detail: str = "") -> None:
        self.cases += 1
        self.statuses[case], self.seconds[case] = status, seconds
        if status >= 500 or status <= 0:
            what = {0: "no answer", -1: "crashed"}.get(status, str(status))
            self.failures.append(f"`{case}` -> {what} {detail}".rstrip())

    def slowest_refusal(self) -> tuple[float, str]:
        refused = [(s, c) for c, s in self.seconds.items() if 400 <= self.statuses[c] < 500]
        return max(refused, default=(0.0, ""))
