"""Compression: a trained classifier to ONNX, static int8 (QDQ) quantization, and the keep-or-drop decision.

`export_onnx` writes the model as the `labels` model is written (TorchScript exporter, opset 17, dynamic
batch, outputs `logits` (N, K) and `features` (N, 1280)) and refuses an export that disagrees with torch.
`quantize_int8` calibrates activation ranges on caller-supplied images (a workspace's own, ideally).
`compress` does both, then measures fp32 and int8 accuracy on a test split and their speed in the same run
(interleaved rounds, so a burst of load elsewhere hits both), and keeps int8 only when it loses at most
`max_loss_points` accuracy points. Inference needs only ONNX Runtime and numpy (`OnnxClassifier`).
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from feedlens.core.imageops import softmax
from feedlens.runtime.sessions import InferenceSession, open_session
from feedlens.training.inputs import ImageLike, LabelledImages, check_labels, eval_array, load_image

if TYPE_CHECKING:
    from feedlens.training.network import TrainedClassifier

OPSET = 17
EXPORT_ATOL = 1e-3  # max |logit| difference torch vs ONNX Runtime tolerated at export (as conversions.py)
DEFAULT_MAX_LOSS_POINTS = 1.0
# A test split of a few labelled images cannot see a broken int8 model that happens to get them right:
# int8 must also give fp32's top-1 answer on this share of all the images it is checked on (test + extra).
DEFAULT_MIN_AGREEMENT = 0.95


def export_onnx(model: TrainedClassifier, out: Path) -> Path:
    """Write `model` (a TrainedClassifier) to `out` as ONNX; checked against torch on a fixed input."""
    import torch

    net = model.net.eval()

    class LogitsAndFeatures(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out: tuple[torch.Tensor, torch.Tensor] = self.net.forward_with_features(x)
            return out

    wrapper = LogitsAndFeatures().eval()
    sample = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 3, 224, 224), dtype=np.float32))
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # deprecation and constant-folding notes; the export is checked below
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper,
            (sample,),
            str(out),
            input_names=["input"],
            output_names=["logits", "features"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "features": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    with torch.no_grad():
        expected = wrapper(sample)[0].numpy()
    logits = open_session(out, threads=1).run({"input": sample.numpy()})[0]
    if not np.allclose(logits, expected, atol=EXPORT_ATOL):
        out.unlink()
        raise RuntimeError(
            f"the ONNX export disagrees with torch (max diff {np.abs(logits - expected).max():.2e}); refused"
        )
    return out


class OnnxClassifier:
    """An exported classifier on ONNX Runtime (fp32 or int8): the same preprocessing as the torch model."""

    def __init__(self, path: Path, class_names: Sequence[str], threads: int = 1) -> None:
        self.path = path
        self.class_names = tuple(class_names)
        self.session: InferenceSession = open_session(path, threads)

    def logits(self, batch: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """(N, 3, 224, 224) preprocessed -> (N, K) logits."""
        parts = [
            self.session.run({"input": batch[s : s + batch_size]})[0]
            for s in range(0, len(batch), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.class_names)), dtype=np.float32)

    def predict_proba(self, images: Sequence[ImageLike], batch_size: int = 16) -> np.ndarray:
        """(N, K) float32 class probabilities, columns in `class_names` order."""
        batch = eval_array([load_image(im) for im in images])
        return softmax(self.logits(batch, batch_size).astype(np.float64)).astype(np.float32)


def _batches(images: Sequence[ImageLike], batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    for start in range(0, len(images), batch_size):
        yield {"input": eval_array([load_image(im) for im in images[start : start + batch_size]])}


def quantize_int8(
    fp32: Path, out: Path, calibration_images: Sequence[ImageLike], *, batch_size: int = 8
) -> Path:
    """Static int8 QDQ quantization of `fp32` into `out`, ranges calibrated (min/max) on the images.

    Weights are int8 per output channel (a per-tensor scale crushes EfficientNet's depthwise filters, whose
    ranges differ by orders of magnitude between channels); activations uint8, ORT's recommended pairing
    for x86-64. The model is shape-inferred and optimised first (`quant_pre_process`), as ORT advises.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration_images:
        raise ValueError("int8 calibration needs at least one image")

    class Reader(CalibrationDataReader):  # type: ignore[misc]  # ORT's base class is untyped
        def __init__(self) -> None:
            self._feeds = _batches(calibration_images, batch_size)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared))
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    return out


def _time_per_image(model: OnnxClassifier, batch: np.ndarray) -> float:
    start = time.perf_counter()
    model.logits(batch)
    return (time.perf_counter() - start) / len(batch)


def compress(
    fp32: Path,
    class_names: Sequence[str],
    calibration_images: Sequence[ImageLike],
    test: LabelledImages,
    *,
    out: Path | None = None,
    max_loss_points: float = DEFAULT_MAX_LOSS_POINTS,
    threads: int = 1,
    rounds: int = 5,
    agreement_images: Sequence[ImageLike] = (),
    min_agreement: float = DEFAULT_MIN_AGREEMENT,
) -> dict[str, Any]:
    """Quantize `fp32` to int8 (`out`, default beside it), compare on `test`, keep int8 if within the bound
    and if it agrees with fp32's top-1 on at least `min_agreement` of the test and `agreement_images`.

    Returns a report: both accuracies, the change in points (int8 - fp32), top-1 agreement, ms per image of
    each (median of `rounds` interleaved passes over the test images, batches of 16, `threads` threads), the
    speed-up (fp32 time / int8 time), file sizes, `kept` and `model` (the path to use). A rejected int8
    file is deleted.
    """
    if max_loss_points < 0:
        raise ValueError(
            f"max_loss_points must be >= 0 (accuracy points int8 may lose), got {max_loss_points}"
        )
    y = check_labels(test, len(class_names), "test", every_class=False)
    int8 = out or fp32.with_name(fp32.stem + ".int8.onnx")
    quantize_int8(fp32, int8, calibration_images)
    batch = eval_array([load_image(im) for im in test.images])
    models = {
        "fp32": OnnxClassifier(fp32, class_names, threads),
        "int8": OnnxClassifier(int8, class_names, threads),
    }
    predicted = {name: m.logits(batch).argmax(axis=1) for name, m in models.items()}  # also the warm-up
    accuracy = {name: float((p == y).mean()) for name, p in predicted.items()}
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            times[name].append(_time_per_image(model, batch))
    ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
    change = 100 * (accuracy["int8"] - accuracy["fp32"])
    agree = [predicted["int8"] == predicted["fp32"]]
    if agreement_images:  # unlabelled: only whether int8 answers as fp32 does
        extra = eval_array([load_image(im) for im in agreement_images])
        agree.append(
            models["int8"].logits(extra).argmax(axis=1) == models["fp32"].logits(extra).argmax(axis=1)
        )
    agreement = float(np.concatenate(agree).mean())
    kept = -change <= max_loss_points + 1e-9 and agreement >= min_agreement
    report = {
        "fp32_accuracy": accuracy["fp32"],
        "int8_accuracy": accuracy["int8"],
        "accuracy_change_points": change,
        "top1_agreement": float((predicted["int8"] == predicted["fp32"]).mean()),
        "agreement": agreement,  # on the test images and `agreement_images`
        "agreement_images": len(y) + len(agreement_images),
        "min_agreement": min_agreement,
        "fp32_ms_per_image": ms["fp32"],
        "int8_ms_per_image": ms["int8"],
        "speedup": ms["fp32"] / ms["int8"],
        "fp32_bytes": fp32.stat().st_size,
        "int8_bytes": int8.stat().st_size,
        "max_loss_points": max_loss_points,
        "kept": kept,
        "model": str(int8 if kept else fp32),
        "test_images": len(y),
        "calibration_images": len(calibration_images),
        "threads": threads,
        "rounds": rounds,
    }
    if not kept:
        del models
        int8.unlink()
    return report
