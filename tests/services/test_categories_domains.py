"""The issue-19 scenario with the real models on real images: a team taxonomy of eight categories written
from one-line descriptions (tests/services/data/team_taxonomy.yaml), no captions, on images of domains the
shipped numbers were not fitted on (they were fitted on OpenCV's sample images; these are GCompris, GIMP,
openclipart and wallpaper images from the labelled corpus).

Asserted: no category takes more than half of a mixed library, zero-shot beats the plain ConSE baseline,
few images end up `other` only, and one image alone (the prior only, `feedlens analyze photo.jpg`) is sane.
Analysis runs only `labels` and `embedding` (and the `text` they need), to stay fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from feedlens.core.results import EmbeddingResult, ImageReport, LabelsResult
from feedlens.core.results.categories import CategoriesResult
from feedlens.core.taxonomy import parse_taxonomy
from feedlens.services.categories.categoriser import Categoriser
from feedlens.services.categories.in_memory import ReportCategoriser
from feedlens.services.categories.zero_shot import CompiledTaxonomy, Evidence
from feedlens.services.factory import Services
from tests.support.corpus import corpus_or_skip

TEAM = Path(__file__).parent / "data" / "team_taxonomy.yaml"
SUBJECTS = (
    "animals",
    "food & drink",
    "music",
    "sports",
    "vehicles",
    "plants & flowers",
    "buildings",
    "technology",
)
PER_SUBJECT = 5
HELD_OUT = {
    "gcompris-qt-data",
    "gimp-help-en",
    "openclipart-png",
    "plasma-workspace-wallpapers",
}


@pytest.fixture(scope="module")
def analysed(services: Services) -> tuple[list[ImageReport], np.ndarray]:
    """Up to PER_SUBJECT photos or clip art per subject (first by id) from the held-out packages."""
    images = sorted(
        (i for i in corpus_or_skip() if i.source in HELD_OUT and i.subject in SUBJECTS),
        key=lambda i: i.id,
    )
    chosen = []
    for subject in SUBJECTS:
        chosen += [i for i in images if i.subject == subject and i.kind in ("photo", "clipart")][:PER_SUBJECT]
    reports = services.pipeline(["labels", "embedding"]).analyze_sources(
        [i.id for i in chosen], [i.path for i in chosen]
    )
    assert all(r.ok for r in reports)
    return reports, np.array([SUBJECTS.index(i.subject) for i in chosen])


@pytest.fixture(scope="module")
def team(services: Services) -> CompiledTaxonomy:
    return services.categories.compiler.compile(parse_taxonomy(TEAM.read_text()), 1)


def evidence(report: ImageReport) -> Evidence:
    embedding = report.results["embedding"]
    assert isinstance(embedding, EmbeddingResult)
    return Evidence.from_results(report.results, content=embedding.content, visual=embedding.visual)


def top1_macro_f1(scores: np.ndarray, truth: np.ndarray) -> float:
    best = scores.argmax(axis=1)
    f1 = []
    for c in sorted(set(truth.tolist()) | set(best.tolist())):  # scikit-learn's macro average
        tp, fp, fn = ((best == c) & (truth == c)).sum(), ((best == c) & (truth != c)).sum(), 0
        fn = ((best != c) & (truth == c)).sum()
        f1.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(f1))


def conse(reports: Sequence[ImageReport], compiled: CompiledTaxonomy, services: Services) -> np.ndarray:
    """The plain baseline: probability-weighted class-name vectors, cosine with the category's texts."""
    table = services.categories.compiler.table
    row = {wnid: i for i, wnid in enumerate(table.wnids)}
    out = []
    for report in reports:
        labels = report.results["labels"]
        assert isinstance(labels, LabelsResult)
        vector = np.sum([c.score * table.vectors[row[c.wnid]] for c in labels.classes], axis=0)
        vector /= np.linalg.norm(vector)
        out.append([float((p @ vector).max()) for p in compiled.prototypes])
    return np.array(out)


def test_no_category_absorbs_a_mixed_library_and_zero_shot_beats_conse(
    analysed: tuple[list[ImageReport], np.ndarray], team: CompiledTaxonomy, services: Services
) -> None:
    reports, truth = analysed
    results = Categoriser(team).categorise([evidence(r) for r in reports])
    names = list(team.names)
    scores = np.zeros((len(results), len(names)))
    assigned = np.zeros_like(scores, dtype=bool)
    for i, result in enumerate(results):
        for c in result.categories:
            scores[i, names.index(c.name)] = c.score
            assigned[i, names.index(c.name)] = c.assigned
    assert assigned.mean(axis=0).max() <= 0.5, dict(zip(names, assigned.mean(axis=0).round(2), strict=True))
    assert (~assigned.any(axis=1)).mean() <= 0.35  # `other` only is the exception in an 8-category library
    ours, baseline = top1_macro_f1(scores, truth), top1_macro_f1(conse(reports, team, services), truth)
    assert ours > baseline, (ours, baseline)
    assert ours >= 0.5


def test_analyze_reads_a_run_against_itself_and_one_image_against_the_prior(
    analysed: tuple[list[ImageReport], np.ndarray], services: Services
) -> None:
    reports, truth = analysed
    taxonomy = parse_taxonomy(TEAM.read_text())
    streamed = ReportCategoriser(services.categories.compiler, taxonomy)
    for start in range(0, len(reports), 16):  # as `feedlens analyze` does, one batch at a time
        streamed.add(reports[start : start + 16])
    assert streamed.moments.images == len(reports)
    first = [r.results["categories"] for r in reports]
    assert all(isinstance(c, CategoriesResult) for c in first)
    right = np.mean([SUBJECTS[t] == _top(c) for c, t in zip(first, truth, strict=True)])
    assert right >= 0.5
    alone = ReportCategoriser(services.categories.compiler, taxonomy)
    animal = next(i for i, t in enumerate(truth) if SUBJECTS[t] == "animals")
    alone.add([reports[animal]])
    result = reports[animal].results["categories"]
    assert isinstance(result, CategoriesResult)
    assert result.categories[0].name == "animals" and "animals" in result.assigned


def _top(result: object) -> str:
    assert isinstance(result, CategoriesResult)
    return result.categories[0].name
