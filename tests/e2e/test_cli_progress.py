"""Long CLI commands as a user meets them: a progress bar on a terminal (a real pseudo-terminal), a line
every few seconds elsewhere, counts that tell images from posts and name failures, and Ctrl-C: the first
stops at a batch boundary and says what is stored and how to finish, the second quits at once; either way
the library stays consistent and a rerun finishes the rest exactly once."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from feedlens.cli import progress
from feedlens.cli.progress import Reporter, run_interruptible
from feedlens.cli.tally import IngestTally
from feedlens.config import Settings
from feedlens.services.factory import Services, build_services
from feedlens.services.ingest import IngestItem, ItemOutcome
from feedlens.storage.database import Database
from feedlens.storage.tables import Image as ImageRow
from tests.e2e.server import FEEDLENS
from tests.support.cli import Cli, in_process_cli

# Two cheap analyzers and batches of 2: many batch boundaries in a few seconds of work.
FAST = {"FEEDLENS_ANALYZERS": "labels,properties", "FEEDLENS_BATCH_SIZE": "2"}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PHOTOS = 24


@pytest.fixture(scope="module")
def photos(chelsea: Image.Image, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("progress") / "photos"
    folder.mkdir()
    for angle in range(0, 10 * PHOTOS, 10):  # distinct images
        chelsea.rotate(angle, expand=True).save(folder / f"cat-{angle:03d}.png")
    return folder


@pytest.fixture(scope="module")
def cli_services(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Services:
    """The module's in-process services: its own data folder, the FAST analyzers and batches."""
    data = tmp_path_factory.mktemp("progress-data")
    update = {"data_dir": data, "database_url": None, "analyzers": ("labels", "properties"), "batch_size": 2}
    return build_services(settings.model_copy(update=update))


# -- without models ---------------------------------------------------------------------------------------
def _outcome(source: str, status: str, image_id: str | None = None, code: str = "") -> ItemOutcome:
    item = IngestItem(source=source, path=Path(source))
    error = {"code": code, "message": code} if code else None
    return ItemOutcome(item, status, image_id=image_id, error=error)


def test_counts_name_failures_and_cap_the_list() -> None:
    tally = IngestTally()
    tally.count(_outcome("a.jpg", "added", "1"))
    tally.count(_outcome("a-again.jpg", "duplicate", "1"))  # added earlier in this run: not "already stored"
    tally.count(_outcome("b.jpg", "duplicate", "2"))
    for n in range(7):
        tally.count(_outcome(f"bad{n}.png", "failed", code="truncated"))
    assert tally.summary() == (
        "images: 1 added, 1 already stored, 7 failed (bad0.png: truncated, bad1.png: truncated, "
        "bad2.png: truncated, bad3.png: truncated, bad4.png: truncated and 2 more)"
    )


def test_the_plain_progress_line() -> None:
    reporter = Reporter("ingest into team", console=None)
    assert reporter.line().startswith("ingest into team: loading models (")
    reporter.start(128)
    assert "0/128 images (0%), first batch under way" in reporter.line()
    reporter.started = time.monotonic() - 20  # 40 images in 20 s
    reporter.advance(40)
    assert re.fullmatch(r"ingest into team: 40/128 images \(31%\), 2\.0 images/s, ETA 0:4\d", reporter.line())


def test_first_ctrl_c_stops_the_work_at_its_next_check() -> None:
    batches: list[int] = []

    def work(stop: threading.Event) -> int:
        for n in range(200):  # "batches" of 20 ms; Ctrl-C arrives during the fifth or so
            if stop.is_set():
                return n
            time.sleep(0.02)
            batches.append(n)
        return 200

    before = signal.getsignal(signal.SIGINT)
    threading.Timer(0.1, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with Reporter("test") as reporter:
        run = run_interruptible(work, reporter, lambda: "quit")
    assert run.stopped and run.value == len(batches) < 200
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


# -- in-process, with models -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def feedlens(cli_services: Services) -> Cli:
    return in_process_cli(cli_services)


def test_ingest_off_a_terminal_prints_a_progress_line(
    feedlens: Cli, photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "PROGRESS_EVERY_S", 0.0)  # every step of the wait, not every 10 s
    done = feedlens("ingest", photos, "-w", "lines")
    assert done.code == 0, done.stderr
    lines = re.findall(r"^ingest into lines: (\d+)/24 images \(\d+%\), [\d.]+ images/s.*$", done.stderr, re.M)
    assert lines and int(lines[-1]) <= PHOTOS, done.stderr
    assert "images: 24 added, 0 already stored, 0 failed" in done.stderr


def test_counts_tell_images_from_posts_and_name_failures(
    feedlens: Cli, sample_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("chelsea.png", "coffee.png"):
        (folder / name).write_bytes((sample_dir / name).read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    feed = tmp_path / "feed.jsonl"
    rows = [
        {"id": "p1", "images": ["photos/chelsea.png", "photos/coffee.png"], "caption": "#cats and #coffee"},
        {"id": "p2", "image": "photos/coffee.png"},
    ]
    feed.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{broken json\n")
    first = feedlens("ingest", folder, feed, "-w", "counts")
    assert first.code == 0, first.stderr
    failed = r"1 failed \(broken\.jpg: (corrupt|truncated)\)"
    assert re.search(
        rf"images: 2 added, 0 already stored, {failed}; posts: 2 added, 0 already stored, "
        r"1 failed \(feed\.jsonl:3: feed_invalid_json\)",
        first.stderr,
    ), first.stderr
    again = feedlens("ingest", folder, feed, "-w", "counts")
    assert re.search(
        rf"images: 0 added, 2 already stored, {failed}; posts: 0 added, 2 already stored", again.stderr
    )


# -- a real terminal, a real process, real signals --------------------------------------------------------
class Terminal:
    """`feedlens` on a pseudo-terminal (120x40), its output collected as it comes."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.process = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
        )
        os.close(slave)
        self.master = master
        self.raw = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the child closed the terminal
                return
            if not chunk:
                return
            self.raw += chunk

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode(errors="replace")).replace("\r", "\n")

    def wait_for(self, found: Callable[[], bool], timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while not found():
            assert self.process.poll() is None, f"exited {self.process.returncode} early:\n{self.text}"
            assert time.monotonic() < deadline, f"not seen in {timeout} s:\n{self.text}"
            time.sleep(0.05)

    def exit_code(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        self.reader.join(10)
        os.close(self.master)
        return code


def _stored(database: Database, workspace_blobs: Path, at_rest: bool = True) -> tuple[int, int, int]:
    """(image rows, distinct hashes, blob files); `at_rest` (no ingest running): no half-written blob."""
    with database.session() as session:
        rows = int(session.scalar(select(func.count()).select_from(ImageRow)) or 0)
        distinct = int(session.scalar(select(func.count(func.distinct(ImageRow.sha256)))) or 0)
    blobs = [p for p in (workspace_blobs / "originals").rglob("*") if p.is_file()]
    partial = [p for p in blobs if p.name.startswith(".partial")]
    assert not (at_rest and partial), partial
    return rows, distinct, len(blobs) - len(partial)


def test_ingest_on_a_terminal_shows_progress_and_stops_cleanly_on_ctrl_c(
    photos: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "FEEDLENS_DATABASE_URL"}
    env.update(FAST, FEEDLENS_DATA_DIR=str(data), TERM="xterm-256color")
    env.pop("COLUMNS", None)
    command = [FEEDLENS, "ingest", str(photos), "--workspace", "tty"]
    database = Database(f"sqlite:///{data / 'feedlens.db'}")
    try:
        # 1. a bar with images/s and ETA; the first Ctrl-C finishes the batch in flight and stops
        first = Terminal(command, env)
        first.wait_for(lambda: bool(re.search(r" [4-9]/24 images [\d.]+ images/s ETA", first.text)))
        first.process.send_signal(signal.SIGINT)
        assert first.exit_code(timeout=120) == 130, first.text
        said = first.text
        assert "Ctrl-C: finishing the batch in flight" in said
        assert (
            f"to finish, run again (stored images are skipped): {FEEDLENS} ingest {photos} --workspace tty"
            in said
        )
        stored = int(re.search(r"images: (\d+) added, 0 already stored, 0 failed", said).group(1))  # type: ignore[union-attr]
        assert 4 <= stored < 12 and f"stopped by Ctrl-C after {stored} of 24 images" in said
        assert _stored(database, data / "blobs") == (stored, stored, stored)  # what it says is what is stored

        # 2. a second Ctrl-C quits at once: the batch in flight is not stored, nothing is half-written
        second = Terminal(command, {**env, "FEEDLENS_BATCH_SIZE": "8"})  # batches that outlast 0.3 s
        # the first batch holds the images stored already and ends at once; Ctrl-C twice in the second
        second.wait_for(lambda: " 8/24 images" in second.text)  # stored < 12: the second batch has new ones
        second.process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        pressed = time.monotonic()
        second.process.send_signal(signal.SIGINT)
        assert second.exit_code(timeout=30) == 130, second.text
        assert time.monotonic() - pressed < 5, "the second Ctrl-C should not wait for the batch"
        assert (
            "quit: the batch in flight is not stored" in second.text and "to finish, run again" in second.text
        )
        rows, distinct, blobs = _stored(database, data / "blobs")
        assert rows == distinct and stored < rows <= PHOTOS and blobs >= rows  # a blob may wait for its row

        # 3. rerunning finishes the rest, exactly once
        third = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert third.returncode == 0, third.stderr
        assert f"images: {PHOTOS - rows} added, {rows} already stored, 0 failed" in third.stderr
        assert _stored(database, data / "blobs") == (PHOTOS, PHOTOS, PHOTOS)
    finally:
        database.dispose()
