"""What a trained model's figures mean, in plain sentences: why training stopped when it did, whether the
evaluation had enough images to say anything, why int8 was not kept, and what to beware of on promotion.

The CLI, the API (`warnings` of a model version) and the web app all show these sentences, so they say the
same thing everywhere. Nothing here computes a metric: it reads what training recorded (training.json).
"""

from __future__ import annotations

import math
from typing import Any

MIN_EVAL_IMAGES = 10  # below this an accuracy is a coin toss of a few images: it is not shown as a figure
LOW_ACCURACY = 0.5  # promoting below this gets a warning: most images would get a wrong category
Z95 = 1.96


def wilson(correct: float, n: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion `correct` (in [0, 1]) measured on `n` items; (0, 1) when n = 0.
    Unlike p ± 1.96·se it stays inside [0, 1] and is honest at 0% and 100%."""
    if n <= 0:
        return 0.0, 1.0
    z2 = Z95 * Z95
    centre = (correct + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(correct * (1 - correct) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_text(metrics: dict[str, Any]) -> str:
    """`accuracy 0.812 (95% range 0.66-0.91) on 32 test images`, or why there is no figure."""
    n = int(metrics.get("n") or 0)
    part = metrics.get("evaluated_on", "test")
    where = "cross-validated over" if part == "cross-validation" else f"on {n} {part}"
    accuracy = metrics.get("accuracy")
    if part in ("train", "training"):  # scored on what it learnt from: no figure worth showing
        return (
            f"accuracy not measured: all {n} labelled images were needed for training (2 or more per "
            "category give cross-validated figures)"
        )
    if accuracy is None or n < MIN_EVAL_IMAGES:
        return (
            f"accuracy not measured: the {part} set is too small ({n} images; {MIN_EVAL_IMAGES} or more "
            "needed)"
        )
    low, high = wilson(float(accuracy), n)
    f1 = metrics.get("macro_f1")
    f1_text = "" if f1 is None else f", macro-F1 {float(f1):.3f}"
    if part == "cross-validation":
        return f"accuracy {float(accuracy):.3f} (95% range {low:.2f}-{high:.2f}){f1_text}, {where} {n} images"
    return f"accuracy {float(accuracy):.3f} (95% range {low:.2f}-{high:.2f}){f1_text} {where} images"


def stopped_early(training: dict[str, Any]) -> str | None:
    """Why fine-tuning ended before its last epoch (early stopping on the validation loss), or None."""
    history = [r for r in training.get("history") or [] if int(r.get("epoch") or 0) > 0]
    epochs = int((training.get("options") or {}).get("epochs") or 0)
    if (training.get("options") or {}).get("mode") != "finetune" or not history or not epochs:
        return None
    last = max(int(r["epoch"]) for r in history)
    if last >= epochs:
        return None
    best = next((int(r["epoch"]) for r in history if r.get("best")), last)
    return (
        f"training stopped early after epoch {last} of {epochs}: the validation loss had not improved for "
        f"{last - best} epochs, so more epochs would not help; the model of epoch {best} (the best) is kept"
    )


def int8_verdict(compression: dict[str, Any] | None) -> str | None:
    """`int8: kept ...` or `int8: not kept, because ...` naming the check that failed, or None (not tried)."""
    if not compression:
        return None
    change = float(compression.get("accuracy_change_points") or 0.0)
    speed = float(compression.get("speedup") or 0.0)
    if compression.get("kept"):
        return f"int8: kept ({speed:.2f}x faster, accuracy change {change:+.1f} points)"
    bound = float(compression.get("max_loss_points") or 0.0)
    if -change > bound + 1e-9:
        tested = compression.get("test_images")
        why = f"it lost {-change:.1f} accuracy points on {tested} images ({bound:g} allowed)"
    else:
        agreement = 100 * float(compression.get("agreement") or 0.0)
        needed = 100 * float(compression.get("min_agreement") or 0.0)
        why = (
            f"it gave the full-size model's answer on only {agreement:.0f}% of "
            f"{compression.get('agreement_images')} images ({needed:.0f}% needed)"
        )
    return f"int8: not kept, {why}; the full-size model is used"


def small_evaluation(metrics: dict[str, Any]) -> str | None:
    n = int(metrics.get("n") or 0)
    part = metrics.get("evaluated_on", "test")
    if part in ("train", "training"):
        return "no images were held out: the figures are measured on the training images and are optimistic"
    if n < MIN_EVAL_IMAGES:
        return (
            f"the {part} set is too small to measure accuracy ({n} images): label more images, about "
            f"{MIN_EVAL_IMAGES} per category or more"
        )
    return None


def training_notes(training: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    """Sentences about how a version was trained and evaluated, beside its class-balance warnings."""
    notes = [stopped_early(training), small_evaluation(metrics)]
    compression = training.get("compression")
    if compression and not compression.get("kept"):
        notes.append(int8_verdict(compression))
    return [n for n in notes if n]


def promotion_warnings(model: dict[str, Any]) -> list[str]:
    """What to beware of before `model` (a registry version) serves the workspace."""
    m = model.get("metrics") or {}
    n = int(m.get("n") or 0)
    accuracy = m.get("accuracy")
    if m.get("evaluated_on") in ("train", "training"):
        return [
            f"version {model.get('version')}'s accuracy is unknown: no labelled image was left to test on"
        ]
    if accuracy is None or n < MIN_EVAL_IMAGES:
        return [f"version {model.get('version')}'s accuracy is unknown: it was evaluated on only {n} images"]
    if float(accuracy) < LOW_ACCURACY:
        return [
            f"version {model.get('version')} has low accuracy ({float(accuracy):.2f} on {n} images): it will "
            "put many images in the wrong category; `feedlens models rollback` undoes this"
        ]
    return []
