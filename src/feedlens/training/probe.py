"""The linear probe: multinomial logistic regression on EfficientNet-Lite0's pooled 1280-d features.

The fitted regression is folded into the network's fc, so a probe is the same kind of model as a fine-tune
(`TrainedClassifier`: exportable to ONNX, explainable with Grad-CAM). Features can come from the caller (the
`labels` analyzer stores exactly these, same preprocessing), else they are computed once. On 1,000 cached
embeddings (12 classes) the whole C selection took 2.9 s on 2 cores, one fit 0.6 s (target: <= 5 s;
benchmarks/training_bench.py). Fine-tuning starts from a probe too (`select_linear_head`): a fitted head
instead of a random one keeps the first epochs' large gradients from distorting the pretrained features
(Kumar et al., "Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution", 2022).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from threadpoolctl import threadpool_limits

from feedlens.training.inputs import LabelledImages, check_labels
from feedlens.training.network import ClassifierNet, TrainedClassifier, load_backbone, progress_bar

# Inverse regularisation on features scaled to unit mean norm, chosen by validation loss. Per-dimension
# standardisation (C = 0.1 on z-scores) lost to a plain probe on unit vectors at 5-20 labels a category
# (bench:categories-kshot): z-scoring gives a few dozen images' noisy dimensions full weight.
C_GRID = (0.1, 1.0, 10.0, 100.0)
# Without validation data (few labels: every label trains): sharper than the plain probe's C = 1, whose
# nearly flat probabilities over 7 categories let zero-shot decide the blend (5 labels a category: Tux Paint
# 0.79 against 0.67 at C = 1, GCompris 0.92 against 0.83; bench:categories-kshot, before the trust blend).
DEFAULT_C = 10.0


def weight_tensor(class_weights: Sequence[float] | None, num_classes: int) -> torch.Tensor | None:
    if class_weights is None:
        return None
    if len(class_weights) != num_classes:
        raise ValueError(f"{len(class_weights)} class weights for {num_classes} classes")
    return torch.tensor(class_weights, dtype=torch.float32)


def metrics(logits: torch.Tensor, labels: np.ndarray, weight: torch.Tensor | None) -> dict[str, float]:
    """Cross-entropy (class-weighted like training), macro-F1 and accuracy of (N, K) logits."""
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels), weight=weight)
    predicted = logits.argmax(dim=1).numpy()
    k = logits.shape[1]
    return {
        "loss": float(loss),
        "macro_f1": float(f1_score(labels, predicted, labels=range(k), average="macro", zero_division=0)),
        "accuracy": float((predicted == labels).mean()),
    }


def fit_linear_head(
    features: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    class_weights: Sequence[float] | None = None,
    c: float = DEFAULT_C,
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression on (N, D) features -> fc weight (K, D) and bias (K,), float32.

    Features are divided by their mean L2 norm for the solver (one number, so C means the same for raw pooled
    features and for stored unit vectors) and the scale folded back in: the returned layer applies to raw
    features. Every class needs at least one example.
    """
    x = features.astype(np.float64)
    scale = float(np.linalg.norm(x, axis=1).mean()) + 1e-12
    weight = None if class_weights is None else dict(enumerate(map(float, class_weights)))
    model = LogisticRegression(C=c, class_weight=weight, max_iter=5000)
    model.fit(x / scale, labels)
    if list(model.classes_) != list(range(num_classes)):
        raise ValueError(f"every class needs a training example; found classes {list(model.classes_)}")
    coef, intercept = model.coef_, model.intercept_
    if num_classes == 2:  # sklearn's binary model has one row; softmax([-z/2, z/2]) equals sigmoid(z)
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    w = coef / scale
    b = intercept
    return w.astype(np.float32), b.astype(np.float32)


def select_linear_head(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    num_classes: int,
    *,
    val_features: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    class_weights: Sequence[float] | None = None,
    c: float | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """`fit_linear_head` with C from C_GRID by validation loss (or `c`); also one record per C tried."""
    weight = weight_tensor(class_weights, num_classes)
    has_val = val_features is not None and val_labels is not None
    grid = (c,) if c is not None else C_GRID if has_val else (DEFAULT_C,)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    history: list[dict[str, Any]] = []
    for candidate in grid:
        w, b = fit_linear_head(
            train_features, train_labels, num_classes, class_weights=class_weights, c=candidate
        )
        record: dict[str, Any] = {"c": candidate}
        if val_features is not None and val_labels is not None:
            logits = torch.from_numpy(val_features.astype(np.float32) @ w.T + b)
            record.update({f"val_{m}": v for m, v in metrics(logits, val_labels, weight).items()})
        history.append(record)
        score = record.get("val_loss", 0.0)
        if best is None or score < best[0]:
            best = (score, w, b)
    assert best is not None  # the grid is never empty
    return best[1], best[2], history


def set_head(net: ClassifierNet, weight: np.ndarray, bias: np.ndarray) -> None:
    with torch.no_grad():
        net.fc.weight.copy_(torch.from_numpy(weight))
        net.fc.bias.copy_(torch.from_numpy(bias))


def probe(
    train: LabelledImages,
    val: LabelledImages | None,
    class_names: Sequence[str],
    weights: Path,
    *,
    class_weights: Sequence[float] | None = None,
    train_features: np.ndarray | None = None,
    val_features: np.ndarray | None = None,
    c: float | None = None,
    threads: int | None = None,
    progress: bool = False,
) -> TrainedClassifier:
    """A linear probe on the frozen backbone (`weights`: the EfficientNet-Lite0 .pth).

    `train_features` / `val_features` (N, 1280): cached embeddings, else computed here. `c=None` picks the
    regularisation from C_GRID by validation loss (DEFAULT_C without validation).
    """
    k = len(class_names)
    y_train = check_labels(train, k, "training", every_class=True)
    y_val = None if val is None else check_labels(val, k, "validation", every_class=False)
    net = ClassifierNet(load_backbone(weights), k, train_blocks=None)
    model = TrainedClassifier(net, class_names, mode="probe", threads=threads)
    todo = (0 if train_features is not None else len(train)) + (
        0 if val is None or val_features is not None else len(val)
    )
    with progress_bar(progress and todo > 0) as bar:
        task = bar.add_task("probe features", total=todo, status="")

        def advance(n: int) -> None:
            bar.advance(task, n)

        if train_features is None:
            train_features = model.features(train.images, on_batch=advance)
        if val is not None and val_features is None:
            val_features = model.features(val.images, on_batch=advance)
    with threadpool_limits(1):  # a few hundred x 1280: threaded BLAS only spins (simulation.py measured it)
        w, b, history = select_linear_head(
            train_features,
            y_train,
            k,
            val_features=val_features,
            val_labels=y_val,
            class_weights=class_weights,
            c=c,
        )
    set_head(net, w, b)
    return TrainedClassifier(net, class_names, mode="probe", history=history, threads=threads)
