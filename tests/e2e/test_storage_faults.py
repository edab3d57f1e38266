"""A real server on a real disk that fills up or turns read-only (a small tmpfs mount): typed 507 errors,
/readyz not ready, nothing half-written, and full service again once the disk recovers. `serve` and
`ingest` on a read-only folder: one line, exit 2.

Mounting needs root (set-up and CI run as root); elsewhere these tests skip and the typed mapping is still
covered by tests/storage/test_storage_errors.py on real SQLite.
"""

from __future__ import annotations

import errno
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL.Image import Image as PILImage

from tests.conftest import encode, gradient
from tests.e2e.server import FEEDLENS, Server
from tests.support.api import auth, is_problem

DISK_BYTES = 6 * 1024 * 1024  # room for the schema, the models' caches live elsewhere (FEEDLENS_HOME)


def _mount_tmpfs(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(root)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")


class Disk:
    """The server's data folder on a tmpfs of DISK_BYTES, with its blob folder on a second one: the first
    is filled on demand, the second made read-only (a disk with files open for writing, as the database
    is, cannot be remounted read-only)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.blobs = self.data / "blobs"
        self.fillers = (root / "filler", self.blobs / "filler")

    def mount(self) -> Disk:
        _mount_tmpfs(self.root)
        _mount_tmpfs(self.blobs)
        return self

    def unmount(self) -> None:
        for mount in (self.blobs, self.root):
            subprocess.run(["umount", "-l", str(mount)], check=False)

    def fill(self) -> None:
        """Write zeros until both disks refuse: the next write anywhere on them gets ENOSPC."""
        for filler in self.fillers:
            for size in (65536, 4096, 1):  # the last partial chunks too
                try:
                    with filler.open("ab") as f:
                        while True:
                            f.write(b"\0" * size)
                            f.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC

    def free(self) -> None:
        for filler in self.fillers:
            filler.unlink(missing_ok=True)

    def blobs_read_only(self, read_only: bool) -> None:
        mode = "ro" if read_only else "rw"
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.blobs)], check=True)


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Disk]:
    mounted = Disk(tmp_path_factory.mktemp("tmpfs")).mount()
    yield mounted
    mounted.unmount()


@pytest.fixture(scope="module")
def server(disk: Disk, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    process = Server(disk.data)
    process.log = tmp_path_factory.mktemp("logs") / "server.log"  # the log must not need the full disk
    process.start()
    yield process
    process.stop()


def _upload(client: httpx.Client, key: str, data: bytes) -> httpx.Response:
    return client.post("/v1/images", headers=auth(key), files={"file": (f"{uuid.uuid4()}.png", data)})


def _fresh_image(seed: int) -> bytes:
    """A PNG no earlier upload had (the store is content-addressed: a repeat would write nothing)."""
    image = gradient(320, 240)
    image.putpixel((seed % 320, seed // 320 % 240), (seed % 256, 7, 11))
    return encode(image, "PNG")


def _count(client: httpx.Client, key: str) -> int:
    response = client.get("/v1/images", headers=auth(key), params={"limit": 200})
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def test_full_disk_gives_507_and_recovers(
    server: Server, disk: Disk, chelsea: PILImage, client: httpx.Client
) -> None:
    key = server.key("disk", "write")
    assert _upload(client, key, _fresh_image(1)).status_code == 201
    disk.fill()
    try:
        refused = _upload(client, key, encode(chelsea, "PNG"))
        is_problem(refused, 507, "storage_full")
        assert "no space left" in refused.json()["detail"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "no space left" in ready.json()["detail"]
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        assert _count(client, key) == 1  # the refused upload left no record
    finally:
        disk.free()
    assert client.get("/readyz").status_code == 200
    assert _upload(client, key, encode(chelsea, "PNG")).status_code == 201  # same image, now whole
    assert _count(client, key) == 2
    assert not list(disk.data.rglob(".partial-*"))  # no half-written file left behind


def test_read_only_disk_gives_507_and_recovers(server: Server, disk: Disk, client: httpx.Client) -> None:
    key = server.key("readonly", "write")
    disk.blobs_read_only(True)
    try:
        refused = _upload(client, key, _fresh_image(2))
        is_problem(refused, 507, "storage_not_writable")
        assert "read-only" in refused.json()["detail"]
        assert client.get("/readyz").status_code == 503
        assert _count(client, key) == 0
    finally:
        disk.blobs_read_only(False)
    assert client.get("/readyz").status_code == 200
    assert _upload(client, key, _fresh_image(2)).status_code == 201


def test_serve_and_ingest_on_a_read_only_folder_say_so_in_one_line(
    disk: Disk, server: Server, sample_dir: Path
) -> None:
    disk.blobs_read_only(True)
    try:
        env = {**server.env, "FEEDLENS_DATA_DIR": str(disk.blobs / "elsewhere")}
        for args in (["serve", "--port", "1"], ["ingest", str(sample_dir)]):
            done = subprocess.run(
                [FEEDLENS, *args], env=env, capture_output=True, text=True, timeout=300, check=False
            )
            assert done.returncode == 2, done.stderr
            lines = [line for line in done.stderr.splitlines() if line.startswith("error")]
            assert len(lines) == 1 and "[storage_not_writable]" in lines[0], done.stderr
            assert "Traceback" not in done.stderr
    finally:
        disk.blobs_read_only(False)
