"""Content-addressed files: stored image copies and thumbnails, named by the SHA-256 of their bytes.

Writes are atomic (temp file + rename in the same folder), so a crash leaves either the whole file or
none; writing the same content twice is a no-op. Layout: <root>/<kind>/<ab>/<cd>/<sha256>.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from feedlens.core.files import write_atomic

_SHA256 = re.compile(r"[0-9a-f]{64}(\.[a-z0-9]{1,8})?")  # a digest, optionally with a file suffix
KINDS = ("originals", "thumbnails", "staging", "logos", "models", "reports")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, kind: str, digest: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"unknown blob kind {kind!r}")
        if not _SHA256.fullmatch(digest):
            raise ValueError("blob names are sha256 hex digests (optionally .suffix)")  # blocks traversal
        return self.root / kind / digest[:2] / digest[2:4] / digest

    def put(self, kind: str, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.put_as(kind, digest, data)
        return digest

    def put_as(self, kind: str, name: str, data: bytes) -> Path:
        """Store `data` under `name` (a sha256, e.g. of the original a thumbnail was made from)."""
        path = self.path(kind, name)
        if path.exists():
            return path
        # content-addressed: the name is decided by the data, so the folder's fsync can wait for the OS
        return write_atomic(path, data, durable=False)

    def get(self, kind: str, digest: str) -> bytes:
        return self.path(kind, digest).read_bytes()

    def exists(self, kind: str, digest: str) -> bool:
        return self.path(kind, digest).exists()

    def delete(self, kind: str, digest: str) -> bool:
        path = self.path(kind, digest)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def count(self, kind: str) -> int:
        folder = self.root / kind
        if not folder.exists():
            return 0
        return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
