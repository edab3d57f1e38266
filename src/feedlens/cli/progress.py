"""Progress of long commands (ingest, analyze, reanalyze, label imports) and a clean Ctrl-C.

On a terminal: a rich bar with counts, items per second and the time left. Anywhere else (a pipe, a log
file, CI): one plain line to stderr every PROGRESS_EVERY_S seconds, so a long run is never silent.

The work runs in a worker thread while the main thread waits in short, interruptible steps: Python runs
signal handlers only in the main thread and only between bytecodes, so a main thread inside a long model
call would leave Ctrl-C unanswered for seconds. The first Ctrl-C asks the work to stop at the next batch
boundary (what is committed stays committed); the second ends the process at once with exit 130. That is
as safe as a kill: every batch commits in one transaction, so the batch in flight is simply not stored.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Generic, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

T = TypeVar("T")
EXIT_INTERRUPTED = 130
PROGRESS_EVERY_S = 10.0  # the plain-line interval off a terminal
POLL_S = 0.2  # how often the waiting main thread looks at signals and the clock


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def until_stopped(items: Iterable[T], stop: threading.Event) -> Iterator[T]:
    """`items` until `stop` is set: a lazy consumer (a pipeline reading ahead) takes no more."""
    for item in items:
        if stop.is_set():
            return
        yield item


def duration(seconds: float) -> str:
    """0:42, 3:07, 1:02:03: how long, in a form everyone reads."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Rate(ProgressColumn):
    """Items per second over rich's recent window."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "items")
        return Text(f"{speed:.1f} {unit}/s" if speed else f"-- {unit}/s", style="progress.data.speed")


class _Left(ProgressColumn):
    """`ETA m:ss` once a rate is known."""

    def render(self, task: Task) -> Text:
        left = task.time_remaining
        if task.finished:
            return Text(f"took {duration(task.finished_time or 0.0)}", style="progress.elapsed")
        return Text("ETA " + ("-:--" if left is None else duration(left)), style="progress.remaining")


class Reporter:
    """Progress of one run: `loading()` while models load, `start(total)`, `advance(n)` from any thread,
    `tick()` from the waiting main thread (prints the plain line when due), `note()` to say something
    above the bar. A context manager: the bar disappears when the run ends."""

    def __init__(self, what: str, unit: str = "images", console: Console | None = None) -> None:
        self.what = what
        self.unit = unit
        self.console = console or Console(stderr=True, highlight=False)
        self.tty = self.console.is_terminal
        self.total: int | None = None
        self.done = 0
        self.started: float | None = None
        self._created = time.monotonic()
        self._phase = "loading models"
        self._last_line = self._created
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Reporter:
        if self.tty:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[unit]}"),
                _Rate(),
                _Left(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=None, start=False, unit=self.unit)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def loading(self, what: str = "loading models") -> None:
        """Say what happens before counting starts."""
        self._phase = what
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=f"{self.what}: {what}")

    def start(self, total: int) -> None:
        with self._lock:
            self.total, self.started = total, time.monotonic()
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total, description=self.what)
            self._bar.start_task(self._task)

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)

    def note(self, message: str, markup: bool = False) -> None:
        self.console.print(message, highlight=False, soft_wrap=True, markup=markup)

    def line(self) -> str:
        """The plain progress line: `ingest into demo: 40/128 images (31%), 2.1 images/s, ETA 0:42`."""
        with self._lock:
            total, done, started = self.total, self.done, self.started
        now = time.monotonic()
        if started is None or total is None:
            return f"{self.what}: {self._phase} ({duration(now - self._created)})"
        elapsed = max(now - started, 1e-6)
        share = f" ({100 * done // total}%)" if total else ""
        head = f"{self.what}: {done}/{total} {self.unit}{share}"
        if done == 0:  # work is counted a batch at a time: say it is under way
            return f"{head}, first batch under way ({duration(elapsed)})"
        rate = done / elapsed
        left = f", ETA {duration((total - done) / rate)}" if total > done else ""
        return f"{head}, {rate:.1f} {self.unit}/s{left}"

    def tick(self) -> None:
        if self.tty:
            return
        now = time.monotonic()
        if now - self._last_line >= PROGRESS_EVERY_S:
            self._last_line = now
            self.note(self.line())


@dataclass
class Run(Generic[T]):
    value: T
    stopped: bool  # the first Ctrl-C ended it early, at a batch boundary


def run_interruptible(
    work: Callable[[threading.Event], T],
    reporter: Reporter,
    on_quit: Callable[[], str],
    batch_note: str = "the batch in flight",
) -> Run[T]:
    """Run `work(stop)` in a worker thread; `work` checks `stop` between batches and returns early when
    it is set. First Ctrl-C: set `stop` and say so. Second: print `on_quit()` (what was committed, how to
    go on) and exit 130 at once. Exceptions of `work` are raised here."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():  # no signals here: run inline
        return Run(work(stop), False)
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = work(stop)
        except BaseException as exc:  # handed to the main thread
            box["error"] = exc

    presses = [0]

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        presses[0] += 1
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    worker = threading.Thread(target=target, name="feedlens-work", daemon=True)
    noted = 0
    try:
        worker.start()
        while worker.is_alive():
            worker.join(POLL_S)
            if presses[0] >= 2:
                _quit_now(reporter, on_quit())
            if presses[0] == 1 and not noted:
                noted = 1
                reporter.note(
                    f"[yellow]Ctrl-C[/]: finishing {batch_note}, then stopping; Ctrl-C again to quit at once",
                    markup=True,
                )
            reporter.tick()
    finally:
        signal.signal(signal.SIGINT, previous)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return Run(box["value"], stop.is_set())  # type: ignore[arg-type]


def _quit_now(reporter: Reporter, message: str) -> None:
    """The second Ctrl-C: no waiting for the batch in flight (its transaction never commits)."""
    with contextlib.suppress(Exception):  # the terminal is left as it is
        reporter.close()
    reporter.note(message)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def command_line(*args: str) -> str:
    """The command that repeats this one, as one pastes it: `feedlens ingest photos --workspace demo`
    (the program as it was called when that was `feedlens`, e.g. `.venv/bin/feedlens`)."""
    called = sys.argv[0] if sys.argv and os.path.basename(sys.argv[0]) == "feedlens" else "feedlens"
    return " ".join(shlex.quote(a) for a in (called, *args))
