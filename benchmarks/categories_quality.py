"""Zero-shot category quality across image domains (issue 19): a team taxonomy of eight categories written
from one-line descriptions, no captions, measured on six domains that were made apart from each other, with
the plain ConSE baseline measured beside it in the same run.

Domains (benchmarks/category_domains.py): the labelled corpus by package group (gcompris, opencv, gimp,
clipart, wallpapers) and Tux Paint's stamps. Each domain is a workspace of its own: scores are read against
that domain's images (normalise.py). Figures are over the images whose subject is one of the eight.

- ConSE baseline: the image's stored top ImageNet classes, probability-weighted class-name sentence
  vectors, cosine with the category's texts; the best category is the answer (top-1).
- Zero-shot top-1: the best-scoring category; multi-label: every category at or above its threshold, or
  `other` when none is (macro-F1 over the eight, and how many images end up `other` only).
- Cross-domain: the fusion's few numbers and the bridge's two are fitted on one domain (grid search, the
  mean of top-1 and multi-label macro-F1) and measured on every other: every combination is reported.
- Small libraries: each image alone (the prior only, `feedlens analyze` of one file) and a run streamed in
  batches of 16 (`feedlens analyze` of a folder).

Run: `benchmarks/categories_quality.py --out docs/benchmarks.md --doc docs/categories.md` (first run
analyses ~750 images, about half an hour on 2 cores; later runs read the cache and take about a minute).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from category_domains import DISTRACTORS, SUBJECTS, Item, describe, load_domains
from category_metrics import (
    BEFORE,
    TEAM,
    Domain,
    Scores,
    before,
    conse,
    evidence_of,
    macro_f1,
    measure,
    top1_matrix,
    truth_of,
)
from run import machine, write_section

from feedlens.config import load_settings
from feedlens.core.taxonomy import parse_taxonomy
from feedlens.services.categories import TaxonomyCompiler
from feedlens.services.categories.bridge import NONE, TEMPERATURE, relevance, share_out
from feedlens.services.categories.categoriser import Categoriser
from feedlens.services.categories.fusion import FUSION, Fusion
from feedlens.services.categories.normalise import PRIOR_IMAGES, Moments, label_thresholds
from feedlens.services.categories.taxonomies import prior_of
from feedlens.services.categories.zero_shot import CompiledTaxonomy, Evidence
from feedlens.services.factory import build_services

START, END = "<!-- bench:categories:start -->", "<!-- bench:categories:end -->"
DOMAINS = ("tuxpaint", "gcompris", "opencv", "gimp", "clipart", "wallpapers")
KINDS = {"photo": ("photo",), "clip art & art": ("clipart", "art", "render"), "screenshots": ("screenshot",)}
SHIPPED_FIT = "opencv"
GRID = {
    "visual": (0.0, 0.25, 0.5, 1.0),
    "lead": (0.0, 0.5, 1.0, 2.0),
    "bias": (-3.0, -2.0, -1.0, 0.0),
    "temperature": (0.03, 0.05, 0.1),
    "none": (0.35, 0.45, 0.55),
    "prior": (10.0, 50.0, 150.0, 500.0),  # images the prior counts as (normalise.PRIOR_IMAGES)
}
STREAM = 16
LABELLED = (2, 5)  # labelled images per category for the label-threshold rows


def unnormalised(raw: np.ndarray, scale: float = 0.1) -> Moments:
    """Statistics that leave raw scores as they are (mean 0, sd `scale` for every category, the prior
    drowned): the ablation without per-workspace normalisation."""
    n = np.full(raw.shape[1:], 1e9)
    return Moments(n, np.zeros(raw.shape[1:]), n * scale**2)


def run(
    compiled: CompiledTaxonomy,
    evidence: Sequence[Evidence],
    fusion: Fusion,
    computed: tuple[np.ndarray, np.ndarray] | None = None,
    batch: int | None = None,
    normalise: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores (N, C) and assignments of a library read against itself, or streamed in batches (each read
    against every batch so far); `batch=0`: each image alone, against the prior only."""
    categoriser = Categoriser(compiled, fusion=fusion)
    feats, raw = computed if computed is not None else categoriser.features(evidence)
    thresholds = categoriser.thresholds()
    if batch is None:
        moments = Moments.of(raw) if normalise else unnormalised(raw)
        scored = replace(categoriser, moments=moments).scores(evidence, (feats, raw))
        return scored.final, scored.final >= thresholds[None]
    out = np.zeros((len(evidence), len(compiled.names)))
    seen = Moments.empty(raw.shape[1], raw.shape[2])
    step = max(batch, 1)
    for start in range(0, len(evidence), step):
        part = slice(start, start + step)
        seen = seen + Moments.of(raw[part]) if batch else Moments.empty(raw.shape[1], raw.shape[2])
        done = replace(categoriser, moments=seen).scores(evidence[part], (feats[part], raw[part]))
        out[part] = done.final
    return out, out >= thresholds[None]


def variant(
    base: CompiledTaxonomy, compiler: TaxonomyCompiler, temperature: float, none: float
) -> CompiledTaxonomy:
    space, reference = compiler.space_and_reference()
    weights = share_out(relevance(base.prototypes, space), temperature, none)
    return replace(base, bridge=weights, prior=prior_of(base, weights, reference))


Computed = dict[tuple[str, tuple[float, float]], tuple[np.ndarray, np.ndarray]]


Fitted = tuple[Fusion, tuple[float, float], CompiledTaxonomy]


def fit(
    domain: Domain,
    variants: dict[tuple[float, float], CompiledTaxonomy],
    cache: Computed,
    normalise: bool = True,
) -> Fitted:
    """The grid's best fusion, bridge and prior numbers on one domain (mean of top-1 and multi-label
    macro-F1): the fusion, the bridge's (temperature, none) and the taxonomy compiled with them.
    `normalise=False`: the same grid without the workspace's statistics (the prior's weight unused)."""
    best: Fitted | None = None
    best_value = -1.0
    for key, compiled in variants.items():
        computed = cache[(domain.name, key)]
        assert compiled.prior is not None
        for weight in GRID["prior"] if normalise else GRID["prior"][:1]:
            weighted = replace(compiled, prior=replace(compiled.prior, weight=weight))
            for visual, lead, bias in itertools.product(GRID["visual"], GRID["lead"], GRID["bias"]):
                fusion = Fusion(bias=bias, labels=1.0, visual=visual, lead=lead)
                scores, assigned = run(weighted, domain.evidence, fusion, computed, normalise=normalise)
                m = measure(scores, assigned, domain.truth)
                value = (m.top1 + m.multi) / 2
                if value > best_value + 1e-9:
                    best, best_value = (fusion, key, weighted), value
    assert best is not None
    return best


def domains_of(items: Sequence[Item], distractors: bool = False) -> dict[str, Domain]:
    out = {}
    for name in DOMAINS:
        chosen = [i for i in items if i.domain == name and (distractors or i.subject in SUBJECTS)]
        out[name] = Domain(name, chosen, [evidence_of(i) for i in chosen], truth_of(chosen))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="benchmarks markdown file to update")
    parser.add_argument("--doc", type=Path, help="docs/categories.md to update with the same section")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "feedlens" / "bench")
    parser.add_argument("--analysed", type=Path, help="an earlier run's analysis folder, read as it is")
    args = parser.parse_args(argv)
    settings = load_settings()
    items = load_domains(settings, args.cache, folder=args.analysed)
    services = build_services(settings)
    compiler = TaxonomyCompiler(services.store, services.text_encoder)
    base = compiler.compile(parse_taxonomy(TEAM.read_text()), 1)
    domains = domains_of(items)
    keys = list(itertools.product(GRID["temperature"], GRID["none"]))
    variants = {k: variant(base, compiler, *k) for k in keys}
    cache = {(d, k): Categoriser(variants[k]).features(domains[d].evidence) for d in DOMAINS for k in keys}
    fitted = {d: fit(domains[d], variants, cache) for d in DOMAINS}
    cross = {}
    for f, t in itertools.product(DOMAINS, DOMAINS):
        fusion, key, compiled = fitted[f]
        scored = run(compiled, domains[t].evidence, fusion, cache[(t, key)])
        cross[(f, t)] = measure(*scored, domains[t].truth)
    baseline = {
        d: macro_f1(top1_matrix(conse(domains[d], base, compiler)), domains[d].truth) for d in DOMAINS
    }
    shipped = base  # the compiler's own bridge numbers and FUSION
    raw_fit = fit(domains[SHIPPED_FIT], variants, cache, normalise=False)
    rows = per_domain_rows(domains, shipped, compiler, raw_fit)
    kinds = kind_rows(items, shipped, compiler)
    mixed = [*distractor_rows(items, shipped), "", *_label_table(label_rows(domains, shipped))]
    source = (
        f"an earlier run's stored analysis (`{args.analysed.name}`, the analyzers' versions of then)"
        if args.analysed
        else "the default pipeline's stored analysis (every analyzer, cached per image)"
    )
    section = render(items, fitted, cross, baseline, rows, kinds, mixed, settings, source)
    print(section)
    for target in (args.out, args.doc):
        if target:
            write_section(target, section, START, END)


def per_domain_rows(
    domains: dict[str, Domain], compiled: CompiledTaxonomy, compiler: TaxonomyCompiler, raw_fit: Fitted
) -> list[str]:
    """One row per domain, then the means over the domains SHIPPED_FIT is not (what transfers); `raw_fit`:
    the method without normalisation, fitted on SHIPPED_FIT alike."""
    lines = []
    unseen: dict[str, list[Scores]] = {"conse": [], "before": [], "shipped": [], "raw": []}
    for name, domain in domains.items():
        base = conse(domain, compiled, compiler)
        b = macro_f1(top1_matrix(base), domain.truth)
        m = measure(*run(compiled, domain.evidence, FUSION), domain.truth)
        alone = measure(*run(compiled, domain.evidence, FUSION, batch=0), domain.truth)
        stream = measure(*run(compiled, domain.evidence, FUSION, batch=STREAM), domain.truth)
        raw = measure(*run(raw_fit[2], domain.evidence, raw_fit[0], normalise=False), domain.truth)
        found = before(domain, compiler)
        previous = None if found is None else measure(*found, domain.truth)
        old = "n/a" if previous is None else _cell(previous)
        if name != SHIPPED_FIT:
            unseen["conse"].append(Scores(b, float("nan"), float("nan"), float("nan")))
            unseen["shipped"].append(m)
            unseen["raw"].append(raw)
            if previous is not None:
                unseen["before"].append(previous)
        lines.append(
            f"| {name} | {len(domain.items)} | {b:.3f} | {old} | **{m.top1:.3f}** | **{m.multi:.3f}** "
            f"| {m.other:.0%} | {m.largest:.0%} | {_cell(raw)} | {alone.top1:.3f} / {alone.multi:.3f} "
            f"| {stream.top1:.3f} / {stream.multi:.3f} |"
        )
    return [*lines, "", *_summary(unseen)]


def _summary(unseen: dict[str, list[Scores]]) -> list[str]:
    """Means over the domains the shipped numbers were not fitted on."""
    names = {
        "conse": "ConSE baseline",
        "before": f"before issue 19 (commit {BEFORE})",
        "shipped": "shipped (normalised per workspace)",
        "raw": "the same without normalisation, fitted alike",
    }
    out = [
        f"Means over the {len(unseen['shipped'])} domains the shipped numbers never saw:",
        "",
        "| method | top-1 macro-F1 | multi-label macro-F1 | `other` only | largest share |",
        "|---|--:|--:|--:|--:|",
    ]
    for key, label in names.items():
        found = unseen[key]
        if not found:
            continue
        mean = {
            f: float(np.mean([getattr(x, f) for x in found])) for f in ("top1", "multi", "other", "largest")
        }
        cells = [f"{mean['top1']:.3f}"] + (
            ["-", "-", "-"]
            if key == "conse"
            else [f"{mean['multi']:.3f}", f"{mean['other']:.0%}", f"{mean['largest']:.0%}"]
        )
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return out


def _cell(m: Scores) -> str:
    return f"{m.top1:.3f} / {m.multi:.3f}, `other` {m.other:.0%}, largest {m.largest:.0%}"


def kind_rows(items: Sequence[Item], compiled: CompiledTaxonomy, compiler: TaxonomyCompiler) -> list[str]:
    lines = []
    for name, kinds in KINDS.items():
        chosen = [i for i in items if i.kind in kinds and i.subject in SUBJECTS]
        domain = Domain(name, chosen, [evidence_of(i) for i in chosen], truth_of(chosen))
        b = macro_f1(top1_matrix(conse(domain, compiled, compiler)), domain.truth)
        m = measure(*run(compiled, domain.evidence, FUSION), domain.truth)
        lines.append(f"| {name} | {len(chosen)} | {b:.3f} | {m.top1:.3f} | {m.multi:.3f} | {m.other:.0%} |")
    return lines


def _label_table(rows: list[str]) -> list[str]:
    return [
        "### Thresholds from a workspace's labels (multi-label macro-F1; `other` only)",
        "",
        "Per category, k labelled images (and, as in a workspace, each counts against the other "
        "categories); measured on the domain's remaining images, default thresholds -> learnt ones.",
        "",
        "| domain | " + " | ".join(f"k = {k}" for k in LABELLED) + " |",
        "|---|" + "--:|" * len(LABELLED),
        *rows,
    ]


def label_rows(domains: dict[str, Domain], compiled: CompiledTaxonomy) -> list[str]:
    """Thresholds from a workspace's labels (normalise.label_thresholds): k labelled images per category
    (the first by a hash of their key), measured on the domain's other images, against the default."""
    lines = []
    default = np.full(len(SUBJECTS), FUSION.threshold)
    for name, domain in domains.items():
        scores, assigned = run(compiled, domain.evidence, FUSION)
        cells = []
        for k in LABELLED:
            chosen = np.array(
                [
                    i
                    for c in range(len(SUBJECTS))
                    for i in sorted(
                        np.flatnonzero(domain.truth == c),
                        key=lambda i: hashlib.sha1(domain.items[i].key.encode()).hexdigest(),
                    )[:k]
                ],
                dtype=np.int64,
            )
            rest = np.setdiff1d(np.arange(len(domain.items)), chosen)
            pos = np.zeros((len(chosen), len(SUBJECTS)), dtype=bool)
            pos[np.arange(len(chosen)), domain.truth[chosen]] = True
            learnt = label_thresholds(scores[chosen], pos, ~pos, default)
            zero = measure(scores[rest], assigned[rest], domain.truth[rest])
            tuned = measure(scores[rest], scores[rest] >= learnt[None], domain.truth[rest])
            cells.append(f"{zero.multi:.3f} -> {tuned.multi:.3f}; {zero.other:.0%} -> {tuned.other:.0%}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def distractor_rows(items: Sequence[Item], compiled: CompiledTaxonomy) -> list[str]:
    """Libraries with people, landscapes and other images in them: how often each kind ends up `other`."""
    lines = []
    for name, domain in domains_of(items, distractors=True).items():
        scores, assigned = run(compiled, domain.evidence, FUSION)
        m = measure(scores, assigned, domain.truth)
        off = domain.truth < 0
        other_off = f"{float((~assigned[off].any(axis=1)).mean()):.0%}" if off.any() else "-"
        lines.append(
            f"| {name} | {int((~off).sum())} + {int(off.sum())} | {m.multi:.3f} | {m.other:.0%} "
            f"| {other_off} |"
        )
    return lines


def render(items, fitted, cross, baseline, rows, kinds, mixed, settings, source) -> str:  # type: ignore[no-untyped-def]
    counts = describe(items)
    lines = [
        START,
        "## Categories: zero-shot across image domains (`benchmarks/categories_quality.py`)",
        "",
        f"Measured {date.today().isoformat()}. Taxonomy: the team taxonomy of eight categories written from "
        "one-line descriptions (`tests/services/data/team_taxonomy.yaml`), no captions, scored from "
        f"{source}. Each domain is a workspace of its own, read against itself. Images per domain and "
        "subject (distractors: "
        f"{', '.join(DISTRACTORS)}):",
        "",
        "| domain | " + " | ".join(SUBJECTS) + " | distractors |",
        "|---|" + "--:|" * (len(SUBJECTS) + 1),
    ]
    for name in DOMAINS:
        c = counts.get(name, {})
        lines.append(
            f"| {name} | "
            + " | ".join(str(c.get(s, 0)) for s in SUBJECTS)
            + f" | {sum(c.get(s, 0) for s in DISTRACTORS)} |"
        )
    lines += [
        "",
        f"### Shipped method (fitted on {SHIPPED_FIT}) per domain, beside the ConSE baseline",
        "",
        "Macro-F1 over the eight categories. `other` only: images assigned no category; largest: the largest "
        "share of a domain's images one category was assigned. Before issue 19: the zero-shot method of "
        f"commit {BEFORE} (one logistic fusion fitted on Tux Paint, no normalisation). Not normalised: the "
        "hubness correction's ablation, the same method without the workspace's statistics (raw scores / "
        f"0.1), its numbers fitted on {SHIPPED_FIT} by the same grid. Alone: each image read against the "
        "prior only "
        f"(one file); streamed: batches of {STREAM}, each read against the run so far (`feedlens analyze`).",
        "",
        "| domain | images | ConSE top-1 | before issue 19 (top-1 / multi) | zero-shot top-1 "
        "| zero-shot multi-label | `other` only | largest | not normalised (top-1 / multi) "
        "| alone (top-1 / multi) | streamed (top-1 / multi) |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *rows,
        "",
        "### Cross-domain: fitted on the row's domain, measured on the column's "
        "(multi-label / top-1 macro-F1)",
        "",
        "| fitted on \\ measured on | " + " | ".join(DOMAINS) + " |",
        "|---|" + "--:|" * len(DOMAINS),
    ]
    for f in DOMAINS:
        cells = []
        for t in DOMAINS:
            m = cross[(f, t)]
            cell = f"{m.multi:.3f} / {m.top1:.3f}"
            cells.append(f"*{cell}*" if f == t else cell)
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    lines.append("| ConSE baseline (top-1) | " + " | ".join(f"{baseline[t]:.3f}" for t in DOMAINS) + " |")
    lines += [
        "",
        f"Shipped: bias {FUSION.bias:g}, visual {FUSION.visual:g}, lead {FUSION.lead:g}, temperature "
        f"{TEMPERATURE:g}, none {NONE:g}, prior {PRIOR_IMAGES:g} images (services/categories/fusion.py, "
        "bridge.py, normalise.py).",
        "",
        "Italics: fitted and measured on the same domain. Numbers fitted per domain (fusion bias, visual "
        "weight, lead weight; bridge temperature, none-cosine; the prior's weight in images):",
        "",
        "| fitted on | bias | visual | lead | temperature | none | prior (images) |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for f in DOMAINS:
        fusion, (t, n), compiled = fitted[f]
        weight = compiled.prior.weight
        lines.append(
            f"| {f} | {fusion.bias:g} | {fusion.visual:g} | {fusion.lead:g} | {t:g} | {n:g} | {weight:g} |"
        )
    lines += [
        "",
        "### By kind of image (all domains pooled per kind, read against that pool)",
        "",
        "| kind | images | ConSE top-1 | zero-shot top-1 | zero-shot multi-label | `other` only |",
        "|---|--:|--:|--:|--:|--:|",
        *kinds,
        "",
        "### Libraries with distractors (people, landscapes, other images in the same workspace)",
        "",
        "| domain | images (8 categories + distractors) | multi-label macro-F1 | `other` only (8 categories) "
        "| `other` only (distractors) |",
        "|---|--:|--:|--:|--:|",
        *mixed,
        "",
        "Machine:",
        "",
        *[f"- {line}" for line in machine(settings)],
        END,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
