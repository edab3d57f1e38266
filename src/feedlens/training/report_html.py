"""The evaluation report as one self-contained HTML page (see report.py for the metrics it shows).

No external asset: plots are base64 PNGs drawn with matplotlib's Agg canvas (a bare `Figure`, never
pyplot, so no global figure state is shared between threads), thumbnails are data URIs and the CSS is
inline. Every user-supplied string (class names, keys, model metadata, title) goes through `html.escape`,
and a Content-Security-Policy forbids scripts and remote loads should anything slip through.
Section ids (stable, tested): summary, per-class, confusion-matrix, roc, pr, calibration, confused-pairs,
comparison.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
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
LEGEND_MAX = 12  # more curves than this: no legend, the per-class table has the numbers
ANNOTATE_MAX = 20  # confusion-matrix cells get their count written in when K is at most this
LABEL_CHARS = 28
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
nav a{margin-right:1em}table{border-collapse:collapse;margin:.8em 0}
td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}th{background:#f4f4f4}
td.name,th.name{text-align:left}.note{color:#666}.plot{max-width:100%;height:auto}
.pair{margin:1em 0}.thumbs figure{display:inline-block;margin:0 .8em .5em 0;text-align:center}
.thumbs figcaption{font-size:.8em;color:#555;max-width:140px;overflow-wrap:anywhere}
.pos{color:#1a7f37}.neg{color:#b42318}
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def render_html(metrics: Mapping[str, Any], thumbnails: Mapping[str, str], title: str) -> str:
    body = [
        _summary(metrics),
        _per_class(metrics),
        _confusion(metrics),
        _roc(metrics),
        _pr(metrics),
        _calibration(metrics),
        _pairs(metrics, thumbnails),
        _comparison(metrics),
    ]
    nav = " ".join(f'<a href="#{sid}">{label}</a>' for sid, label in SECTIONS)
    sections = "\n".join(
        f'<section id="{sid}">\n<h2>{label}</h2>\n{content}\n</section>'
        for (sid, label), content in zip(SECTIONS, body, strict=True)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n<nav>{nav}</nav>\n{sections}\n</body>\n</html>\n"
    )


# -- helpers -------------------------------------------------------------------------------------------
def _num(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _signed(x: float | None) -> str:
    if x is None:
        return "n/a"
    css = "pos" if x > 0 else "neg" if x < 0 else ""
    return f'<span class="{css}">{x:+.3f}</span>'


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], names: int = 1) -> str:
    """Cells are HTML already (callers escape); the first `names` columns are left-aligned."""

    def cells(row: Sequence[str], tag: str) -> str:
        return "".join(f"<{tag}{' class=name' if i < names else ''}>{c}</{tag}>" for i, c in enumerate(row))

    body = "".join(f"<tr>{cells(r, 'td')}</tr>" for r in rows)
    return f"<table><thead><tr>{cells(header, 'th')}</tr></thead><tbody>{body}</tbody></table>"


def _plot_label(name: str) -> str:
    """A class name safe for matplotlib text: `$` would start mathtext, a leading `_` hides a legend entry."""
    short = name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"
    short = short.replace("$", r"\$")
    return " " + short if short.startswith("_") else short


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _img(fig: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img class="plot" alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _model_rows(info: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if info is None:
        return [("model", '<span class="note">not given</span>')]
    rows = [
        ("version", escape(str(info["version"]))),
        ("dataset hash", escape(str(info["dataset_hash"] or "n/a"))),
    ]
    rows += [
        (f"parameter {escape(str(k))}", escape(json.dumps(v, ensure_ascii=False)))
        for k, v in sorted(info["parameters"].items())
    ]
    return rows


# -- sections ------------------------------------------------------------------------------------------
def _summary(m: Mapping[str, Any]) -> str:
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
    absent = [c["class"] for c in m["per_class"] if c["support"] == 0]
    note = (
        f'<p class="note">Not in the evaluated items (no recall, ROC or PR): {escape(", ".join(absent))}.</p>'
        if absent
        else ""
    )
    return (
        _table(["model", ""], _model_rows(m["model"]))
        + _table(["metric", "value"], rows)
        + note
        + '<p class="note">Macro precision, recall and F1 average the classes present or predicted.</p>'
    )


def _per_class(m: Mapping[str, Any]) -> str:
    header = ["class", "support", "predicted", "precision", "recall", "F1", "ROC AUC", "average precision"]
    rows = [
        [escape(c["class"]), str(c["support"]), str(c["predicted"])]
        + [_num(c[key]) for key in ("precision", "recall", "f1", "roc_auc", "average_precision")]
        for c in m["per_class"]
    ]
    return _table(header, rows)


def _confusion(m: Mapping[str, Any]) -> str:
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
    header = ["true \\ predicted", *(escape(n) for n in names)]
    rows = [[escape(n), *(str(v) for v in cm[i])] for i, n in enumerate(names)]
    return _img(fig, "confusion matrix") + _table(header, rows)


def _skipped_note(m: Mapping[str, Any], curve: str) -> str:
    skipped = [s for s in m["curves"]["skipped"] if s["curve"] == curve]
    if not skipped:
        return ""
    items = "; ".join(f"{escape(s['class'])} ({escape(s['reason'])})" for s in skipped)
    return f'<p class="note">Skipped: {items}.</p>'


def _curves(m: Mapping[str, Any], curve: str) -> str:
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
    key = "roc_auc" if is_roc else "average_precision"
    macro = m["macro"][key]
    text = f"<p>Macro {'ROC AUC' if is_roc else 'average precision'}: {_num(macro)} (one-vs-rest).</p>"
    return text + _img(fig, "ROC curves" if is_roc else "precision-recall curves") + _skipped_note(m, curve)


def _roc(m: Mapping[str, Any]) -> str:
    return _curves(m, "roc")


def _pr(m: Mapping[str, Any]) -> str:
    return _curves(m, "pr")


def _calibration(m: Mapping[str, Any]) -> str:
    cal = m["calibration"]
    bins = cal["bins"]
    width = 1.0 / cal["n_bins"]
    fig = Figure(figsize=(6.5, 6.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
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
    return (
        f"<p>Expected calibration error (ECE, {cal['n_bins']} bins): {_num(cal['ece'])}; "
        f"maximum calibration error: {_num(cal['mce'])}.</p>"
        + _img(fig, "reliability diagram")
        + _table(["confidence", "items", "accuracy", "mean confidence"], rows)
    )


def _pairs(m: Mapping[str, Any], thumbnails: Mapping[str, str]) -> str:
    pairs = m["confused_pairs"]
    if not pairs:
        return '<p class="note">No mistakes: every item is predicted as its true class.</p>'
    parts = []
    for pair in pairs:
        figures = []
        for key in pair["example_keys"]:
            src = thumbnails.get(key)
            picture = (
                f'<img alt="{escape(key)}" src="{escape(src)}">'
                if src
                else '<span class="note">no image</span>'
            )
            figures.append(f"<figure>{picture}<figcaption>{escape(key)}</figcaption></figure>")
        parts.append(
            f'<div class="pair"><h3>{escape(pair["true"])} → {escape(pair["predicted"])}</h3>'
            f"<p>{pair['count']} items ({pair['rate']:.1%} of {escape(pair['true'])})</p>"
            f'<div class="thumbs">{"".join(figures)}</div></div>'
        )
    return "\n".join(parts)


def _comparison(m: Mapping[str, Any]) -> str:
    comp = m["comparison"]
    if comp is None:
        return '<p class="note">No baseline model was given.</p>'
    deltas = [
        [escape(name.replace("_", " ")), _num(d["model"]), _num(d["baseline"]), _signed(d["delta"])]
        for name, d in comp["deltas"].items()
    ]
    per_class = [
        [escape(c["class"]), _num(c["model"]), _num(c["baseline"]), _signed(c["delta"])]
        for c in comp["per_class_f1"]
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
    return (
        _table(["baseline", ""], _model_rows(comp["baseline_model"]))
        + '<p class="note">delta = model - baseline (for ECE, MCE, log loss and Brier score lower is '
        "better).</p>"
        + _table(["metric", "model", "baseline", "delta"], deltas)
        + "<h3>Per-class F1</h3>"
        + _img(fig, "per-class F1, model and baseline")
        + _table(["class", "model", "baseline", "delta"], per_class)
        + "<h3>Disagreement</h3>"
        + _table(["", "baseline right", "baseline wrong"], matrix)
        + f"<p>McNemar exact test on the {agree['only_model_correct'] + agree['only_baseline_correct']} "
        f"items the models disagree on: p = {agree['mcnemar_p_value']:.4g}.</p>"
    )
