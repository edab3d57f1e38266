"""Secrets the processes of one deployment share through its data folder.

The web app's session cookies are signed with one (api/session.py). Kept in the data folder, which every
API replica mounts (docs/scale.md), a cookie one replica issued is accepted by all of them, and a restart
no longer logs browsers out. Anyone who can read the data folder can read the database beside it, so the
file adds no new exposure; it is created 0600 all the same.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SIZE = 32


def shared_secret(folder: Path, name: str) -> bytes:
    """The SIZE random bytes stored as `folder/name.key`, made on first use. Processes starting together
    agree: the file appears whole (written aside, then hard-linked into place, which fails if another
    process got there first) and everyone reads the one that won. A file of the wrong size is replaced."""
    path = folder / f"{name}.key"
    found = _read(path)
    if found is not None:
        return found
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    aside = folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(secrets.token_bytes(SIZE))
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(aside, path)
        except FileExistsError:  # another process won, or the file there is damaged
            if _read(path) is None:
                os.replace(aside, path)
    finally:
        aside.unlink(missing_ok=True)
    won = _read(path)
    if won is None:
        raise OSError(f"{path} could not be written whole")
    return won


def _read(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data if len(data) == SIZE else None
