"""K labels per category (issue 19): feedlens's own few-label route beside the plain logistic probe, on the
six domains of benchmarks/categories_quality.py, with zero-shot and the ConSE baseline in the same run.

Per domain and k in KS, with SEEDS fixed seeds: k labelled images per category are drawn at random (the
rest of the domain is measured). A category takes part at that k when it has at least k + MIN_REST images;
a k is skipped on a domain where fewer than two categories can. Top-1 and multi-label are read over the
categories that take part (both methods pick among the same ones).

- `categories train`: the route `feedlens categories train` takes in the working tree of 2026-12-06
  (CategoryService.train -> services/training/categorising.py: the model registry's recipe, mode probe,
  then recategorise), on the stored vectors instead of pixels: the labels as the recipe's dataset and split,
  `select_linear_head` on the pooled 1280-d vectors, the model blended with zero-shot by its training
  labels, the zero-shot thresholds learnt from the labels (normalise.label_thresholds, as
  workspace_stats.LabelThresholds does) and every image read against the domain's statistics (the domain
  is one workspace). Ablations: that model alone; the same fitted on every label (no split); the older
  `category_models` head (`train_head` on visual + content + caption vectors) blended alike.
- Plain probe: scikit-learn's LogisticRegression with its defaults (C = 1, multinomial) on the pooled
  backbone vector (the stored 1280-d visual embedding, unit norm); its answer is the top class. The best C of
  PROBE_CS measured on the held-out images themselves is reported too: an upper bound for the probe.
- Zero-shot and ConSE: on all of the domain's images and all eight categories (as in bench:categories), and
  zero-shot again on each split's held-out images and taking-part categories (what the labels add).

Run: `benchmarks/categories_kshot.py --analysed ~/.cache/feedlens/bench/category-domains-725d1ad0485d
--out docs/benchmarks.md` (reads the stored analysis; about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from categories_quality import DOMAINS, domains_of
from category_domains import SUBJECTS, load_domains
from category_metrics import TEAM, Domain, conse, macro_f1, top1_matrix
from run import machine, write_section

from feedlens.config import Settings, load_settings
from feedlens.core.taxonomy import parse_taxonomy
from feedlens.services.categories import TaxonomyCompiler
from feedlens.services.categories.categoriser import Categoriser, TrainedModel
from feedlens.services.categories.heads import head_features, train_head
from feedlens.services.categories.normalise import Moments, label_thresholds, zero_shot_trust
from feedlens.services.categories.zero_shot import CompiledTaxonomy
from feedlens.services.factory import build_services
from feedlens.training.crossval import CV_BELOW
from feedlens.training.datasets import from_labels
from feedlens.training.probe import DEFAULT_C, fit_linear_head, select_linear_head
from feedlens.training.recipe import TrainOptions, split_of
from feedlens.training.splits import class_weights

START, END = "<!-- bench:categories-kshot:start -->", "<!-- bench:categories-kshot:end -->"
KS = (5, 10, 20)
SEEDS = (0, 1, 2)
MIN_REST = 2  # held-out images a category needs beyond its k labelled ones
PROBE_CS = (0.1, 1.0, 10.0, 100.0)


@dataclass(frozen=True)
class Split:
    """One draw: labelled (L,) and held-out (R,) indices into the domain, the taking-part categories (P,)."""

    labelled: np.ndarray
    rest: np.ndarray
    categories: np.ndarray


@dataclass(frozen=True)
class Row:
    domain: str
    k: int
    categories: tuple[str, ...]
    held_out: int  # held-out images (the same count for every seed)
    zero: list[float]  # zero-shot top-1 on each seed's held-out images
    probe: list[float]  # plain probe top-1, C = 1
    probe_best: list[float]  # the probe with the best C of PROBE_CS on the held-out images
    top1: list[float]  # `categories train` (the registry's probe, blended), top-1
    multi: list[float]  # the same, multi-label
    alone: list[float]  # the registry's probe alone (no zero-shot blend), top-1
    every: list[float]  # the registry's probe fitted on every label (no split, DEFAULT_C), alone, top-1
    older: list[float]  # the older category head (category_models), blended, top-1
    older_multi: list[float]  # the same, multi-label


def split(truth: np.ndarray, k: int, seed: int) -> Split | None:
    """k labelled images of every category with k + MIN_REST images or more; None when fewer than two."""
    rng = np.random.default_rng(seed)
    taking = [c for c in range(len(SUBJECTS)) if (truth == c).sum() >= k + MIN_REST]
    if len(taking) < 2:
        return None
    labelled = np.concatenate([rng.choice(np.flatnonzero(truth == c), k, replace=False) for c in taking])
    rest = np.flatnonzero(np.isin(truth, taking) & ~np.isin(np.arange(len(truth)), labelled))
    return Split(np.sort(labelled), rest, np.array(taking))


def registry_probe(domain: Domain, s: Split, visual: np.ndarray) -> tuple[TrainedModel, np.ndarray]:
    """The model `categories train` registers (services/training/categorising.py, mode probe), fitted from
    the stored pooled vectors: the labels as the route's dataset (`from_labels`), its split (`split_of`:
    below CV_BELOW labels a category all of them train, else 15% validation and 15% test are held back),
    balanced class weights and `select_linear_head` (C by validation loss when there is validation, else
    DEFAULT_C).
    Returns the model as the categoriser blends it and its probabilities (R, K) of the held-out images."""
    names = [SUBJECTS[c] for c in s.categories]
    key = {domain.items[i].key: int(i) for i in s.labelled}
    data = from_labels(((k, SUBJECTS[int(domain.truth[i])]) for k, i in key.items()), names, "labels:bench")
    parts = split_of(data, TrainOptions())
    train = [key[item.key] for item in parts.train]
    val = [key[item.key] for item in parts.val]
    target = np.searchsorted(s.categories, domain.truth)
    w, b, _ = select_linear_head(
        visual[train],
        target[train],
        len(names),
        val_features=visual[val] if val else None,
        val_labels=target[val] if val else None,
        class_weights=class_weights(parts.train, names).tolist(),
    )
    z = visual[s.rest] @ w.T + b
    e = np.exp(z - z.max(axis=1, keepdims=True))
    positives = tuple(int((target[train] == c).sum()) for c in range(len(names)))
    return TrainedModel(1, None, tuple(names), positives, model_id=1), e / e.sum(axis=1, keepdims=True)


def older_head(domain: Domain, s: Split, names: Sequence[str]) -> tuple[TrainedModel, np.ndarray]:
    """The category model of the `category_models` table (`train_head` on visual + content + caption,
    the route before the registry took training over) and its probabilities (R, K) of the held-out ones."""
    evidence = [domain.evidence[i] for i in s.labelled]
    label_sets = [{SUBJECTS[int(domain.truth[i])]} for i in s.labelled]
    head = train_head(head_features(evidence), label_sets, names)
    return TrainedModel(1, head), head.predict(head_features([domain.evidence[i] for i in s.rest]))


def blended(
    categoriser: Categoriser,
    domain: Domain,
    computed: tuple[np.ndarray, np.ndarray],
    s: Split,
    model: TrainedModel,
    probabilities: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores (R, C) and assignments of the held-out images as recategorising gives them once the labelled
    images are labelled and `model` drives the workspace: blended with zero-shot, zero-shot thresholds
    learnt from the labels (workspace_stats.LabelThresholds; each label counts against the other
    categories); then the model's own probabilities (R, C) without the blend (0 where it has none)."""
    names = categoriser.compiled.names
    pos = np.zeros((len(s.labelled), len(names)), dtype=bool)
    pos[np.arange(len(s.labelled)), [names.index(SUBJECTS[int(domain.truth[i])]) for i in s.labelled]] = True
    feats, raw = computed
    labelled = [domain.evidence[i] for i in s.labelled]
    zero = categoriser.scores(labelled, (feats[s.labelled], raw[s.labelled])).zero
    learnt = label_thresholds(zero, pos, ~pos, categoriser.zero_shot_thresholds())
    trust = zero_shot_trust(zero, pos, ~pos)
    trained = replace(categoriser, model=model, label_thresholds=learnt, zero_shot_trust=trust)
    rest = [domain.evidence[i] for i in s.rest]
    final = trained.scores(rest, (feats[s.rest], raw[s.rest]), probabilities).final
    alone = np.zeros_like(final)
    for k, name in enumerate(model.categories):
        alone[:, names.index(name)] = probabilities[:, k]
    return final, final >= trained.thresholds()[None], alone


def probe(x: np.ndarray, s: Split, truth: np.ndarray, c: float) -> np.ndarray:
    """(R,) the plain probe's top class (an index into SUBJECTS) for the held-out images."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(x[s.labelled], truth[s.labelled])
    out: np.ndarray = model.predict(x[s.rest])
    return out


def measure_domain(domain: Domain, compiled: CompiledTaxonomy, settings: Settings) -> list[Row]:
    config = settings.categories
    categoriser = Categoriser(compiled, config.threshold, caption_weight=config.caption_weight)
    computed = categoriser.features(domain.evidence)
    categoriser = replace(categoriser, moments=Moments.of(computed[1]))  # the domain is one workspace
    visual = np.stack([i.visual for i in domain.items])
    rows = []
    for k in KS:
        splits = [split(domain.truth, k, seed) for seed in SEEDS]
        if any(s is None for s in splits):
            continue
        found: dict[str, list[float]] = {}
        for s in splits:
            assert s is not None
            for name, value in _measure_split(categoriser, domain, computed, s, visual).items():
                found.setdefault(name, []).append(value)
        names = tuple(SUBJECTS[c] for c in splits[0].categories)  # type: ignore[union-attr]
        rows.append(Row(domain.name, k, names, len(splits[0].rest), **found))  # type: ignore[union-attr]
    return rows


def _measure_split(
    categoriser: Categoriser,
    domain: Domain,
    computed: tuple[np.ndarray, np.ndarray],
    s: Split,
    visual: np.ndarray,
) -> dict[str, float]:
    """Every figure of one draw (macro-F1 over its taking-part categories), named as Row's fields."""
    local = np.searchsorted(s.categories, domain.truth[s.rest])  # index among the taking-part categories
    cols = [categoriser.compiled.names.index(SUBJECTS[c]) for c in s.categories]
    rest = [domain.evidence[i] for i in s.rest]
    zero = categoriser.scores(rest, (computed[0][s.rest], computed[1][s.rest])).final
    out = {"zero": macro_f1(top1_matrix(zero[:, cols]), local)}
    routes = {
        ("top1", "multi", "alone"): registry_probe(domain, s, visual),
        ("older", "older_multi", ""): older_head(domain, s, categoriser.compiled.names),
    }
    for (top1, multi, alone_name), (model, probabilities) in routes.items():
        scores, assigned, alone = blended(categoriser, domain, computed, s, model, probabilities)
        out[top1] = macro_f1(top1_matrix(scores[:, cols]), local)
        out[multi] = macro_f1(assigned[:, cols], local)
        if alone_name:
            out[alone_name] = macro_f1(top1_matrix(alone[:, cols]), local)
    target = np.searchsorted(s.categories, domain.truth)
    w, b = fit_linear_head(visual[s.labelled], target[s.labelled], len(cols), c=DEFAULT_C)
    out["every"] = macro_f1(top1_matrix(visual[s.rest] @ w.T + b), local)
    by_c = [_probe_f1(visual, s, domain.truth, c, local) for c in PROBE_CS]
    out["probe"], out["probe_best"] = by_c[PROBE_CS.index(1.0)], max(by_c)
    return out


def _probe_f1(x: np.ndarray, s: Split, truth: np.ndarray, c: float, local: np.ndarray) -> float:
    found = np.searchsorted(s.categories, probe(x, s, truth, c))
    return macro_f1(_one_hot(found, len(s.categories)), local)


def _one_hot(index: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(index), width), dtype=bool)
    out[np.arange(len(index)), index] = True
    return out


def _ms(values: Sequence[float]) -> str:
    """Mean ± spread (population sd over the seeds)."""
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def render(
    rows: list[Row], whole: dict[str, tuple[int, float, float]], settings: Settings, source: str
) -> str:
    lines = [
        START,
        "## Categories: k labels per category against the plain probe (`benchmarks/categories_kshot.py`)",
        "",
        f"Measured {date.today().isoformat()} from {source}; team taxonomy of eight categories "
        f"(`tests/services/data/team_taxonomy.yaml`), each domain one workspace. Seeds {list(SEEDS)}: "
        "mean ± sd over the three draws of k labelled images per category.",
        "",
        "### Zero-shot beside ConSE (all of each domain's images, all eight categories; top-1 macro-F1)",
        "",
        "| domain | images | ConSE top-1 | zero-shot top-1 | zero-shot − ConSE |",
        "|---|--:|--:|--:|--:|",
    ]
    for name in DOMAINS:
        n, base, zero = whole[name]
        lines.append(f"| {name} | {n} | {base:.3f} | {zero:.3f} | {zero - base:+.3f} |")
    lines += [
        "",
        "### k labelled images per category: `categories train` against the plain probe (macro-F1)",
        "",
        f"A category takes part when it has k + {MIN_REST} images or more; a k is left out on a domain where "
        "fewer than two categories can (not listed). Measured on the held-out images of the taking-part "
        "categories; every method chooses among those. Zero-shot: the same held-out images, no labels. "
        "Probe: scikit-learn `LogisticRegression()` (C = 1) on the 1280-d pooled backbone vector; best C: "
        f"the best of {list(PROBE_CS)} chosen on the held-out images themselves (an upper bound for it). "
        "`categories train`: the model the registry trains (mode probe: the route's own split, below "
        f"{CV_BELOW} labels a category every label trains, from {CV_BELOW} on 15% validation and 15% test "
        "are held back; balanced weights, features scaled to unit mean norm, C = "
        f"{DEFAULT_C:g} without validation, else by validation loss) fitted from the same stored vectors, "
        "blended with zero-shot per category by n / (n + 2 t) (n training labels, t: how well zero-shot's "
        "scores separate the category's labelled images, 2 AUC - 1), its own cut at 2 / K (at most 0.5), "
        "zero-shot thresholds learnt from the labels, every image read against the domain's statistics. "
        "Older head: the `category_models` "
        "route it replaces (one-vs-rest on visual + content + caption vectors, C = 10, every label).",
        "",
        "| domain | k | categories | held out | zero-shot top-1 | probe top-1 | `categories train` top-1 "
        "| `categories train` multi-label | `categories train` − probe (top-1) |",
        "|---|--:|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        gain = np.mean(r.top1) - np.mean(r.probe)
        lines.append(
            f"| {r.domain} | {r.k} | {len(r.categories)}: {', '.join(r.categories)} | {r.held_out} "
            f"| {_ms(r.zero)} | {_ms(r.probe)} | **{_ms(r.top1)}** | {_ms(r.multi)} | {gain:+.3f} |"
        )
    lines += ["", _verdict(rows, whole)]
    lines += [
        "",
        "Ablations on the same draws (top-1 unless said): the probe with the best C on the held-out images; "
        "the registry's model alone (no blend); the same fitted on every label (no split, C = "
        f"{DEFAULT_C:g}); the older head blended alike.",
        "",
        "| domain | k | probe (best C) | registry model alone | alone, every label trains "
        "| older head | older head multi-label |",
        "|---|--:|--:|--:|--:|--:|--:|",
        *[
            f"| {r.domain} | {r.k} | {_ms(r.probe_best)} | {_ms(r.alone)} | {_ms(r.every)} "
            f"| {_ms(r.older)} | {_ms(r.older_multi)} |"
            for r in rows
        ],
    ]
    lines += ["", "Machine:", "", *[f"- {line}" for line in machine(settings)], END]
    return "\n".join(lines)


def _verdict(rows: list[Row], whole: dict[str, tuple[int, float, float]]) -> str:
    """The issue's Done-when, read off the tables: zero-shot against ConSE, 10-shot against the probe."""
    beats = [name for name, (_, base, zero) in whole.items() if zero > base]
    ten = [r for r in rows if r.k == 10]
    won = [r.domain for r in ten if np.mean(r.top1) > np.mean(r.probe)]
    return (
        f"Done-when, read off the tables: zero-shot beats ConSE on {len(beats)} of {len(whole)} domains; "
        f"`categories train` with 10 labels beats the plain probe on {len(won)} of the {len(ten)} domains "
        f"that can supply 10 labels ({', '.join(won) or 'none'})."
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="benchmarks markdown file to update")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "feedlens" / "bench")
    parser.add_argument("--analysed", type=Path, help="an earlier run's analysis folder, read as it is")
    args = parser.parse_args(argv)
    settings = load_settings()
    items = load_domains(settings, args.cache, folder=args.analysed)
    services = build_services(settings)
    compiler = TaxonomyCompiler(services.store, services.text_encoder)
    compiled = compiler.compile(parse_taxonomy(TEAM.read_text()), 1)
    domains = domains_of(items)
    rows: list[Row] = []
    whole = {}
    warnings.filterwarnings("ignore", category=FutureWarning)  # sklearn's notes on its own defaults
    for name in DOMAINS:
        domain = domains[name]
        categoriser = Categoriser(compiled, settings.categories.threshold)
        zero = categoriser.scores(domain.evidence).final[:, [compiled.names.index(s) for s in SUBJECTS]]
        base = conse(domain, compiled, compiler)
        whole[name] = (
            len(domain.items),
            macro_f1(top1_matrix(base), domain.truth),
            macro_f1(top1_matrix(zero), domain.truth),
        )
        rows += measure_domain(domain, compiled, settings)
    source = (
        f"an earlier run's stored analysis (`{args.analysed.name}`)"
        if args.analysed
        else "the default pipeline's stored analysis"
    )
    section = render(rows, whole, settings, source)
    print(section)
    if args.out:
        write_section(args.out, section, START, END)


if __name__ == "__main__":
    main()
