"""Measures of the cross-domain category benchmark (benchmarks/categories_quality.py): a labelled domain,
macro-F1 of top-1 and multi-label assignments, the plain ConSE baseline and the zero-shot method as it
was before issue 19 (read from git), all on the same stored analysis.
"""

from __future__ import annotations

import subprocess
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from category_domains import SUBJECTS, Item

from feedlens.core.results import LabelsResult
from feedlens.core.taxonomy import parse_taxonomy
from feedlens.services.categories import TaxonomyCompiler
from feedlens.services.categories.zero_shot import CompiledTaxonomy, Evidence

TEAM = Path(__file__).parent.parent / "tests" / "services" / "data" / "team_taxonomy.yaml"
BEFORE = "3c8822a"  # the last commit before issue 19's zero-shot


@dataclass(frozen=True)
class Domain:
    name: str
    items: list[Item]
    evidence: list[Evidence]
    truth: np.ndarray  # (N,) index into SUBJECTS, -1 for a distractor


@dataclass(frozen=True)
class Scores:
    top1: float  # macro-F1 of the best category
    multi: float  # macro-F1 of the assigned sets
    other: float  # share of images assigned `other` only
    largest: float  # the largest share of images any one category was assigned


def macro_f1(assigned: np.ndarray, truth: np.ndarray) -> float:
    """(N, C) bool assignments against one true category per image; mean F1 over the categories that are
    true of an image or assigned to one (scikit-learn's macro average: a category a method assigns where
    no image is of it counts, with F1 0)."""
    out = []
    keep = truth >= 0
    present = set(np.unique(truth[keep]).tolist()) | set(np.flatnonzero(assigned[keep].any(axis=0)).tolist())
    for c in sorted(present):
        tp = float((assigned[:, c] & (truth == c)).sum())
        fp = float((assigned[:, c] & (truth != c)).sum())
        fn = float((~assigned[:, c] & (truth == c)).sum())
        out.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(out)) if out else 0.0


def top1_matrix(scores: np.ndarray) -> np.ndarray:
    out = np.zeros(scores.shape, dtype=bool)
    out[np.arange(len(scores)), scores.argmax(axis=1)] = True
    return out


def measure(scores: np.ndarray, assigned: np.ndarray, truth: np.ndarray) -> Scores:
    keep = truth >= 0
    s, a, t = scores[keep], assigned[keep], truth[keep]
    return Scores(
        top1=macro_f1(top1_matrix(s), t),
        multi=macro_f1(a, t),
        other=float((~a.any(axis=1)).mean()),
        largest=float(a.mean(axis=0).max()),
    )


def conse(domain: Domain, compiled: CompiledTaxonomy, compiler: TaxonomyCompiler) -> np.ndarray:
    """(N, C) the baseline: probability-weighted class-name vectors of the stored top classes, cosine with
    the category's texts (the best of them)."""
    table = compiler.table
    row = {wnid: i for i, wnid in enumerate(table.wnids)}
    out = np.zeros((len(domain.items), len(compiled.names)))
    for i, item in enumerate(domain.items):
        labels = item.results.get("labels")
        assert isinstance(labels, LabelsResult)
        vector = sum(c.score * table.vectors[row[c.wnid]] for c in labels.classes)
        vector = np.asarray(vector) / max(float(np.linalg.norm(vector)), 1e-12)
        out[i] = [float((p @ vector).max()) for p in compiled.prototypes]
    return out


def before(domain: Domain, compiler: TaxonomyCompiler) -> tuple[np.ndarray, np.ndarray] | None:
    """Scores (N, C) and assignments of the zero-shot method as it was before issue 19 (one logistic
    fusion fitted on Tux Paint, no normalisation), read from git at BEFORE; None outside a git checkout."""
    try:
        source = subprocess.run(
            ["git", "show", f"{BEFORE}:src/feedlens/services/categories/zero_shot.py"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    old = types.ModuleType("zero_shot_before")
    sys.modules[old.__name__] = old  # dataclasses look their module up
    exec(compile(source, old.__name__, "exec"), old.__dict__)  # our own file at BEFORE
    compiled = old.compile_taxonomy(parse_taxonomy(TEAM.read_text()), 1, compiler.encoder, compiler.table)
    evidence = [
        old.Evidence.from_results(i.results, content=i.content, visual=i.visual) for i in domain.items
    ]
    feats = np.stack([old.features(compiled, e) for e in evidence])
    probs, _ = old.zero_shot(compiled, feats)
    thresholds = np.array([m.threshold for m in old.fusions(compiled)])
    return probs, probs >= thresholds[None]


def evidence_of(item: Item) -> Evidence:
    return Evidence.from_results(item.results, content=item.content, visual=item.visual)


def truth_of(items: Sequence[Item]) -> np.ndarray:
    return np.array([SUBJECTS.index(i.subject) if i.subject in SUBJECTS else -1 for i in items])
