"""Evaluation report: numbers against an independent scikit-learn computation, every section, escaping,
edge cases and bad input.

The model under test is real: logistic regression on scikit-learn's handwritten digits (8x8 scans, which
also serve as the confused pairs' thumbnails), with Gaussian naive Bayes as the comparison baseline.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as skm
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.preprocessing import label_binarize
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from feedlens.training.report import EvaluationInputError, EvaluationReport, ModelInfo, evaluate
from feedlens.training.report_html import SECTIONS, TEMPLATE, _context, _environment, render_html

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SECTION_IDS = [sid for sid, _ in SECTIONS]
METRIC_KEYS = {
    "schema_version", "model", "classes", "n_items", "accuracy", "macro", "log_loss", "brier_score",
    "per_class", "confusion_matrix", "curves", "calibration", "confused_pairs", "comparison",
}  # fmt: skip


class Digits:
    def __init__(self) -> None:
        data = load_digits()
        self.images = data.images
        x, y = data.data / 16.0, data.target
        train = np.arange(len(y)) < 900  # the rest (897 scans) is the evaluation set
        self.y = y[~train]
        self.index = np.flatnonzero(~train)
        self.keys = [f"digit-{i}" for i in self.index]
        with threadpool_limits(1):  # a tiny problem: BLAS threads on a shared box cost 100x here
            self.proba = LogisticRegression(max_iter=500).fit(x[train], y[train]).predict_proba(x[~train])
        self.base = GaussianNB().fit(x[train], y[train]).predict_proba(x[~train])
        self.loaded: list[str] = []

    def thumbnail(self, key: str) -> Image.Image | bytes:
        """PIL image for even scans, PNG bytes for odd ones: both forms the loader may return."""
        self.loaded.append(key)
        i = int(key.split("-")[1])
        image = Image.fromarray((self.images[i] * 15.9).astype(np.uint8))
        if i % 2 == 0:
            return image
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()


@pytest.fixture(scope="module")
def digits() -> Digits:
    return Digits()


@pytest.fixture(scope="module")
def report(digits: Digits) -> EvaluationReport:
    return evaluate(
        NAMES,
        digits.y,
        digits.proba,
        keys=digits.keys,
        thumbnails=digits.thumbnail,
        model=ModelInfo("v2", dataset_hash="sha256:abc", parameters={"C": 1.0, "mode": "probe"}),
        baseline_probabilities=digits.base,
        baseline_model=ModelInfo("v1"),
    )


@pytest.fixture(scope="module")
def page(report: EvaluationReport) -> str:
    return report.to_html()


def _section(page: str, sid: str) -> str:
    match = re.search(rf'<section id="{sid}">(.*?)</section>', page, re.S)
    assert match, sid
    return match.group(1)


def test_numbers_match_scikit_learn(report: EvaluationReport, digits: Digits) -> None:
    m, y, p = report.metrics, digits.y, digits.proba
    pred = p.argmax(axis=1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert 0.85 < m["accuracy"] < 1.0  # a real, imperfect model: the pairs and curves have content
    assert m["macro"]["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["macro"]["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert m["macro"]["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert m["macro"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    onehot = label_binarize(y, classes=range(10))
    assert m["macro"]["average_precision"] == pytest.approx(skm.average_precision_score(onehot, p))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert m["brier_score"] == pytest.approx(np.mean(np.sum((p - onehot) ** 2, axis=1)))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    precision, recall, f1, support = skm.precision_recall_fscore_support(y, pred)
    aps = skm.average_precision_score(onehot, p, average=None)
    for c, row in enumerate(m["per_class"]):
        assert row["class"] == NAMES[c]
        assert row["support"] == support[c]
        assert row["predicted"] == int((pred == c).sum())
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((precision[c], recall[c], f1[c]))
        assert row["roc_auc"] == pytest.approx(skm.roc_auc_score(y == c, p[:, c]))
        assert row["average_precision"] == pytest.approx(aps[c])
    roc = m["curves"]["roc"][3]
    fpr, tpr, _ = skm.roc_curve(y == 3, p[:, 3])
    assert np.allclose(roc["fpr"], fpr, atol=1e-6) and np.allclose(roc["tpr"], tpr, atol=1e-6)
    assert m["curves"]["skipped"] == []


def test_every_section_present_and_self_contained(report: EvaluationReport, page: str) -> None:
    assert set(report.metrics) == METRIC_KEYS
    assert SECTION_IDS == [
        "summary", "per-class", "confusion-matrix", "roc", "pr",
        "calibration", "confused-pairs", "comparison",
    ]  # fmt: skip
    for sid in SECTION_IDS:
        assert page.count(f'id="{sid}"') == 1
    for sid in ("confusion-matrix", "roc", "pr", "calibration", "comparison"):
        assert '<img class="plot"' in _section(page, sid), sid
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page
    assert "<link" not in page.lower()
    # the numbers on the page are the metrics' numbers
    assert f"{report.metrics['accuracy']:.3f}" in _section(page, "summary")
    assert f"{report.metrics['calibration']['ece']:.3f}" in _section(page, "calibration")
    assert "sha256:abc" in _section(page, "summary") and "probe" in _section(page, "summary")
    json.loads(report.to_json())  # strict JSON: no NaN


def test_confused_pairs_with_examples(report: EvaluationReport, digits: Digits, page: str) -> None:
    y, p = digits.y, digits.proba
    pred = p.argmax(axis=1)
    cm = skm.confusion_matrix(y, pred)
    np.fill_diagonal(cm, 0)
    pairs = report.metrics["confused_pairs"]
    assert len(pairs) == 5
    assert [q["count"] for q in pairs] == sorted(cm.ravel().tolist(), reverse=True)[:5]
    for q in pairs:
        t, w = q["true_index"], q["predicted_index"]
        assert (NAMES[t], NAMES[w], q["count"]) == (q["true"], q["predicted"], cm[t, w])
        assert q["rate"] == pytest.approx(cm[t, w] / (y == t).sum())
        examples = [digits.keys.index(k) for k in q["example_keys"]]
        assert len(examples) == min(3, q["count"])
        assert all(y[i] == t and pred[i] == w for i in examples)
        confidence = p[examples, w]
        assert list(confidence) == sorted(confidence, reverse=True)  # most confident mistakes first
    shown = [k for q in pairs for k in q["example_keys"]]
    assert sorted(digits.loaded) == sorted(shown)  # the loader is asked for the examples only
    assert set(report.thumbnails) == set(shown)
    section = _section(page, "confused-pairs")
    assert section.count("data:image/png;base64,") == len(shown)
    thumb = Image.open(io.BytesIO(_decode(report.thumbnails[shown[0]])))
    assert max(thumb.size) == 128


def _decode(uri: str) -> bytes:
    return base64.b64decode(uri.split(",", 1)[1])


def test_comparison_against_independent_counts(report: EvaluationReport, digits: Digits, page: str) -> None:
    comp = report.metrics["comparison"]
    y, a, b = digits.y, digits.proba.argmax(axis=1), digits.base.argmax(axis=1)
    acc = comp["deltas"]["accuracy"]
    assert acc["model"] == pytest.approx(skm.accuracy_score(y, a))
    assert acc["baseline"] == pytest.approx(skm.accuracy_score(y, b))
    assert acc["delta"] == pytest.approx(acc["model"] - acc["baseline"])
    assert acc["delta"] > 0  # logistic regression beats naive Bayes on digits
    assert comp["baseline"]["macro"]["f1"] == pytest.approx(skm.f1_score(y, b, average="macro"))
    f1_a, f1_b = skm.f1_score(y, a, average=None), skm.f1_score(y, b, average=None)
    assert [c["delta"] for c in comp["per_class_f1"]] == pytest.approx(list(f1_a - f1_b))
    d = comp["disagreement"]
    right_a, right_b = a == y, b == y
    only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    assert (d["only_model_correct"], d["only_baseline_correct"]) == (only_a, only_b)
    assert d["both_correct"] + d["both_wrong"] + only_a + only_b == len(y)
    n = only_a + only_b  # exact two-sided McNemar by hand
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n
    assert d["mcnemar_p_value"] == pytest.approx(min(1.0, 2 * tail))
    assert set(comp["deltas"]) >= {"accuracy", "macro_f1", "macro_roc_auc", "ece", "log_loss"}
    assert comp["baseline_model"]["version"] == "v1" and "curves" not in comp["baseline"]
    assert str(only_b) in _section(page, "comparison")


def test_ece_by_hand() -> None:
    proba = np.array([[0.95, 0.05], [0.08, 0.92], [0.35, 0.65], [0.62, 0.38], [0.45, 0.55], [1.0, 0.0]])
    y = np.array([0, 0, 1, 1, 0, 0])
    # top-label confidence and correctness: .95 yes, .92 no, .65 yes, .62 no, .55 no, 1.0 yes
    # bin 0.9-1.0: {.95, .92, 1.0} accuracy 2/3, confidence .956667; bin 0.6: {.65, .62} 1/2 vs .635;
    # bin 0.5: {.55} 0 vs .55
    expected = 3 / 6 * abs(2 / 3 - 2.87 / 3) + 2 / 6 * abs(0.5 - 0.635) + 1 / 6 * 0.55
    cal = evaluate(["a", "b"], y, proba).metrics["calibration"]
    assert cal["ece"] == pytest.approx(expected)
    assert cal["ece"] == pytest.approx(0.2816667, abs=1e-6)
    assert cal["mce"] == pytest.approx(0.55)
    assert [b["count"] for b in cal["bins"]] == [0, 0, 0, 0, 0, 1, 2, 0, 0, 3]
    assert cal["bins"][6]["accuracy"] == 0.5 and cal["bins"][6]["confidence"] == pytest.approx(0.635)
    assert cal["bins"][0]["accuracy"] is None


def test_hostile_strings_are_escaped(digits: Digits) -> None:
    hostile = "<script>alert(1)</script>"
    key = '"><img src=x onerror=alert(2)>'
    names = [hostile, "cost $5 & $x_1", r"price $\nope{x}$", "_hidden", *NAMES[4:]]
    keys = [key if i == 0 else k for i, k in enumerate(digits.keys)]
    wrong = np.flatnonzero(digits.proba.argmax(axis=1) != digits.y)
    keys[wrong[0]] = key  # make sure the hostile key can be an example
    report = evaluate(
        names,
        digits.y,
        digits.proba,
        keys=keys,
        model=ModelInfo("<b>v", parameters={"<i>": "</td>"}),
        baseline_probabilities=digits.base,
        title="<title>x",
    )
    page = report.to_html()
    assert "<script" not in page and hostile not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "onerror=alert(2)>" not in page and "<img src=x" not in page
    assert "<b>v" not in page and "<i>" not in page and "&lt;title&gt;x" in page
    # `$...$` would be mathtext to matplotlib (an unknown command fails the whole plot)
    assert "cost $5 &amp; $x_1" in page and r"price $\nope{x}$" in page
    assert report.metrics["classes"][0] == hostile  # the data itself is kept verbatim


def test_class_absent_from_y_true() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)  # class 2 never occurs; class 3 neither occurs nor is predicted
    proba = np.full((60, 4), 0.05)
    proba[np.arange(60), y] = 0.85
    proba[:6] = [0.1, 0.1, 0.75, 0.05]  # six items predicted as the absent class
    report = evaluate(["a", "b", "c", "d"], y, proba)
    m = report.metrics
    pred = proba.argmax(axis=1)
    assert m["macro"]["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    absent, unused = m["per_class"][2], m["per_class"][3]
    assert absent["support"] == 0 and absent["predicted"] == 6 and absent["precision"] == 0.0
    assert absent["roc_auc"] is None and absent["average_precision"] is None
    assert unused["precision"] is None and unused["f1"] is None
    aucs = [skm.roc_auc_score(y == c, proba[:, c]) for c in (0, 1)]
    assert m["macro"]["roc_auc"] == pytest.approx(np.mean(aucs))
    skipped = {(s["class"], s["curve"]) for s in m["curves"]["skipped"]}
    assert skipped == {("c", "roc"), ("c", "pr"), ("d", "roc"), ("d", "pr")}
    assert [r["class"] for r in m["curves"]["roc"]] == ["a", "b"]
    page = report.to_html()
    assert "Skipped: c (no positives in y_true); d (no positives in y_true)" in _section(page, "roc")


def test_perfect_predictions() -> None:
    y = np.array([0, 1, 2, 2, 1, 0, 2])
    report = evaluate(["a", "b", "c"], y, np.eye(3)[y])
    m = report.metrics
    assert m["accuracy"] == 1.0 and m["macro"]["f1"] == 1.0 and m["macro"]["roc_auc"] == 1.0
    assert m["calibration"]["ece"] == 0.0 and m["confused_pairs"] == []
    assert m["confusion_matrix"] == np.diag([2, 2, 3]).tolist()
    assert "No mistakes" in _section(report.to_html(), "confused-pairs")


def test_two_classes() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p1 = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.25, 200), 0, 1)
    proba = np.stack([1 - p1, p1], axis=1)
    m = evaluate(["cat", "dog"], y, proba).metrics
    assert m["per_class"][1]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p1))
    assert m["per_class"][0]["roc_auc"] == pytest.approx(m["per_class"][1]["roc_auc"])
    assert m["per_class"][1]["average_precision"] == pytest.approx(skm.average_precision_score(y, p1))
    assert m["macro"]["f1"] == pytest.approx(skm.f1_score(y, proba.argmax(axis=1), average="macro"))
    assert len(m["confused_pairs"]) == 2


def test_everything_predicted_as_one_class() -> None:
    y = np.array([0, 1, 2, 0, 1, 2, 1])
    proba = np.tile([0.5, 0.3, 0.2], (7, 1))
    report = evaluate(["a", "b", "c"], y, proba)
    m = report.metrics
    pred = np.zeros(7, dtype=int)
    assert m["macro"]["precision"] == pytest.approx(
        skm.precision_score(y, pred, average="macro", zero_division=0)
    )
    assert m["macro"]["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert [row[1:] for row in m["confusion_matrix"]] == [[0, 0]] * 3
    assert [(q["true"], q["predicted"], q["count"]) for q in m["confused_pairs"]] == [
        ("b", "a", 3),
        ("c", "a", 2),
    ]
    assert m["per_class"][1]["roc_auc"] == 0.5  # constant scores rank nothing
    assert m["calibration"]["bins"][5]["count"] == 7
    report.to_html()


def test_items_of_a_single_class() -> None:
    y = np.zeros(5, dtype=np.int64)
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.8, 0.2], [0.55, 0.45]])
    report = evaluate(["a", "b"], y, proba)
    m = report.metrics
    assert m["accuracy"] == pytest.approx(0.8) and m["macro"]["roc_auc"] is None
    assert m["per_class"][0]["roc_auc"] is None and m["per_class"][0]["average_precision"] == 1.0
    assert {(s["class"], s["curve"], s["reason"]) for s in m["curves"]["skipped"]} == {
        ("a", "roc", "no negatives in y_true"),
        ("b", "roc", "no positives in y_true"),
        ("b", "pr", "no positives in y_true"),
    }
    assert "a (no negatives in y_true)" in _section(report.to_html(), "roc")


def test_loader_failures_do_not_sink_the_report(digits: Digits) -> None:
    def flaky(key: str) -> bytes:
        if key.endswith(("1", "3", "5", "7", "9")):
            raise FileNotFoundError(key)
        return b"not an image" if key.endswith("0") else digits.thumbnail(key)  # type: ignore[return-value]

    report = evaluate(NAMES, digits.y, digits.proba, keys=digits.keys, thumbnails=flaky)
    shown = [k for q in report.metrics["confused_pairs"] for k in q["example_keys"]]
    ok = {k for k in shown if k[-1] in "2468"}
    assert set(report.thumbnails) == ok
    section = _section(report.to_html(), "confused-pairs")
    assert section.count("no image") == len(shown) - len(ok)


def test_write_is_atomic_and_round_trips(report: EvaluationReport, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "v2"
    json_path, html_path = report.write(out)
    assert json.loads(json_path.read_text()) == report.metrics
    assert html_path.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "report.html"]  # no partial files
    assert json_path.stat().st_mode & 0o044  # readable by the server, not only the writer
    report.write(out)  # rewriting replaces in place
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "report.html"]


def _bad(**change: Any) -> dict[str, Any]:
    y = np.array([0, 1, 2, 1])
    args: dict[str, Any] = {"class_names": ["a", "b", "c"], "y_true": y, "probabilities": np.eye(3)[y]}
    return {**args, **change}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (_bad(probabilities=np.eye(3)[[0, 1, 2]]), r"shape \(4, 3\)"),
        (_bad(probabilities=np.full((4, 2), 0.5)), r"shape \(4, 3\)"),
        (_bad(probabilities=np.array([[2.0, -1.0, 0.5]] * 4)), r"\[0, 1\]"),
        (_bad(probabilities=np.full((4, 3), 0.2)), "sum to 1"),
        (_bad(probabilities=np.array([[np.nan, 0.5, 0.5]] * 4)), "NaN"),
        (_bad(y_true=np.array([0, 1, 3, 1])), r"outside \[0, 3\).*first: 3 at index 2"),
        (_bad(y_true=np.array([0, -1, 2, 1])), "outside"),
        (_bad(y_true=np.array([0.0, 1.0, 2.0, 1.0])), "integer"),
        (_bad(y_true=np.zeros((4, 1), dtype=int)), r"\(N,\)"),
        (_bad(class_names=["a", "a", "c"]), "unique"),
        (_bad(class_names=["a"], probabilities=np.ones((4, 1))), "at least 2"),
        (_bad(keys=["k1", "k2"]), "keys has 2 entries for 4 items"),
        (_bad(thumbnails=lambda key: b""), "need item keys"),
        (_bad(model=ModelInfo("v", parameters={"when": object()})), "JSON-serialisable"),
        (_bad(baseline_probabilities=np.eye(3)), "baseline_probabilities must have shape"),
    ],
)
def test_bad_input_is_refused_clearly(args: dict[str, Any], message: str) -> None:
    with pytest.raises(EvaluationInputError, match=message) as info:
        evaluate(**args)
    assert isinstance(info.value, ValueError) and info.value.code == "invalid_evaluation_input"


# -- the Jinja2 template: autoescape everywhere, StrictUndefined ------------------------------------------
EVIL = '<script>alert(1)</script>"&'
EVIL_HTML = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&amp;"  # markupsafe spells `"` as &#34;
PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "nav", "a", "section", "h2", "h3", "p", "span",
    "div", "table", "thead", "tbody", "tr", "th", "td", "img", "figure", "figcaption",
}  # fmt: skip


class _Markup(HTMLParser):
    """Every tag with its attributes, and every text run, as a browser would read them (entities decoded)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _small_report(name: str = "a", key: str = "k0", title: str = "Evaluation report") -> EvaluationReport:
    """Nine items, three classes, item 0 (key `key`, class `name`) mistaken for "b"; a baseline too."""
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])
    proba = np.eye(3)[y] * 0.8 + 0.1 * (1 - np.eye(3)[y])
    proba[0] = [0.2, 0.7, 0.1]
    return evaluate(
        [name, "b", "c"],
        y,
        proba,
        keys=[key, *(f"k{i}" for i in range(1, 9))],
        model=ModelInfo(name, dataset_hash=name, parameters={name: name}),
        baseline_probabilities=np.full((9, 3), 1 / 3),
        baseline_model=ModelInfo(name),
        title=title,
    )


def test_user_strings_are_escaped_everywhere() -> None:
    report = _small_report(EVIL, EVIL, EVIL)
    thumb = 'data:image/png;base64,AAAA"><script>alert(2)</script>'
    page = render_html(report.metrics, {EVIL: thumb}, report.title)
    assert "<script" not in page.lower() and EVIL not in page
    # every occurrence is escaped (the JSON-quoted parameter value has a backslash before its `"`)
    assert page.count("alert(1)") == page.count("&lt;script&gt;alert(1)&lt;/script&gt;") > 10
    assert f"<title>{EVIL_HTML}</title>" in page and f"<h1>{EVIL_HTML}</h1>" in page
    for sid in ("summary", "per-class", "confusion-matrix", "confused-pairs", "comparison"):
        assert EVIL_HTML in _section(page, sid), sid
    assert f"<td class=name>parameter {EVIL_HTML}</td>" in _section(page, "summary")
    pairs = _section(page, "confused-pairs")
    assert f'<img alt="{EVIL_HTML}" src="data:image/png;base64,AAAA&#34;&gt;&lt;script&gt;alert(2)' in pairs
    assert f"<h3>{EVIL_HTML} → b</h3>" in pairs and f"<figcaption>{EVIL_HTML}</figcaption>" in pairs
    # read as a browser would: only the page's own tags and attributes, and the strings come back verbatim
    markup = _Markup()
    markup.feed(page)
    assert {tag for tag, _ in markup.tags} <= PAGE_TAGS
    assert all(set(attrs) <= {"class", "alt", "src"} for tag, attrs in markup.tags if tag == "img")
    assert [attrs["src"] for _, attrs in markup.tags if attrs.get("alt") == EVIL] == [thumb]
    assert sum(run.count(EVIL) for run in markup.text) == page.count(EVIL_HTML) - 1  # less the img alt


@pytest.fixture(scope="module")
def small_context() -> dict[str, Any]:
    report = _small_report()
    return _context(report.metrics, {}, report.title)


def test_template_renders_the_whole_context(small_context: dict[str, Any]) -> None:
    env = _environment()
    assert env is _environment() and env.autoescape is True and env.undefined is jinja2.StrictUndefined
    page = env.get_template(TEMPLATE).render(small_context)
    assert page.startswith("<!DOCTYPE html>\n") and page.endswith("</html>\n")
    assert set(small_context["data"]) == set(SECTION_IDS)
    assert re.findall(r'<section id="([^"]+)">', page) == SECTION_IDS
    assert re.findall(r'<a href="#([^"]+)">', page) == SECTION_IDS
    assert '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:;' in page
    assert "<style>" in page and '<span class="pos">' in _section(page, "comparison")


@pytest.mark.parametrize("sid", SECTION_IDS)
def test_a_missing_section_fails_the_render(small_context: dict[str, Any], sid: str) -> None:
    data = {k: v for k, v in small_context["data"].items() if k != sid}
    with pytest.raises(jinja2.UndefinedError):
        _environment().get_template(TEMPLATE).render({**small_context, "data": data})


def test_a_misspelt_value_fails_the_render(small_context: dict[str, Any]) -> None:
    summary = dict(small_context["data"]["summary"])
    summary["metric"] = summary.pop("metrics")  # a renamed key must not render as a blank table
    data = {**small_context["data"], "summary": summary}
    with pytest.raises(jinja2.UndefinedError, match="metrics"):
        _environment().get_template(TEMPLATE).render({**small_context, "data": data})
    with pytest.raises(jinja2.UndefinedError):
        _environment().get_template(TEMPLATE).render({k: v for k, v in small_context.items() if k != "title"})


def test_importing_the_module_loads_neither_matplotlib_nor_jinja2() -> None:
    code = (
        "import sys, feedlens.training.report_html; "
        "print('matplotlib' in sys.modules, 'jinja2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
