"""One session interface over the inference runtimes; the runtime is chosen by the model file's suffix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from feedlens.core.errors import ConfigError, ModelStoreError


class InferenceSession(Protocol):
    """A loaded model. `run` takes named float32 arrays and returns the outputs in model order."""

    @property
    def input_names(self) -> tuple[str, ...]: ...

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]: ...


class OnnxSession:
    """ONNX Runtime on CPU with a fixed intra-op thread count (workers x threads = cores)."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No arena: with dynamic shapes (NudeNet, OCR) it keeps the largest batch's buffers forever;
        # measured on 100 mixed-size images, resident memory 915 -> 600 MB at the same speed.
        options.enable_cpu_mem_arena = False
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own untyped errors for unreadable graphs
            raise ModelStoreError(
                f"ONNX Runtime cannot load {path}: {exc}", fix="feedlens store pull --force"
            ) from exc
        self._inputs = tuple(i.name for i in self._session.get_inputs())

    @property
    def input_names(self) -> tuple[str, ...]:
        return self._inputs

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        outputs: list[np.ndarray] = self._session.run(None, inputs)
        return outputs


class LiteRTSession:
    """LiteRT (TensorFlow Lite) interpreter; fixed-size models, so a batch runs one sample at a time."""

    def __init__(self, path: Path, threads: int) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ConfigError(f"{path} needs LiteRT: pip install ai-edge-litert") from exc
        self._interpreter: Any = Interpreter(model_path=str(path), num_threads=threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()
        self._output = self._interpreter.get_output_details()

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(str(d["name"]) for d in self._input)

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        batch = len(next(iter(inputs.values())))
        results: list[list[np.ndarray]] = [[] for _ in self._output]
        for row in range(batch):
            for detail in self._input:
                sample = inputs[str(detail["name"])][row : row + 1]
                self._interpreter.set_tensor(detail["index"], sample.astype(detail["dtype"], copy=False))
            self._interpreter.invoke()
            for k, detail in enumerate(self._output):
                results[k].append(self._interpreter.get_tensor(detail["index"]).copy())
        return [np.concatenate(parts) for parts in results]


class TorchSession:
    """A user-supplied torch model without an ONNX export: `torch.export` (.pt2) or TorchScript (.pt)."""

    def __init__(self, path: Path, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self._torch = torch
        if path.suffix.lower() == ".pt2":
            self._module = torch.export.load(str(path)).module()
        else:  # TorchScript is deprecated upstream but is what many users still have
            self._module = torch.jit.load(str(path), map_location="cpu").eval()  # type: ignore[no-untyped-call]
        self._names = ("input",)

    @property
    def input_names(self) -> tuple[str, ...]:
        return self._names

    def run(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._torch.inference_mode():
            tensors = [self._torch.from_numpy(v) for v in inputs.values()]
            out = self._module(*tensors)
        outs = out if isinstance(out, tuple | list) else (out,)
        return [o.numpy() for o in outs]


_BY_SUFFIX: dict[str, type[OnnxSession] | type[LiteRTSession] | type[TorchSession]] = {
    ".onnx": OnnxSession,
    ".tflite": LiteRTSession,
    ".pt2": TorchSession,
    ".pt": TorchSession,
    ".torchscript": TorchSession,
}


def open_session(path: Path, threads: int) -> InferenceSession:
    """Load `path` with the runtime its suffix names; an unknown suffix fails loudly."""
    try:
        session_type = _BY_SUFFIX[path.suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(_BY_SUFFIX))
        raise ConfigError(f"no runtime for model file {path.name!r} (known suffixes: {known})") from None
    return session_type(path, threads)
