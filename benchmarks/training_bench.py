"""Training benchmarks (issue 7): probe fitting time, fine-tune throughput, int8 speed-up and accuracy change.

Data: the Tux Paint stamp photos (tests/support/tuxpaint.py), 12 categories, flattened onto white at 256 px,
split once (stratified, by a hash of each stamp's path) into development and test halves; the development
half is split again 80/20 into training and validation.

1. Probe: 1,000 cached embeddings = 5 augmented views of each development image (the first 1,000), pooled
   1280-d features from the `labels` model on ONNX Runtime, as the analyzer stores them. Timed: one fit at
   the default C, and the whole probe selection (every C of the grid, chosen by validation loss), which is
   what `probe()` does once features are cached. Target: <= 5 s.
2. Fine-tune: `finetune` with 2 cached augmentation views per image, every epoch timed; the first two epochs
   compute views (augmentation + frozen layers + top), later ones train the top on cached outputs.
3. Compression: the fine-tuned model exported to ONNX, int8 QDQ calibrated on 64 training images, fp32 and
   int8 compared on the test half in the same run (1 ONNX Runtime thread, interleaved rounds).

Run: `benchmarks/training_bench.py --out docs/benchmarks.md` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from run import machine, write_section
from tests.support.tuxpaint import (
    CATEGORIES,
    Stamp,
    ensure_stamps,
    load_stamps,
    package_version,
    render,
    split,
)

from feedlens.config import load_settings
from feedlens.runtime.sessions import open_session
from feedlens.services.factory import build_services
from feedlens.training.augment import Augmenter, view_seed
from feedlens.training.export import compress, export_onnx
from feedlens.training.finetune import FinetuneConfig, finetune
from feedlens.training.inputs import LabelledImages, eval_array, load_image
from feedlens.training.probe import DEFAULT_C, fit_linear_head, select_linear_head

START, END = "<!-- bench:training:start -->", "<!-- bench:training:end -->"
EMBEDDINGS = 1000
VIEWS = 5
PROBE_TARGET_S = 5.0
CALIBRATION = 64


def labelled(stamps: list[Stamp], names: list[str]) -> LabelledImages:
    return LabelledImages([render(s, 256) for s in stamps], [names.index(s.category) for s in stamps])


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `repeats` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def embed(session_path: Path, batch: np.ndarray, threads: int) -> np.ndarray:
    session = open_session(session_path, threads)
    return np.concatenate([session.run({"input": batch[s : s + 32]})[1] for s in range(0, len(batch), 32)])


@dataclass(frozen=True)
class Data:
    names: list[str]
    train: LabelledImages
    val: LabelledImages
    test: LabelledImages
    source: str  # one line saying where the images come from


def load_data() -> Data:
    root = ensure_stamps()
    stamps = load_stamps(root)
    names = [c for c in CATEGORIES if any(s.category == c for s in stamps)]
    dev, test = split(stamps)
    train, val = split(dev, test_fraction=0.2, seed="validation")
    source = (
        f"the {len(stamps)} Tux Paint stamp photos (Debian `tuxpaint-stamps-default` "
        f"{package_version(root)}) in {len(names)} categories, on white at 256 px: {len(train)} training, "
        f"{len(val)} validation, "
        f"{len(test)} test images (stratified split by a hash of each stamp's path). Isolated objects on "
        "white: an easier task than feed photos."
    )
    return Data(names, labelled(train, names), labelled(val, names), labelled(test, names), source)


def bench_probe(data: Data, onnx_model: Path, threads: int) -> dict[str, Any]:
    """Fit times on 1,000 cached embeddings, and the probe's test accuracy for context."""
    augmenter = Augmenter()
    rows = [(i, v) for v in range(VIEWS) for i in range(len(data.train))][:EMBEDDINGS]
    images = [load_image(im) for im in data.train.images]
    views = torch.stack([augmenter(images[i], view_seed(0, i, v)) for i, v in rows]).numpy()
    x_train = embed(onnx_model, views, threads)
    y_train = np.array([data.train.labels[i] for i, _ in rows])
    x_val = embed(onnx_model, eval_array([load_image(im) for im in data.val.images]), threads)
    y_val = np.asarray(data.val.labels)
    x_test = embed(onnx_model, eval_array([load_image(im) for im in data.test.images]), threads)
    k = len(data.names)
    one_fit = timed(lambda: fit_linear_head(x_train, y_train, k, c=DEFAULT_C), 3)
    grid_fit = timed(lambda: select_linear_head(x_train, y_train, k, val_features=x_val, val_labels=y_val), 3)
    w, b, history = select_linear_head(x_train, y_train, k, val_features=x_val, val_labels=y_val)
    return {
        "one_fit": one_fit,
        "grid_fit": grid_fit,
        "grid": len(history),
        "c": min(history, key=lambda h: h["val_loss"])["c"],
        "accuracy": float(((x_test @ w.T + b).argmax(axis=1) == np.asarray(data.test.labels)).mean()),
    }


def bench_finetune(data: Data, weights: Path, threads: int, epochs: int) -> tuple[Any, dict[str, Any]]:
    """Images/s of epochs that compute views and of epochs on cached frozen outputs."""
    config = FinetuneConfig(epochs=epochs, augment_variants=2, patience=epochs, threads=threads)
    began = time.perf_counter()
    model = finetune(data.train, data.val, data.names, weights, config=config)
    total = time.perf_counter() - began
    trained = [h for h in model.history if h["epoch"] > 0]
    speed = [len(data.train) / h["train_seconds"] for h in trained]
    return model, {
        "computing": speed[: config.augment_variants],
        "cached": speed[config.augment_variants :],
        "total": total,
        "best_epoch": next(h["epoch"] for h in model.history if h["best"]),
        "train_blocks": config.train_blocks,
        "epochs": epochs,
    }


def bench_int8(data: Data, model: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="feedlens-train-bench-") as tmp:
        fp32 = export_onnx(model, Path(tmp) / "model.onnx")
        calibration = list(data.train.images[:: max(1, len(data.train) // CALIBRATION)])[:CALIBRATION]
        return compress(fp32, data.names, calibration, data.test, threads=1, rounds=5)


def render_section(
    data: Data, probe: dict[str, Any], tune: dict[str, Any], r: dict[str, Any], threads: int
) -> str:
    met = "met" if probe["grid_fit"] <= PROBE_TARGET_S else "**not met**"
    fp32_pct, int8_pct = 100 * r["fp32_accuracy"], 100 * r["int8_accuracy"]
    verdict = "kept" if r["kept"] else "dropped"
    lines = [
        START,
        "## Training (issue 7)",
        "",
        f"`benchmarks/training_bench.py`, run {date.today().isoformat()}. Data: {data.source}",
        "",
        *(f"- {line}" for line in machine(load_settings())),
        "",
        "| what | measured | target |",
        "|---|---|---|",
        f"| probe training on {EMBEDDINGS:,} cached embeddings ({len(data.names)} classes, 1280-d): C chosen "
        f"from {probe['grid']} by validation loss (what `probe()` does) | {probe['grid_fit']:.2f} s (median "
        f"of 3) | <= {PROBE_TARGET_S:g} s: {met} |",
        f"| the same, one fit at C = {DEFAULT_C:g} | {probe['one_fit']:.2f} s | |",
        f"| fine-tune, epochs that compute views (augmentation + frozen layers + top), {threads} torch "
        f"threads | {', '.join(f'{v:.1f}' for v in tune['computing'])} images/s | reported |",
        f"| fine-tune, epochs on cached frozen outputs (top only) | "
        f"{', '.join(f'{v:.0f}' for v in tune['cached'])} images/s | reported |",
        f"| int8 speed-up (ONNX Runtime, 1 thread, {r['test_images']} test images, median of {r['rounds']} "
        f"interleaved rounds) | {r['speedup']:.2f}x ({r['fp32_ms_per_image']:.1f} -> "
        f"{r['int8_ms_per_image']:.1f} ms/image) | reported |",
        f"| int8 accuracy change (calibrated on {r['calibration_images']} training images) | "
        f"{r['accuracy_change_points']:+.1f} points ({fp32_pct:.1f}% -> {int8_pct:.1f}%), top-1 agreement "
        f"{100 * r['top1_agreement']:.1f}%; int8 {verdict} | loss <= {r['max_loss_points']:g} point |",
        "",
        f"Context: the probe (C = {probe['c']:g}) scores {100 * probe['accuracy']:.1f}% on the test images; "
        f"the fine-tune ({tune['train_blocks']} blocks + conv head + head, {tune['epochs']} epochs, "
        f"{tune['total']:.0f} s in all, best epoch {tune['best_epoch']}) {fp32_pct:.1f}%. Model files: fp32 "
        f"{r['fp32_bytes'] / 1e6:.1f} MB, int8 {r['int8_bytes'] / 1e6:.1f} MB.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="benchmarks markdown file to update")
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    settings = load_settings()
    store = build_services(settings).store
    threads = settings.threads_per_worker
    data = load_data()
    print(data.source, flush=True)
    probe = bench_probe(data, store.path("efficientnet-lite0-onnx"), threads)
    print(probe, flush=True)
    model, tune = bench_finetune(data, store.path("efficientnet-lite0-pth"), threads, args.epochs)
    print(tune, flush=True)
    report = bench_int8(data, model)
    print(report, flush=True)
    section = render_section(data, probe, tune, report, threads)
    print(section)
    if args.out:
        write_section(args.out, section, START, END)


if __name__ == "__main__":
    main()
