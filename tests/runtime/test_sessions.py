"""The session interface with tiny models the tests build themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from feedlens.core.errors import ConfigError, ModelStoreError
from feedlens.runtime.sessions import open_session
from feedlens.services.factory import Services


class _Double(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 + 1


def test_onnx_session_runs_a_tiny_model(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(
        _Double(),
        (torch.zeros(1, 3),),
        str(path),
        input_names=["input"],
        output_names=["y"],
        dynamic_axes={"input": {0: "n"}},
        dynamo=False,
    )
    session = open_session(path, threads=1)
    assert session.input_names == ("input",)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(session.run({"input": x})[0], x * 2 + 1)


def test_torchscript_session_runs_a_tiny_model(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt"
    torch.jit.save(torch.jit.script(_Double()), str(path))
    x = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_allclose(open_session(path, threads=1).run({"input": x})[0], x * 2 + 1)


def test_torch_export_session_runs_a_tiny_model(tmp_path: Path) -> None:
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(_Double(), (torch.zeros(2, 3),)), str(path))
    x = np.full((2, 3), 2.0, dtype=np.float32)
    np.testing.assert_allclose(open_session(path, threads=1).run({"input": x})[0], x * 2 + 1)


def test_litert_session_runs_the_emotion_model(services: Services) -> None:
    session = open_session(services.store.path("fer-emotion-tflite"), threads=1)
    assert session.input_names == ("x",)
    faces = np.random.default_rng(0).uniform(-1, 1, (3, 64, 64, 1)).astype(np.float32)
    [probs] = session.run({"x": faces})  # a fixed batch-1 model: the session loops over the batch
    assert probs.shape == (3, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert not np.allclose(probs[0], probs[1])  # each row is its own sample


def test_unknown_suffix_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no runtime for model file"):
        open_session(tmp_path / "model.caffemodel", threads=1)


def test_garbage_onnx_is_a_model_store_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"not a protobuf")
    with pytest.raises(ModelStoreError, match="feedlens store pull"):
        open_session(path, threads=1)
