"""From a labelled dataset to a trained, evaluated, exported (and, if it keeps its accuracy, int8) model.

`train_model` is the whole recipe the CLI, the API and the feedback loop share: decode every image once
through the safe decoder (a bad image is a dataset problem, or skipped when asked), split stratified with a
seed, warn about and compensate under-represented classes, train a probe or fine-tune, evaluate on the test
split (against a baseline model when one is given), export ONNX, quantize to int8 and keep it only within
the accuracy bound. Everything lands in one output folder; nothing here knows about storage.

Folder layout written by `train_model` (names in `ARTIFACTS`): model.pt (torch, for Grad-CAM and as a
parent), model.onnx (fp32), model.int8.onnx (only if kept), metrics.json + report.html (the evaluation
report), training.json (what was trained on and how: the registry stores it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from feedlens.core.errors import FeedlensError
from feedlens.images import ImageDecoder
from feedlens.training.crossval import cross_validates, folds, out_of_fold
from feedlens.training.datasets import (
    DatasetError,
    Item,
    LabelledDataset,
    Problem,
    ProblemCode,
    Resolver,
    load_image,
)
from feedlens.training.export import DEFAULT_MAX_LOSS_POINTS
from feedlens.training.inputs import LabelledImages
from feedlens.training.splits import Split, class_report, class_weights, resample, split, stable_split

if TYPE_CHECKING:  # torch, kornia and scikit-learn load when a model is trained or evaluated, not before
    from feedlens.training.network import TrainedClassifier
    from feedlens.training.report import EvaluationReport, ModelInfo

KEEP_SIDE = 288  # decoded images are kept with this shorter side: enough for 224 crops after zoom-out
CALIBRATION_IMAGES = 64  # int8 ranges from up to this many training images (ORT's min/max needs few)
AGREEMENT_IMAGES = 256  # int8 must answer as fp32 does on these training images too (export.compress)
ARTIFACTS = {
    "torch": "model.pt",
    "onnx": "model.onnx",
    "int8": "model.int8.onnx",
    "metrics": "metrics.json",
    "report": "report.html",
    "training": "training.json",
}

Mode = Literal["probe", "finetune"]
Balance = Literal["weights", "resample", "none"]
SplitKind = Literal["stratified", "stable"]
Baseline = Callable[[Sequence[Image.Image]], np.ndarray]  # images -> (N, K) probabilities, our class order


@dataclass(frozen=True)
class TrainOptions:
    mode: Mode = "probe"
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    balance: Balance = "weights"  # under-represented classes: weighted loss, oversampling, or nothing
    epochs: int = 15  # fine-tuning only; early stopping usually ends sooner
    int8: bool = True
    max_int8_loss_points: float = DEFAULT_MAX_LOSS_POINTS
    skip_bad_images: bool = False  # default: a corrupt image refuses the dataset, naming every bad one
    split: SplitKind = "stratified"  # "stable": each item's part depends on it alone (the feedback loop)
    checkpoint_dir: Path | None = None  # fine-tuning writes last.pt here after every epoch
    resume: bool = False  # continue the run whose last.pt is in checkpoint_dir (same data and options)
    threads: int | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("probe", "finetune"):
            raise ValueError(f"mode must be probe or finetune, got {self.mode!r}")
        if self.balance not in ("weights", "resample", "none"):
            raise ValueError(f"balance must be weights, resample or none, got {self.balance!r}")
        if not 1 <= self.epochs <= 200:
            raise ValueError(f"epochs must lie in [1, 200], got {self.epochs}")
        if self.split not in ("stratified", "stable"):
            raise ValueError(f"split must be stratified or stable, got {self.split!r}")
        if self.max_int8_loss_points < 0:
            raise ValueError("max_int8_loss_points must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        skip = ("progress", "threads", "checkpoint_dir", "resume")  # how to run, not what was trained
        return {k: v for k, v in self.__dict__.items() if k not in skip}


@dataclass
class TrainOutcome:
    """What `train_model` produced; `folder` holds the files named in `ARTIFACTS`."""

    folder: Path
    classes: list[str]
    dataset_hash: str
    provenance: str
    metrics: dict[str, Any]  # headline numbers: test accuracy, macro-F1, ECE, counts
    info: dict[str, Any] = field(default_factory=dict)  # contents of training.json

    def path(self, artifact: str) -> Path:
        return self.folder / ARTIFACTS[artifact]


@dataclass(frozen=True)
class DecodedSet:
    """Every usable image of a dataset decoded once (shorter side `KEEP_SIDE`), by item key."""

    dataset: LabelledDataset
    images: dict[str, Image.Image]
    skipped: list[dict[str, str]]

    def labelled(self, items: Sequence[Item], classes: Sequence[str]) -> LabelledImages:
        index = {name: i for i, name in enumerate(classes)}
        return LabelledImages([self.images[i.key] for i in items], [index[i.label] for i in items])


def decode_all(
    dataset: LabelledDataset, decoder: ImageDecoder, resolve: Resolver | None, skip_bad: bool
) -> DecodedSet:
    """Decode every item; bad ones raise one `DatasetError` listing them all, or are skipped (`skip_bad`)."""
    images: dict[str, Image.Image] = {}
    bad: list[dict[str, str]] = []
    for item in dataset.items:
        try:
            decoded = load_image(item, decoder, resolve, KEEP_SIDE).image
        except FeedlensError as exc:
            bad.append({"key": item.key, "code": exc.code, "message": exc.message})
            continue
        scale = KEEP_SIDE / min(decoded.size)
        if scale < 1:
            size = (max(1, round(decoded.width * scale)), max(1, round(decoded.height * scale)))
            decoded = decoded.resize(size, Image.Resampling.BILINEAR)
        images[item.key] = decoded.convert("RGB")
    if bad and not skip_bad:
        raise DatasetError(
            [Problem(ProblemCode.NOT_AN_IMAGE, f"{b['key']}: {b['code']}: {b['message']}") for b in bad]
        )
    usable = dataset.without(b["key"] for b in bad) if bad else dataset  # validated again: may empty a class
    return DecodedSet(usable, images, bad)


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers the registry lists: accuracy, macro-F1, ECE and the number of evaluated images."""
    macro = metrics.get("macro") or {}
    calibration = metrics.get("calibration") or {}
    return {
        "accuracy": metrics.get("accuracy"),
        "macro_f1": macro.get("f1"),
        "ece": calibration.get("ece"),
        "n": metrics.get("n_items"),
    }


def train_model(
    dataset: LabelledDataset,
    decoder: ImageDecoder,
    weights: Path,
    out: Path,
    options: TrainOptions,
    *,
    resolve: Resolver | None = None,
    baseline: Baseline | None = None,
    baseline_info: ModelInfo | None = None,
    version: str = "candidate",
) -> TrainOutcome:
    """Train, evaluate, export and compress; returns the outcome with every artifact written under `out`.

    `weights`: the EfficientNet-Lite0 .pth. `baseline` predicts the same classes (in `dataset.classes`
    order) for the side-by-side comparison in the report; `version` names the model in the report.
    """
    from feedlens.training.export import compress, export_onnx
    from feedlens.training.finetune import CHECKPOINT_NAME, FinetuneConfig, finetune
    from feedlens.training.probe import probe
    from feedlens.training.report import ModelInfo

    decoded = decode_all(dataset, decoder, resolve, options.skip_bad_images)
    data = decoded.dataset
    classes = list(data.classes)
    parts = split_of(data, options)  # few labels: every one trains, figures are cross-validated
    cross_validated = not parts.val and not parts.test and cross_validates(data, options.mode, options.split)
    balance = class_report(parts)
    if options.balance == "resample":
        parts = resample(parts)
    weighting = class_weights(parts.train, classes) if options.balance == "weights" else None
    train = decoded.labelled(parts.train, classes)
    val = decoded.labelled(parts.val, classes) if parts.val else None
    test_items = parts.test or parts.val or parts.train  # tiny sets: say which split was evaluated
    evaluated_on = "test" if parts.test else ("validation" if parts.val else "train")
    test = decoded.labelled(test_items, classes)
    held_out: np.ndarray | None = None  # (N, K) out-of-fold probabilities when cross-validated
    if options.mode == "probe":
        features = _features(train, classes, weights, options) if cross_validated else None
        model = probe(
            train,
            val,
            classes,
            weights,
            class_weights=None if weighting is None else weighting.tolist(),
            train_features=features,
            threads=options.threads,
            progress=options.progress,
        )
        if features is not None:
            fold = folds(parts.train, options.seed)
            y = np.asarray(train.labels, dtype=np.int64)
            held_out = out_of_fold(
                features, y, len(classes), fold, None if weighting is None else weighting.tolist()
            )
            evaluated_on = "cross-validation"
    else:
        config = FinetuneConfig(
            epochs=options.epochs, seed=options.seed, threads=options.threads, progress=options.progress
        )
        last = None if options.checkpoint_dir is None else options.checkpoint_dir / CHECKPOINT_NAME
        model = finetune(
            train,
            val,
            classes,
            weights,
            config=config,
            class_weights=None if weighting is None else weighting.tolist(),
            checkpoint_dir=options.checkpoint_dir,
            resume=last if options.resume and last is not None and last.exists() else None,
        )
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / ARTIFACTS["torch"])
    info = ModelInfo(version, data.dataset_hash(), {"mode": options.mode, **options.to_dict()})
    test_images = [decoded.images[i.key] for i in test_items]
    probabilities = model.predict_proba(test_images) if held_out is None else held_out
    report = evaluate_images(probabilities, test, test_items, decoded, classes, info, baseline, baseline_info)
    report.write(out)
    fp32 = export_onnx(model, out / ARTIFACTS["onnx"])
    compression: dict[str, Any] | None = None
    if options.int8:
        calibration = list(train.images)[:CALIBRATION_IMAGES]
        compression = compress(
            fp32,
            classes,
            calibration,
            test,
            out=out / ARTIFACTS["int8"],
            max_loss_points=options.max_int8_loss_points,
            threads=1,
            agreement_images=list(train.images)[:AGREEMENT_IMAGES],
        )
        compression["model"] = Path(compression["model"]).name  # relative: the folder moves to the registry
    metrics = {**_headline(report.metrics), "evaluated_on": evaluated_on}
    training = {
        "classes": classes,
        "dataset_hash": data.dataset_hash(),
        "provenance": data.provenance,
        "options": options.to_dict(),
        "split": {name: len(items) for name, items in parts.parts().items()},
        "seen_keys": sorted({i.key for i in (*parts.train, *parts.val)}),  # never evaluate it on these
        "class_counts": balance.counts,
        "imbalance_ratio": balance.imbalance_ratio,
        "warnings": balance.warnings,
        "skipped_images": decoded.skipped,
        "dropped": [list(d) for d in data.dropped],
        "history": model.history,
        "metrics": metrics,
        "compression": compression,
    }
    (out / ARTIFACTS["training"]).write_text(json.dumps(training, indent=2, default=str) + "\n")
    return TrainOutcome(out, classes, data.dataset_hash(), data.provenance, metrics, training)


def evaluate_images(
    probabilities: np.ndarray,
    truth: LabelledImages,
    items: Sequence[Item],
    decoded: DecodedSet,
    classes: Sequence[str],
    info: ModelInfo,
    baseline: Baseline | None = None,
    baseline_info: ModelInfo | None = None,
) -> EvaluationReport:
    """The evaluation report of `probabilities` (N, K) for `items`, with a baseline's when given."""
    from feedlens.training.report import evaluate

    images = [decoded.images[i.key] for i in items]
    base = None if baseline is None else baseline(images)
    return evaluate(
        classes,
        np.asarray(truth.labels, dtype=np.int64),
        probabilities,
        keys=[i.key for i in items],
        thumbnails=lambda key: decoded.images[key],
        model=info,
        baseline_probabilities=base,
        baseline_model=baseline_info if base is not None else None,
        title=f"Evaluation report: {info.version}",
    )


def split_of(data: LabelledDataset, options: TrainOptions) -> Split:
    """The train/validation/test split; with few labels (crossval.cross_validates) all of them train."""
    if cross_validates(data, options.mode, options.split):
        return Split(
            data, tuple(sorted(data.items, key=lambda i: i.key)), (), (), str(options.seed), 0.0, 0.0
        )
    kind = stable_split if options.split == "stable" else split
    return kind(data, options.val_fraction, options.test_fraction, options.seed)


def _features(
    train: LabelledImages, classes: Sequence[str], weights: Path, options: TrainOptions
) -> np.ndarray:
    """(N, 1280) pooled backbone features of the training images: one pass for the probe and its folds."""
    from feedlens.training.network import ClassifierNet, TrainedClassifier, load_backbone

    net = ClassifierNet(load_backbone(weights), len(classes), train_blocks=None)
    return TrainedClassifier(net, classes, mode="probe", threads=options.threads).features(train.images)


def evaluation_items(
    data: LabelledDataset, dataset_hash: str | None, options: TrainOptions
) -> tuple[list[Item], str]:
    """Which items to evaluate a model on: the test split when `data` is the dataset it was trained on (same
    hash: the other items were seen in training), else every item. Returns the items and the split name."""
    if dataset_hash is not None and data.dataset_hash() == dataset_hash:
        parts = split_of(data, options)
        if parts.test:
            return list(parts.test), "test"
        return list(data.items), "training"  # few labels: all of them trained it (optimistic figures)
    return list(data.items), "all"


def evaluate_model(
    model: TrainedClassifier,
    dataset: LabelledDataset,
    decoder: ImageDecoder,
    *,
    resolve: Resolver | None = None,
    trained_on: str | None = None,
    options: TrainOptions | None = None,
    info: ModelInfo | None = None,
    baseline: Baseline | None = None,
    baseline_info: ModelInfo | None = None,
) -> tuple[EvaluationReport, str]:
    """Evaluate `model` on `dataset` (its test split if it is the dataset the model was trained on, hash
    `trained_on`; else all of it). The dataset's classes must be among the model's (`unknown_label`
    otherwise); classes the dataset lacks simply have no support. Returns the report and the split name."""
    from feedlens.training.report import ModelInfo

    opts = options or TrainOptions()
    names = list(model.class_names)
    unknown = sorted(set(dataset.classes) - set(names))
    if unknown:
        raise DatasetError(
            [
                Problem(ProblemCode.UNKNOWN_LABEL, f"class {c!r} is not one the model predicts ({names})")
                for c in unknown
            ]
        )
    decoded = decode_all(dataset, decoder, resolve, opts.skip_bad_images)
    items, part = evaluation_items(decoded.dataset, trained_on, opts)
    truth = decoded.labelled(items, names)
    probabilities = model.predict_proba([decoded.images[i.key] for i in items])
    info = info or ModelInfo("model")
    report = evaluate_images(probabilities, truth, items, decoded, names, info, baseline, baseline_info)
    report.metrics["evaluated_on"] = part
    return report, part
