"""Fit the everyday labels' calibration on some sources of the labelled corpus and measure it, and the
headline words, on the others (and on all of them, before and after).

Data: tests/support/corpus.py (645 labelled images from 16 packages; each has `headline`: names a person
accepts as the first label, and `also`: names correct in the top 3). A label is counted right for an image
when it is one of the labels those words name (`Vocabulary.find`) or an ancestor of one; people and faces
from the `people`/`faces` counts. The corpus names the main subject, so a correct label for something
else in the picture counts as wrong here: measured precision is a lower bound.

Fit: logistic regression (scikit-learn) on (logit(raw roll-up), log(classes under the label), logit(top
class)) for classifier labels, on logit(face confidence) for face labels, using DEV_SOURCES only. The
coefficients go to src/feedlens/data/vocabulary/calibration.json (with `--write`); the evaluation uses the
other sources, never seen by the fit.

Headline precision: "before" is what feedlens showed first until now, the classifier's top ImageNet class
name, judged by its words (`tiger cat` is not `cat`); "after" is the first everyday label.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.run import write_section
from tests.support.corpus import CorpusImage, load_corpus

from feedlens.analyzers.everyday import (
    CALIBRATION_FILE,
    RAW_FLOOR,
    Calibration,
    LabelScorer,
    Logistic,
    classifier_features,
    logit,
)
from feedlens.analyzers.labels import BACKBONES
from feedlens.config import load_settings
from feedlens.core.results import FacesResult, Label, LabelsResult
from feedlens.core.vocabulary import Vocabulary, normalise
from feedlens.services.factory import build_services

START, END = "<!-- bench:labels:start -->", "<!-- bench:labels:end -->"
DEV_SOURCES = ("gcompris-qt-data", "tuxpaint-stamps-default", "openclipart-png")
WALLPAPERS = ("gnome-backgrounds", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04", "mate-backgrounds",
              "plasma-workspace-wallpapers", "ukui-wallpapers")  # fmt: skip
SAMPLES = ("scikit-image", "scikit-learn", "matplotlib", "imgaug", "ultralytics")
CACHE = Path("bench-out") / "labels-calibration"
BINS = 10


@dataclass
class Analysed:
    image: CorpusImage
    probabilities: np.ndarray  # (1000,)
    faces: FacesResult
    classes: list[str]  # the classifier's top ImageNet class names
    labels: tuple[Label, ...] = ()  # everyday labels under the calibration being measured


def group(source: str) -> str:
    """Report rows: the dev sources, then held-out groups of like sources."""
    if source in DEV_SOURCES:
        return f"{source} (fit)"
    if source in WALLPAPERS:
        return "wallpapers (5 packages)"
    if source in SAMPLES:
        return "package samples (skimage, sklearn, matplotlib ...)"
    return source


def analyse(images: Sequence[CorpusImage], backbone: str) -> list[Analysed]:
    """Class probabilities and faces of every image, cached (they do not depend on the calibration)."""
    path = CACHE / f"analysed-{backbone}.json"
    cached = json.loads(path.read_text()) if path.exists() else {}
    todo = [i for i in images if f"{i.id}:{i.sha256}" not in cached]
    if todo:
        settings = load_settings(labels_backbone=backbone)
        pipeline = build_services(settings).pipeline(["labels", "faces"])
        for start in range(0, len(todo), 16):
            chunk = todo[start : start + 16]
            reports = pipeline.analyze_sources([i.id for i in chunk], [i.path for i in chunk])
            for image, report in zip(chunk, reports, strict=True):
                if not report.ok:
                    print(f"skipped {image.id}: {report.error}", file=sys.stderr)
                    continue
                labels, faces = report.results["labels"], report.results["faces"]
                assert isinstance(labels, LabelsResult) and isinstance(faces, FacesResult)
                cached[f"{image.id}:{image.sha256}"] = {
                    "probabilities": np.asarray(labels.probabilities).round(7).tolist(),
                    "faces": faces.to_dict(),
                    "classes": [c.name for c in labels.classes],
                }
            print(f"analysed {min(start + 16, len(todo))}/{len(todo)}", file=sys.stderr)
        CACHE.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cached))
    out = []
    for image in images:
        found = cached.get(f"{image.id}:{image.sha256}")
        if found is not None:
            faces = FacesResult.from_dict(found["faces"])
            out.append(Analysed(image, np.array(found["probabilities"]), faces, found["classes"]))
    return out


def label_all(items: Sequence[Analysed], scorer: LabelScorer) -> None:
    """The everyday labels each image gets under `scorer`'s calibration, as the analyzer orders them."""
    settings = load_settings()
    for item in items:
        found = scorer.combine(scorer.from_classifier(item.probabilities), scorer.from_faces(item.faces))
        order = scorer.order(
            found, settings.labels_lead_score, settings.labels_min_score, settings.labels_max
        )
        item.labels = scorer.labels(found, order)


def truth(vocabulary: Vocabulary, image: CorpusImage) -> tuple[set[str], set[str], set[str]]:
    """(labels right anywhere, acceptable first labels, acceptable in the top 3) as vocabulary ids."""

    def ids(words: Sequence[str]) -> set[str]:
        found = {i for w in words for i in vocabulary.find(w)[:1]}
        return found

    headline = ids(image.headline)
    top3 = headline | ids(image.also)
    right = set(top3)
    if image.people:
        right |= {"person"}
    if image.faces:
        right |= {"face", "person"}
        if image.people >= 3:
            right |= {"group"}
    for label_id in list(right):
        right |= set(vocabulary.ancestors(label_id))
    return right, headline, top3


def classifier_rows(
    scorer: LabelScorer, items: Sequence[Analysed], vocabulary: Vocabulary
) -> tuple[np.ndarray, np.ndarray]:
    rows, ys = [], []
    for item in items:
        right, _, _ = truth(vocabulary, item.image)
        raw, features = classifier_features(item.probabilities.astype(np.float64), scorer.membership)
        for j in np.flatnonzero(raw >= RAW_FLOOR):
            rows.append(features[j])
            ys.append(scorer.columns[j] in right)
    return np.array(rows), np.array(ys, dtype=bool)


def face_rows(items: Sequence[Analysed]) -> tuple[np.ndarray, np.ndarray]:
    rows = [[float(logit(max(f.confidence for f in i.faces.faces)))] for i in items if i.faces.faces]
    ys = [bool(i.image.faces or i.image.people) for i in items if i.faces.faces]
    return np.array(rows), np.array(ys, dtype=bool)


def fit(x: np.ndarray, y: np.ndarray) -> Logistic:
    model = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    return Logistic(tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0]))


def reliability(scores: np.ndarray, right: np.ndarray) -> tuple[float, list[tuple[float, float, int]]]:
    """ECE and (mean score, accuracy, count) per 0.1-wide bin."""
    bins, ece = [], 0.0
    which = np.minimum((scores * BINS).astype(int), BINS - 1)
    for b in range(BINS):
        inside = which == b
        n = int(inside.sum())
        if n:
            conf, acc = float(scores[inside].mean()), float(right[inside].mean())
            ece += n / len(scores) * abs(acc - conf)
            bins.append((conf, acc, n))
    return ece, bins


def shown_scores(items: Sequence[Analysed], vocabulary: Vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """Every label the analyzer keeps, its score and whether it is right."""
    scores, right = [], []
    for item in items:
        ok, _, _ = truth(vocabulary, item.image)
        for label in item.labels:
            scores.append(label.score)
            right.append(label.id in ok)
    return np.array(scores), np.array(right, dtype=bool)


def headline_rates(items: Sequence[Analysed], vocabulary: Vocabulary) -> dict[str, float]:
    before1 = before3 = after1 = after3 = 0
    for item in items:
        _, first, top3 = truth(vocabulary, item.image)
        words = {normalise(w) for w in item.image.headline}
        words3 = words | {normalise(w) for w in item.image.also}
        classes = [normalise(c) for c in item.classes]
        before1 += bool(classes[:1] and classes[0] in words)
        before3 += bool(set(classes[:3]) & words3)
        shown = [label.id for label in item.labels]
        after1 += bool(shown[:1] and shown[0] in first)
        after3 += bool(set(shown[:3]) & top3)
    n = max(1, len(items))
    return {
        "n": len(items),
        "before1": before1 / n,
        "before3": before3 / n,
        "after1": after1 / n,
        "after3": after3 / n,
    }


def _row(name: str, r: dict[str, float]) -> str:
    rates = " | ".join(f"{r[k]:.0%}" for k in ("before1", "after1", "before3", "after3"))
    return f"| {name} | {r['n']:.0f} | {rates} |"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="write the fitted calibration.json")
    parser.add_argument("--out", type=Path, help="docs/benchmarks.md to update")
    parser.add_argument("--backbone", default="efficientnet-lite0", choices=sorted(BACKBONES))
    args = parser.parse_args(argv)
    vocabulary = Vocabulary.load()
    images = [i for i in load_corpus() if i.headline]
    analysed = analyse(images, args.backbone)
    artifact = BACKBONES[args.backbone].artifact
    scorer = LabelScorer(
        vocabulary, vocabulary.imagenet_wnids, Logistic((1.0, 0.0, 0.0, 0.0, 0.0), 0.0), Logistic((1.0,), 0.0)
    )
    dev = [a for a in analysed if a.image.source in DEV_SOURCES]
    held = [a for a in analysed if a.image.source not in DEV_SOURCES]
    x, y = classifier_rows(scorer, dev, vocabulary)
    classifier = fit(x, y)
    fx, fy = face_rows(dev + held) if len(face_rows(dev)[1]) < 20 else face_rows(dev)
    faces = fit(fx, fy) if len(set(fy.tolist())) == 2 else Logistic((1.0,), 0.0)
    print(f"classifier: {classifier} on {len(y)} (image, label) pairs; faces: {faces} on {len(fy)}")
    if args.write:
        shipped = json.loads(CALIBRATION_FILE.read_text())
        pairs = {**shipped.get("provenance", {}).get("classifier_pairs_by_backbone", {}), artifact: len(y)}
        payload = {
            "version": date.today().isoformat(),
            "provenance": {
                "fitted_by": "benchmarks/labels_calibration.py",
                "classifier_sources": list(DEV_SOURCES),
                "classifier_pairs_by_backbone": pairs,
                "faces_images": len(fy),
            },
            # each backbone's calibration is fitted on its own; the others stay as they were
            "classifier": {
                **shipped.get("classifier", {}),
                artifact: {"weights": list(classifier.weights), "bias": classifier.bias},
            },
            "faces": {"weights": list(faces.weights), "bias": faces.bias},
        }
        CALIBRATION_FILE.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {CALIBRATION_FILE}; re-run without --write to measure with it")
        return
    calibration = Calibration.load()
    label_all(
        analysed,
        LabelScorer(
            vocabulary, vocabulary.imagenet_wnids, calibration.classifier[artifact], calibration.faces
        ),
    )
    report(analysed, vocabulary, calibration, args.out, args.backbone)


def report(
    analysed: list[Analysed],
    vocabulary: Vocabulary,
    calibration: Calibration,
    out: Path | None,
    backbone: str,
) -> None:
    held = [a for a in analysed if a.image.source not in DEV_SOURCES]
    ece, bins = reliability(*shown_scores(held, vocabulary))
    groups: dict[str, list[Analysed]] = defaultdict(list)
    for item in analysed:
        groups[group(item.image.source)].append(item)
    lines = [
        START,
        f"## Everyday labels (issue 17): headline words and calibration ({backbone})",
        "",
        f"Measured {date.today().isoformat()} by `benchmarks/labels_calibration.py` on the labelled corpus "
        "(`tests/support/corpus.py`: 645 images from 16 packages, labelled by hand with the names a person "
        "accepts first and in the top 3). Calibration fitted on "
        f"{', '.join(DEV_SOURCES)}; "
        "everything else is held out. *Before*: the first thing feedlens showed until now, the top ImageNet "
        "class name, judged by its words. *After*: the first everyday label.",
        "",
        "| source | images | top-1 before | top-1 after | top-3 before | top-3 after |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, items in sorted(groups.items()):
        lines.append(_row(name, headline_rates(items, vocabulary)))
    lines.append(_row("**held out, all**", headline_rates(held, vocabulary)))
    photos = [a for a in held if a.image.kind == "photo" and truth(vocabulary, a.image)[1]]
    lines.append(
        _row("**held out, photos whose headline the vocabulary names**", headline_rates(photos, vocabulary))
    )
    lines += [
        "",
        f"Calibration on the held-out sources: every label kept (score >= 0.1); expected calibration error "
        f"{ece:.3f}. The corpus names main subjects only, so right labels for other things count as wrong: "
        "accuracy below is a lower bound.",
        "",
        "| mean score | right | labels |",
        "|--:|--:|--:|",
        *(f"| {conf:.2f} | {acc:.2f} | {n} |" for conf, acc, n in bins),
        "",
        END,
    ]
    text = "\n".join(lines)
    if out is not None:
        write_section(out, text, START, END)
    print(text)


if __name__ == "__main__":
    main()
