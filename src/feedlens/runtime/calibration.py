"""Batch sizes by measurement: the forward batch that is fastest per image, per model and per machine.

One batch size for every model is wrong both ways: on 2 cores EfficientNet-Lite0 costs 5.6 / 5.9 / 10.2 ms
per image at batch 1 / 4 / 16 (a batch of 16 overflows the caches), while NudeNet is cheapest at 4.
`calibrate` times each model with a dynamic batch dimension on random inputs of its own shape at a few batch
sizes and records the fastest (the smallest within `TOLERANCE` of the best: less memory, less latency) in
`<models>/.cache/batch-sizes.json`, keyed by the machine, the artifact's version and the thread count, so a
copied model folder or a new CPU is measured again rather than trusted. `feedlens store pull` and `feedlens
store calibrate` write it; analyzers read it (`Analyzer.batch_size`); FEEDLENS_BATCH_SIZE, when set, wins.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from feedlens.core.files import write_atomic

if TYPE_CHECKING:
    from feedlens.runtime.store import ModelStore

log = logging.getLogger(__name__)

CANDIDATES = (1, 2, 4, 8, 16)
TOLERANCE = 0.05  # a smaller batch within 5% of the fastest is preferred
MIN_IMAGES = 32  # images timed per candidate over all rounds, after one warm-up run
ROUNDS = 4
FILE = "batch-sizes.json"


def machine_key(threads: int) -> str:
    """What makes a measurement transferable: CPU model, logical cores and the intra-op threads used."""
    cpu = platform.processor() or platform.machine()
    try:  # the model name is more specific than the architecture where Linux tells it
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}|cores={os.cpu_count()}|threads={threads}"


@dataclass(frozen=True, slots=True)
class Measurement:
    """ms per image at each batch size tried, and the chosen batch."""

    artifact: str
    ms_per_image: dict[int, float]
    batch: int

    @classmethod
    def choose(cls, artifact: str, ms_per_image: dict[int, float]) -> Measurement:
        best = min(ms_per_image.values())
        batch = min(b for b, ms in ms_per_image.items() if ms <= best * (1 + TOLERANCE))
        return cls(artifact, ms_per_image, batch)


def dynamic_input(
    session: Any, sample: tuple[int, ...] | None = None
) -> tuple[str, tuple[int, ...], np.dtype[Any]] | None:
    """(name, per-sample shape, dtype) of an ONNX Runtime session's single input whose first dimension is
    dynamic; the other dimensions are the model's fixed ones, or `sample` where the model leaves them open
    (NudeNet takes any height and width: its analyzer feeds 3x320x320). None when there is nothing to
    choose (a fixed batch) or no shape to time."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        return None
    shape = inputs[0].shape
    if len(shape) < 2 or isinstance(shape[0], int):
        return None
    fixed = tuple(d if isinstance(d, int) else None for d in shape[1:])
    if sample is None:
        if None in fixed:
            return None
        sample = tuple(int(d) for d in fixed if d is not None)
    elif len(sample) != len(fixed) or any(
        f is not None and f != s for f, s in zip(fixed, sample, strict=True)
    ):
        return None
    dtype = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int32)": np.int32}.get(
        inputs[0].type
    )
    if dtype is None:
        return None
    return inputs[0].name, sample, np.dtype(dtype)


def time_batches(
    run: Callable[[np.ndarray], object],
    sample: tuple[int, ...],
    dtype: np.dtype[Any],
    candidates: Sequence[int],
    rounds: int = ROUNDS,
) -> dict[int, float]:
    """Best ms per image of `run` at each batch size (random inputs). Rounds interleave the candidates and
    the minimum is kept: a burst of load elsewhere slows one round of one candidate, not the choice."""
    rng = np.random.default_rng(0)
    batches = {}
    for batch in candidates:
        inputs = rng.random((batch, *sample), dtype=np.float32)
        batches[batch] = inputs if dtype == np.float32 else (inputs * 255).astype(dtype)
        run(batches[batch])  # warm-up: first-run allocations and graph specialisation
    best = {batch: float("inf") for batch in candidates}
    for _ in range(rounds):
        for batch in candidates:
            for _ in range(max(1, MIN_IMAGES // batch // rounds)):
                start = time.perf_counter()
                run(batches[batch])
                best[batch] = min(best[batch], (time.perf_counter() - start) * 1000 / batch)
    return {batch: round(ms, 3) for batch, ms in best.items()}


def measure(
    path: Path,
    artifact: str,
    threads: int,
    sample: tuple[int, ...] | None = None,
    candidates: Sequence[int] = CANDIDATES,
) -> Measurement | None:
    """Time the ONNX model at `path`; None when it has no dynamic batch dimension (nothing to choose)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    found = dynamic_input(session, sample)
    if found is None:
        return None
    name, shape, dtype = found
    timings = time_batches(lambda x: session.run(None, {name: x}), shape, dtype, candidates)
    return Measurement.choose(artifact, timings)


class BatchSizes:
    """The recorded choices: `<models>/.cache/batch-sizes.json`, {machine key: {artifact@version: entry}}."""

    def __init__(self, models_dir: Path) -> None:
        self.path = models_dir / ".cache" / FILE

    def _read(self) -> dict[str, dict[str, dict[str, Any]]]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, artifact_version: str, threads: int) -> int | None:
        entry = self._read().get(machine_key(threads), {}).get(artifact_version)
        batch = entry.get("batch") if isinstance(entry, dict) else None
        return batch if isinstance(batch, int) and batch >= 1 else None

    def record(self, artifact_version: str, threads: int, measured: Measurement) -> None:
        data = self._read()
        data.setdefault(machine_key(threads), {})[artifact_version] = {
            "batch": measured.batch,
            "ms_per_image": {str(b): ms for b, ms in measured.ms_per_image.items()},
        }
        write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True).encode())


def calibrate(
    store: ModelStore, threads: int, models: dict[str, tuple[int, ...] | None]
) -> list[Measurement]:
    """Measure each model (artifact -> per-sample input shape, None: the model's own) and record its best
    batch on this machine. Models without a dynamic batch dimension are skipped."""
    sizes = BatchSizes(store.root)
    done = []
    for name, sample in models.items():
        spec = store.manifest.get(name)
        measured = measure(store.path(name), name, threads, sample)
        if measured is None:
            continue
        sizes.record(f"{name}@{spec.version}", threads, measured)
        log.info("%s: batch %d (%s ms per image)", name, measured.batch, measured.ms_per_image)
        done.append(measured)
    return done
