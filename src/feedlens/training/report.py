"""Evaluation report of a classifier: metrics.json plus one self-contained HTML page.

Input: K class names, y_true (N,) int in [0, K), probabilities (N, K) (rows sum to ~1), optionally item keys
(N,), a thumbnail loader (key -> PIL image or PNG bytes, used only for the confused pairs' examples), the
model's metadata and a baseline model's probabilities (N, K) on the same items. Predictions are the argmax.

metrics.json (key names are a stable contract; floats are null where undefined):

- `schema_version` (1), `model` ({version, dataset_hash, parameters} or null), `classes` [K], `n_items`.
- `accuracy`; `macro` {precision, recall, f1, roc_auc, average_precision}; `log_loss`; `brier_score`
  (multiclass: mean over items of sum over classes of (p - onehot)^2, in [0, 2]).
  Macro P/R/F1 average the classes present in y_true or in the predictions (scikit-learn's default label
  set; an undefined ratio counts 0); macro AUC/AP average the classes whose curve is defined.
- `per_class` [K] {class, index, support, predicted, precision, recall, f1, roc_auc, average_precision}:
  P/R/F1 are null for a class neither present nor predicted; roc_auc null without positives or negatives
  in y_true, average_precision null without positives.
- `confusion_matrix` [K][K] counts, rows = true class, columns = predicted class.
- `curves` {roc: [{class, fpr, tpr, auc}], pr: [{class, precision, recall, average_precision}],
  skipped: [{class, curve ("roc" | "pr"), reason}]}: one-vs-rest, points rounded to 6 decimals.
- `calibration` {n_bins (10), ece, mce, bins: [{lower, upper, count, accuracy, confidence}]}: top-label
  confidence (max probability) against whether the argmax is right; bins [i/10, (i+1)/10), the last one
  closed; accuracy/confidence null for an empty bin. ECE = sum_b n_b / N * |acc_b - conf_b|, MCE = max_b.
- `confused_pairs` (top 5 off-diagonal cells, count > 0) [{true, predicted, true_index, predicted_index,
  count, rate (count / support of true), example_keys (up to 3, most confident mistakes first)}].
- `comparison` null or {baseline_model, baseline (classes ... calibration as above: no curves or pairs),
  deltas {accuracy, macro_precision, macro_recall, macro_f1, macro_roc_auc, macro_average_precision, ece,
  mce, log_loss, brier_score: {model, baseline, delta}}, per_class_f1 [{class, model, baseline, delta}],
  disagreement {both_correct, only_model_correct, only_baseline_correct, both_wrong, mcnemar_p_value}}.
  delta = model - baseline; the p-value is McNemar's exact (binomial) test on the discordant items.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from feedlens.core.errors import FeedlensError
from feedlens.core.files import write_atomic

SCHEMA_VERSION = 1
CALIBRATION_BINS = 10
TOP_CONFUSED_PAIRS = 5
EXAMPLES_PER_PAIR = 3
THUMBNAIL_PX = 128
SUM_TOLERANCE = 1e-3  # float32 softmax rows sum to 1 within ~1e-6; anything further off is not probabilities
CURVE_DECIMALS = 6

Thumbnail = Image.Image | bytes
ThumbnailLoader = Callable[[str], Thumbnail]


class EvaluationInputError(FeedlensError, ValueError):
    """The arrays given to `evaluate` are inconsistent (shapes, ranges, probabilities)."""

    code = "invalid_evaluation_input"


@dataclass(frozen=True)
class ModelInfo:
    """What is recorded about an evaluated model; `parameters` must be JSON-serialisable."""

    version: str
    dataset_hash: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "dataset_hash": self.dataset_hash,
            "parameters": dict(self.parameters),
        }


@dataclass(frozen=True)
class EvaluationReport:
    """`metrics` follows the module docstring; `thumbnails` maps example keys to PNG data URIs."""

    metrics: dict[str, Any]
    thumbnails: Mapping[str, str] = field(default_factory=dict)
    title: str = "Evaluation report"

    def to_json(self) -> str:
        return json.dumps(self.metrics, indent=2, allow_nan=False, ensure_ascii=False) + "\n"

    def to_html(self) -> str:
        from feedlens.training.report_html import render_html  # matplotlib only when a page is asked for

        return render_html(self.metrics, self.thumbnails, self.title)

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write `metrics.json` and `report.html` into `directory`, each atomically; returns both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        json_path, html_path = directory / "metrics.json", directory / "report.html"
        page = self.to_html()  # render before touching either file: a plotting error leaves both as they were
        write_atomic(json_path, self.to_json().encode())
        write_atomic(html_path, page.encode())
        return json_path, html_path


def evaluate(
    class_names: Sequence[str],
    y_true: np.ndarray,
    probabilities: np.ndarray,
    *,
    keys: Sequence[str] | None = None,
    thumbnails: ThumbnailLoader | None = None,
    model: ModelInfo | None = None,
    baseline_probabilities: np.ndarray | None = None,
    baseline_model: ModelInfo | None = None,
    title: str = "Evaluation report",
) -> EvaluationReport:
    """Compute every metric of the module docstring. Raises EvaluationInputError on inconsistent input."""
    names = _check_names(class_names)
    y = _check_labels(y_true, len(names))
    proba = _check_probabilities(probabilities, y.shape[0], len(names), "probabilities")
    key_list = None if keys is None else [str(k) for k in keys]
    if key_list is not None and len(key_list) != y.shape[0]:
        raise EvaluationInputError(f"keys has {len(key_list)} entries for {y.shape[0]} items")
    if thumbnails is not None and key_list is None:
        raise EvaluationInputError("thumbnails need item keys to look the images up")
    for info in (model, baseline_model):
        _check_json("model parameters", None if info is None else info.to_dict())

    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": None if model is None else model.to_dict(),
        **_summarise(names, y, proba, with_curves=True),
    }
    out["confused_pairs"] = _confused_pairs(names, y, proba, key_list)
    out["comparison"] = None
    if baseline_probabilities is not None:
        base = _check_probabilities(baseline_probabilities, y.shape[0], len(names), "baseline_probabilities")
        out["comparison"] = _compare(names, y, proba, base, out, baseline_model)
    pictures: dict[str, str] = {}
    if thumbnails is not None:
        for pair in out["confused_pairs"]:
            for key in pair["example_keys"]:
                picture = _thumbnail(thumbnails, key)
                if picture is not None:
                    pictures[key] = picture
    return EvaluationReport(metrics=out, thumbnails=pictures, title=title)


# -- validation ----------------------------------------------------------------------------------------
def _check_names(class_names: Sequence[str]) -> list[str]:
    names = list(class_names)
    if len(names) < 2:
        raise EvaluationInputError(f"need at least 2 classes, got {len(names)}")
    if any(not isinstance(n, str) or not n for n in names):
        raise EvaluationInputError("class names must be non-empty strings")
    if len(set(names)) != len(names):
        raise EvaluationInputError("class names must be unique")
    return names


def _check_labels(y_true: np.ndarray, k: int) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1 or y.shape[0] == 0:
        raise EvaluationInputError(f"y_true must be a non-empty (N,) array, got shape {y.shape}")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise EvaluationInputError(f"y_true must hold integer class indices, got dtype {y.dtype}")
    bad = (y < 0) | (y >= k)
    if bad.any():
        raise EvaluationInputError(
            f"y_true has {int(bad.sum())} labels outside [0, {k}) (first: {int(y[bad][0])} at index "
            f"{int(np.flatnonzero(bad)[0])})"
        )
    return y.astype(np.int64)


def _check_probabilities(p: np.ndarray, n: int, k: int, name: str) -> np.ndarray:
    proba = np.asarray(p)
    if proba.shape != (n, k):
        raise EvaluationInputError(f"{name} must have shape ({n}, {k}) (items, classes), got {proba.shape}")
    if not np.issubdtype(proba.dtype, np.number) or np.issubdtype(proba.dtype, np.complexfloating):
        raise EvaluationInputError(f"{name} must be real numbers, got dtype {proba.dtype}")
    proba = proba.astype(np.float64)
    if not np.isfinite(proba).all():
        raise EvaluationInputError(f"{name} has {int((~np.isfinite(proba)).sum())} NaN or infinite values")
    if (proba < -SUM_TOLERANCE).any() or (proba > 1 + SUM_TOLERANCE).any():
        raise EvaluationInputError(f"{name} must lie in [0, 1]")
    off = np.abs(proba.sum(axis=1) - 1.0)
    if (off > SUM_TOLERANCE).any():
        row = int(np.argmax(off))
        raise EvaluationInputError(
            f"{name} rows must sum to 1 (softmax outputs, not logits): row {row} sums to "
            f"{proba[row].sum():.6g}, {int((off > SUM_TOLERANCE).sum())} rows are off"
        )
    clipped: np.ndarray = np.clip(proba, 0.0, 1.0)
    # float32 softmax rows sum to 1 within ~1e-6; make them exact so scikit-learn's checks stay quiet
    normalised: np.ndarray = clipped / clipped.sum(axis=1, keepdims=True)
    return normalised


def _check_json(what: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EvaluationInputError(f"{what} must be JSON-serialisable: {exc}") from exc


# -- metrics -------------------------------------------------------------------------------------------
def _f(x: Any) -> float | None:
    """A JSON float: None for NaN/undefined."""
    return None if x is None or not math.isfinite(float(x)) else float(x)


def _summarise(names: list[str], y: np.ndarray, proba: np.ndarray, *, with_curves: bool) -> dict[str, Any]:
    from sklearn import metrics as skm

    k = len(names)
    labels = np.arange(k)
    pred = proba.argmax(axis=1)
    cm = skm.confusion_matrix(y, pred, labels=labels)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, pred, labels=labels, average=None, zero_division=0
    )
    seen = np.union1d(y, pred)  # scikit-learn's default label set: classes present or predicted
    macro = skm.precision_recall_fscore_support(y, pred, labels=seen, average="macro", zero_division=0)
    per_class: list[dict[str, Any]] = []
    roc: list[dict[str, Any]] = []
    pr: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for c, name in enumerate(names):
        positive = y == c
        defined = bool(positive.any() or (pred == c).any())
        row: dict[str, Any] = {
            "class": name,
            "index": c,
            "support": int(support[c]),
            "predicted": int(cm[:, c].sum()),
            "precision": _f(precision[c]) if defined else None,
            "recall": _f(recall[c]) if defined else None,
            "f1": _f(f1[c]) if defined else None,
            "roc_auc": None,
            "average_precision": None,
        }
        if not positive.any():
            skipped += [
                {"class": name, "curve": curve, "reason": "no positives in y_true"} for curve in ("roc", "pr")
            ]
        else:
            ap = float(skm.average_precision_score(positive, proba[:, c]))
            row["average_precision"] = ap
            if with_curves:
                prec, rec, _ = skm.precision_recall_curve(positive, proba[:, c], drop_intermediate=True)
                pr.append(
                    {"class": name, "precision": _round(prec), "recall": _round(rec), "average_precision": ap}
                )
            if positive.all():
                skipped.append({"class": name, "curve": "roc", "reason": "no negatives in y_true"})
            else:
                auc = float(skm.roc_auc_score(positive, proba[:, c]))
                row["roc_auc"] = auc
                if with_curves:
                    fpr, tpr, _ = skm.roc_curve(positive, proba[:, c])
                    roc.append({"class": name, "fpr": _round(fpr), "tpr": _round(tpr), "auc": auc})
        per_class.append(row)
    aucs = [r["roc_auc"] for r in per_class if r["roc_auc"] is not None]
    aps = [r["average_precision"] for r in per_class if r["average_precision"] is not None]
    out: dict[str, Any] = {
        "classes": list(names),
        "n_items": int(y.shape[0]),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "macro": {
            "precision": float(macro[0]),
            "recall": float(macro[1]),
            "f1": float(macro[2]),
            "roc_auc": float(np.mean(aucs)) if aucs else None,
            "average_precision": float(np.mean(aps)) if aps else None,
        },
        # sklearn refuses rows off 1 by more than its own tolerance; ours (1e-3) is looser
        "log_loss": float(skm.log_loss(y, proba / proba.sum(axis=1, keepdims=True), labels=labels)),
        "brier_score": float(skm.brier_score_loss(y, proba, labels=labels, scale_by_half=False)),
        "per_class": per_class,
        "confusion_matrix": cm.astype(int).tolist(),
        "calibration": calibration(y, proba),
    }
    if with_curves:
        out["curves"] = {"roc": roc, "pr": pr, "skipped": skipped}
    return out


def _round(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.round(values.astype(np.float64), CURVE_DECIMALS)]


def calibration(y: np.ndarray, proba: np.ndarray, n_bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Top-label reliability bins, ECE and MCE for labels (N,) and probabilities (N, K)."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(np.float64)
    # floor(conf * n) puts a confidence on a bin edge into the upper bin; 1.0 joins the last bin
    which = np.minimum(np.floor(confidence * n_bins).astype(np.int64), n_bins - 1)
    bins: list[dict[str, Any]] = []
    ece, mce = 0.0, 0.0
    for b in range(n_bins):
        inside = which == b
        count = int(inside.sum())
        acc = float(correct[inside].mean()) if count else None
        conf = float(confidence[inside].mean()) if count else None
        if acc is not None and conf is not None:
            ece += count / len(y) * abs(acc - conf)
            mce = max(mce, abs(acc - conf))
        bins.append(
            {
                "lower": b / n_bins,
                "upper": (b + 1) / n_bins,
                "count": count,
                "accuracy": acc,
                "confidence": conf,
            }
        )
    return {"n_bins": n_bins, "ece": ece, "mce": mce, "bins": bins}


def _confused_pairs(
    names: list[str], y: np.ndarray, proba: np.ndarray, keys: list[str] | None
) -> list[dict[str, Any]]:
    from sklearn import metrics as skm

    k = len(names)
    pred = proba.argmax(axis=1)
    cm = skm.confusion_matrix(y, pred, labels=np.arange(k))
    cells = [(int(cm[t, p]), t, p) for t in range(k) for p in range(k) if t != p and cm[t, p] > 0]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))  # ties: class order, so the list is stable
    pairs = []
    for count, t, p in cells[:TOP_CONFUSED_PAIRS]:
        items = np.flatnonzero((y == t) & (pred == p))
        items = items[np.argsort(-proba[items, p], kind="stable")][:EXAMPLES_PER_PAIR]
        pairs.append(
            {
                "true": names[t],
                "predicted": names[p],
                "true_index": t,
                "predicted_index": p,
                "count": count,
                "rate": count / int(cm[t].sum()),
                "example_keys": [] if keys is None else [keys[i] for i in items],
            }
        )
    return pairs


def _compare(
    names: list[str],
    y: np.ndarray,
    proba: np.ndarray,
    base_proba: np.ndarray,
    summary: dict[str, Any],
    baseline_model: ModelInfo | None,
) -> dict[str, Any]:
    from scipy.stats import binomtest  # type: ignore[import-untyped]  # no type information shipped

    base = _summarise(names, y, base_proba, with_curves=False)

    def scalars(s: dict[str, Any]) -> dict[str, float | None]:
        macro, cal = s["macro"], s["calibration"]
        return {
            "accuracy": s["accuracy"],
            **{
                f"macro_{name}": macro[name]
                for name in ("precision", "recall", "f1", "roc_auc", "average_precision")
            },
            "ece": cal["ece"],
            "mce": cal["mce"],
            "log_loss": s["log_loss"],
            "brier_score": s["brier_score"],
        }

    def delta(a: float | None, b: float | None) -> dict[str, float | None]:
        return {"model": a, "baseline": b, "delta": None if a is None or b is None else a - b}

    mine, theirs = scalars(summary), scalars(base)
    ok_model = proba.argmax(axis=1) == y
    ok_base = base_proba.argmax(axis=1) == y
    only_model, only_base = int((ok_model & ~ok_base).sum()), int((~ok_model & ok_base).sum())
    discordant = only_model + only_base
    p_value = 1.0 if discordant == 0 else float(binomtest(min(only_model, only_base), discordant, 0.5).pvalue)
    return {
        "baseline_model": None if baseline_model is None else baseline_model.to_dict(),
        "baseline": base,
        "deltas": {name: delta(mine[name], theirs[name]) for name in mine},
        "per_class_f1": [
            {"class": a["class"], **delta(a["f1"], b["f1"])}
            for a, b in zip(summary["per_class"], base["per_class"], strict=True)
        ],
        "disagreement": {
            "both_correct": int((ok_model & ok_base).sum()),
            "only_model_correct": only_model,
            "only_baseline_correct": only_base,
            "both_wrong": int((~ok_model & ~ok_base).sum()),
            "mcnemar_p_value": p_value,
        },
    }


# -- thumbnails and files --------------------------------------------------------------------------------
def _thumbnail(load: ThumbnailLoader, key: str) -> str | None:
    """A PNG data URI at most THUMBNAIL_PX a side, or None when the loader fails for this key."""

    try:
        picture = load(key)
        image = Image.open(io.BytesIO(picture)) if isinstance(picture, bytes) else picture
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        if max(image.size) < THUMBNAIL_PX // 2:  # tiny inputs (8x8 digits) would be unreadable
            scale = THUMBNAIL_PX // max(image.size)
            image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
    except Exception:  # a deleted or unreadable image must not cost the whole report; the page says so
        return None
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
