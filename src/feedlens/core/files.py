"""Atomic file writes: the one place files are written so that a crash never leaves half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from feedlens.core.errors import StorageError


def write_atomic(path: Path, content: bytes | Callable[[BinaryIO], None], durable: bool = True) -> Path:
    """Write `content` (bytes, or a function writing to a binary file) to a temporary file beside `path`,
    fsync it, then rename it over `path`: a reader sees the old file or the new one, never half of one.

    A crash leaves at most a `.partial-*` file. `durable` also fsyncs the folder, so the rename itself
    survives a power cut. Files are created 0644 (readable, like any file the process would make).
    A full or read-only disk raises StorageError (typed, nothing left behind); other OSErrors pass through.
    """
    try:
        return _write_atomic(path, content, durable)
    except OSError as exc:
        typed = StorageError.from_os_error(exc, path.parent)
        if typed is None:
            raise
        raise typed from exc


def _write_atomic(path: Path, content: bytes | Callable[[BinaryIO], None], durable: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".partial-{path.name}-")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, bytes | bytearray | memoryview):
                f.write(content)
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def check_writable(folder: Path) -> None:
    """Raise StorageError unless a file can be created in `folder` (made if missing) right now: a full,
    read-only or foreign-owned data folder is found before a request or an ingest needs it."""
    probe = folder / ".feedlens-write-check"
    write_atomic(probe, b"ok", durable=False)
    probe.unlink(missing_ok=True)
