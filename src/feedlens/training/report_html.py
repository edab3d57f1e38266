"""The evaluation report as one self-contained HTML page (see report.py for the metrics it shows).

Python computes every number and draws every plot; the Jinja2 template templates/report.html.j2 does all
the markup. Autoescape is on, so every user-supplied string (class names, keys, model metadata, title,
thumbnails' data URIs) is escaped wherever the template puts it, and StrictUndefined makes a missing or
misspelt value an error instead of a silent blank. No external asset: plots are base64 PNGs drawn with
matplotlib's Agg canvas (a bare `Figure`, never pyplot, so no global figure state is shared between
threads), thumbnails are data URIs, the CSS is inline, and a Content-Security-Policy forbids scripts and
remote loads should anything slip through.
Section ids (stable, tested): summary, per-class, confusion-matrix, roc, pr, calibration, confused-pairs,
comparison.
"""

from __future__ import annotations

import base64
import functools
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # jinja2 and matplotlib load only when a page is rendered: importing this module is cheap
    import jinja2
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SECTIONS = (
    ("summary", "Summary"),
    ("per-class", "Per class"),
    ("confusion-matrix", "Confusion matrix"),
    ("roc", "ROC curves"),
    ("pr", "Precision-recall curves"),
    ("calibration", "Calibration"),
    ("confused-pairs", "Most confused pairs"),
    ("comparison", "Comparison"),
)
TEMPLATE = "report.html.j2"
LEGEND_MAX = 12  # more curves than this: no legend, the per-class table has the numbers
ANNOTATE_MAX = 20  # confusion-matrix cells get their count written in when K is at most this
LABEL_CHARS = 28


@dataclass(frozen=True)
class Cell:
    """Table cell text shown in a `<span class="{css}">` (coloured deltas, notes); plain cells are `str`."""

    text: str
    css: str


@dataclass(frozen=True)
class Table:
    """Plain-text header and rows (the template escapes them); the first `names` columns are left-aligned."""

    header: Sequence[str]
    rows: Sequence[Sequence[str | Cell]]
    names: int = 1


@dataclass(frozen=True)
class Plot:
    alt: str
    src: str  # data:image/png;base64,...


@dataclass(frozen=True)
class Pair:
    """One confused pair; `examples` are (item key, thumbnail data URI or None when there is no image)."""

    actual: str
    predicted: str
    count: int
    rate: str
    examples: Sequence[tuple[str, str | None]]


def render_html(metrics: Mapping[str, Any], thumbnails: Mapping[str, str], title: str) -> str:
    return _environment().get_template(TEMPLATE).render(_context(metrics, thumbnails, title))


def _context(metrics: Mapping[str, Any], thumbnails: Mapping[str, str], title: str) -> dict[str, Any]:
    """Everything the template shows: `data` holds one entry per section id of SECTIONS."""
    data: dict[str, object] = {
        "summary": _summary(metrics),
        "per-class": _per_class(metrics),
        "confusion-matrix": _confusion(metrics),
        "roc": _curves(metrics, "roc"),
        "pr": _curves(metrics, "pr"),
        "calibration": _calibration(metrics),
        "confused-pairs": _pairs(metrics, thumbnails),
        "comparison": _comparison(metrics),
    }
    return {"title": title, "sections": SECTIONS, "data": data}


@functools.cache  # one environment per process: it caches the compiled template
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("feedlens.training", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


# -- helpers -------------------------------------------------------------------------------------------
def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _signed(x: float | None) -> str | Cell:
    if x is None:
        return "n/a"
    return Cell(f"{x:+.3f}", "pos" if x > 0 else "neg" if x < 0 else "")


def _plot_label(name: str) -> str:
    """A class name safe for matplotlib text: `$` would start mathtext, a leading `_` hides a legend entry."""
    short = name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"
    short = short.replace("$", r"\$")
    return " " + short if short.startswith("_") else short


def _canvas(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = _canvas(width, height)
    return fig, fig.add_subplot()


def _plot(fig: Figure, alt: str) -> Plot:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return Plot(alt, "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))


def _model_table(header: str, info: Mapping[str, Any] | None) -> Table:
    if info is None:
        return Table([header, ""], [("model", Cell("not given", "note"))])
    rows = [("version", str(info["version"])), ("dataset hash", str(info["dataset_hash"] or "n/a"))]
    rows += [
        (f"parameter {k}", json.dumps(v, ensure_ascii=False)) for k, v in sorted(info["parameters"].items())
    ]
    return Table([header, ""], rows)


# -- sections ------------------------------------------------------------------------------------------
def _summary(m: Mapping[str, Any]) -> dict[str, object]:
    macro, cal = m["macro"], m["calibration"]
    rows = [
        ("items", str(m["n_items"])),
        ("classes", str(len(m["classes"]))),
        ("accuracy", _num(m["accuracy"])),
        ("macro precision", _num(macro["precision"])),
        ("macro recall", _num(macro["recall"])),
        ("macro F1", _num(macro["f1"])),
        ("macro ROC AUC", _num(macro["roc_auc"])),
        ("macro average precision", _num(macro["average_precision"])),
        ("expected calibration error", _num(cal["ece"])),
        ("log loss", _num(m["log_loss"])),
        ("Brier score", _num(m["brier_score"])),
    ]
    return {
        "model": _model_table("model", m["model"]),
        "metrics": Table(["metric", "value"], rows),
        "absent": [c["class"] for c in m["per_class"] if c["support"] == 0],
    }


def _per_class(m: Mapping[str, Any]) -> Table:
    header = ["class", "support", "predicted", "precision", "recall", "F1", "ROC AUC", "average precision"]
    rows = [
        [c["class"], str(c["support"]), str(c["predicted"])]
        + [_num(c[key]) for key in ("precision", "recall", "f1", "roc_auc", "average_precision")]
        for c in m["per_class"]
    ]
    return Table(header, rows)


def _confusion(m: Mapping[str, Any]) -> dict[str, object]:
    names: list[str] = m["classes"]
    cm = np.asarray(m["confusion_matrix"], dtype=np.int64)
    k = len(names)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)  # colour by row share: classes differ in size
    side = max(4.0, 0.45 * k + 2.5)
    fig, ax = _figure(side + 1, side)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="share of the true class")
    labels = [_plot_label(n) for n in names]
    ax.set_xticks(range(k), labels, rotation=90)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= ANNOTATE_MAX:
        for t in range(k):
            for p in range(k):
                colour = "white" if share[t, p] > 0.5 else "black"
                ax.text(p, t, str(cm[t, p]), ha="center", va="center", color=colour, fontsize=8)
    rows = [[n, *(str(v) for v in cm[i])] for i, n in enumerate(names)]
    return {"plot": _plot(fig, "confusion matrix"), "table": Table(["true \\ predicted", *names], rows)}


def _curves(m: Mapping[str, Any], curve: str) -> dict[str, object]:
    """ROC (`curve` "roc") or precision-recall ("pr") curves, one per class, with the macro score."""
    is_roc = curve == "roc"
    entries = m["curves"][curve]
    fig, ax = _figure(6.5, 5.5)
    for e in entries:
        x, y = (e["fpr"], e["tpr"]) if is_roc else (e["recall"], e["precision"])
        score = e["auc"] if is_roc else e["average_precision"]
        ax.plot(
            x,
            y,
            linewidth=1.5 if len(entries) <= LEGEND_MAX else 0.8,
            label=f"{_plot_label(e['class'])} ({score:.3f})",
            drawstyle="default" if is_roc else "steps-post",
        )
    if is_roc:
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false positive rate" if is_roc else "recall")
    ax.set_ylabel("true positive rate" if is_roc else "precision")
    if entries and len(entries) <= LEGEND_MAX:
        ax.legend(
            loc="lower right" if is_roc else "lower left",
            fontsize=8,
            title="AUC" if is_roc else "average precision",
        )
    return {
        "score": "ROC AUC" if is_roc else "average precision",
        "macro": _num(m["macro"]["roc_auc" if is_roc else "average_precision"]),
        "plot": _plot(fig, "ROC curves" if is_roc else "precision-recall curves"),
        "skipped": [(s["class"], s["reason"]) for s in m["curves"]["skipped"] if s["curve"] == curve],
    }


def _calibration(m: Mapping[str, Any]) -> dict[str, object]:
    cal = m["calibration"]
    bins = cal["bins"]
    width = 1.0 / cal["n_bins"]
    fig = _canvas(6.5, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    full = [b for b in bins if b["count"]]
    top.bar(
        [b["lower"] for b in full],
        [b["accuracy"] for b in full],
        width=width,
        align="edge",
        edgecolor="black",
        label="accuracy",
    )
    top.plot(
        [b["lower"] + width / 2 for b in full],
        [b["confidence"] for b in full],
        "o",
        color="tab:red",
        label="mean confidence",
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize=8)
    bottom.bar(
        [b["lower"] for b in bins], [b["count"] for b in bins], width=width, align="edge", color="grey"
    )
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("top-label confidence")
    bottom.set_ylabel("items")
    rows = [
        [f"{b['lower']:.1f}–{b['upper']:.1f}", str(b["count"]), _num(b["accuracy"]), _num(b["confidence"])]
        for b in bins
    ]
    return {
        "n_bins": cal["n_bins"],
        "ece": _num(cal["ece"]),
        "mce": _num(cal["mce"]),
        "plot": _plot(fig, "reliability diagram"),
        "table": Table(["confidence", "items", "accuracy", "mean confidence"], rows),
    }


def _pairs(m: Mapping[str, Any], thumbnails: Mapping[str, str]) -> list[Pair]:
    """The most confused pairs; an empty list means no mistakes."""
    return [
        Pair(
            actual=pair["true"],
            predicted=pair["predicted"],
            count=pair["count"],
            rate=f"{pair['rate']:.1%}",
            examples=[(key, thumbnails.get(key) or None) for key in pair["example_keys"]],
        )
        for pair in m["confused_pairs"]
    ]


def _comparison(m: Mapping[str, Any]) -> dict[str, object] | None:
    """The side-by-side with the baseline model, or None when no baseline was given."""
    comp = m["comparison"]
    if comp is None:
        return None
    deltas = [
        [name.replace("_", " "), _num(d["model"]), _num(d["baseline"]), _signed(d["delta"])]
        for name, d in comp["deltas"].items()
    ]
    per_class = [
        [c["class"], _num(c["model"]), _num(c["baseline"]), _signed(c["delta"])] for c in comp["per_class_f1"]
    ]
    agree = comp["disagreement"]
    matrix = [
        ["model right", str(agree["both_correct"]), str(agree["only_model_correct"])],
        ["model wrong", str(agree["only_baseline_correct"]), str(agree["both_wrong"])],
    ]
    names = [c["class"] for c in comp["per_class_f1"]]
    k = len(names)
    fig, ax = _figure(6.5, max(3.0, 0.3 * k + 1.5))
    rows = np.arange(k)
    ax.barh(rows - 0.2, [c["model"] or 0.0 for c in comp["per_class_f1"]], height=0.4, label="model")
    ax.barh(rows + 0.2, [c["baseline"] or 0.0 for c in comp["per_class_f1"]], height=0.4, label="baseline")
    ax.set_yticks(rows, [_plot_label(n) for n in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1")
    ax.legend(fontsize=8)
    return {
        "baseline": _model_table("baseline", comp["baseline_model"]),
        "deltas": Table(["metric", "model", "baseline", "delta"], deltas),
        "plot": _plot(fig, "per-class F1, model and baseline"),
        "per_class": Table(["class", "model", "baseline", "delta"], per_class),
        "disagreement": Table(["", "baseline right", "baseline wrong"], matrix),
        "disagreeing": agree["only_model_correct"] + agree["only_baseline_correct"],
        "p_value": f"{agree['mcnemar_p_value']:.4g}",
    }
