"""Active-learning simulation (issue 8): labels needed by uncertainty+diversity sampling vs random sampling.

Data: the Tux Paint stamp photos (tests/support/tuxpaint.py), 12 categories, flattened onto white at 256 px
and JPEG-encoded, as a `LabelledDataset`; pooled EfficientNet-Lite0 features from the backbone .pth
(`simulation.dataset_features`, cached by dataset hash under --cache). Per seed a stratified 30% test split
is held out, the loop starts from one label per class and adds a batch per round; the classifier is the
linear probe (logistic regression on features scaled to unit mean norm). Macro-F1 on the test split vs labels.

Compared: `uncertainty+diversity` (margin, k-means over the 10n most uncertain), `uncertainty` (the n most
uncertain, to see what diversity adds) and `random`. Labels needed: the first label count at which a
strategy's curve reaches 90% / 95% of random's final mean macro-F1 (mean curve; and per seed).

Run: `benchmarks/al_simulation.py --out docs/benchmarks.md` (about 2 minutes on 2 cores). Writes the
figures as JSON and PNG (--json, --plot; default docs/img/al_simulation.*).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from run import machine, write_section
from tests.support.tuxpaint import (
    CATEGORIES,
    ensure_stamps,
    load_stamps,
    package_version,
    render,
    to_jpeg_bytes,
)

from feedlens.config import load_settings
from feedlens.images import ImageDecoder
from feedlens.services.factory import build_services
from feedlens.training.datasets import Item, LabelledDataset
from feedlens.training.simulation import SimulationResult, dataset_features, simulate

START, END = "<!-- bench:al:start -->", "<!-- bench:al:end -->"
DOCS = Path(__file__).resolve().parent.parent / "docs"
STRATEGIES = ("uncertainty+diversity", "uncertainty", "random")


def load_dataset() -> tuple[LabelledDataset, str]:
    root = ensure_stamps()
    stamps = load_stamps(root)
    names = [c for c in CATEGORIES if any(s.category == c for s in stamps)]
    items = tuple(Item(s.key, to_jpeg_bytes(render(s, 256)), s.category) for s in stamps)
    source = (
        f"the {len(stamps)} Tux Paint stamp photos (Debian `tuxpaint-stamps-default` "
        f"{package_version(root)}) in {len(names)} categories, on white at 256 px (isolated objects: an "
        "easier task than feed photos)"
    )
    return LabelledDataset(items, tuple(names), provenance="tuxpaint"), source


def features(dataset: LabelledDataset, cache: Path, threads: int) -> np.ndarray:
    path = cache / f"al-tuxpaint-{dataset.dataset_hash()[:16]}.npy"
    if path.exists():
        return np.asarray(np.load(path))
    settings = load_settings()
    weights = build_services(settings).store.path("efficientnet-lite0-pth")
    x = dataset_features(dataset, weights, ImageDecoder(settings.decode), threads=threads)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    return x


def _n(value: int | None) -> str:
    return "not reached" if value is None else str(value)


def summary_lines(result: SimulationResult) -> list[str]:
    """One table row per target: labels needed by each strategy (mean curve; then each seed's curve)."""
    lines = [
        "| target macro-F1 | " + " | ".join(f"labels: {s}" for s in result.strategies) + " |",
        "|---|" + "---|" * len(result.strategies),
    ]
    for target in result.targets:
        cells = []
        for s in result.strategies:
            seeds = ", ".join("never" if n is None else str(n) for n in target.per_seed[s])
            cells.append(f"{_n(target.labels_needed[s])} (per seed: {seeds})")
        lines.append(f"| {target.macro_f1:.3f} ({target.how}) | " + " | ".join(cells) + " |")
    return lines


def render_section(result: SimulationResult, source: str, seconds: float, plot: Path) -> str:
    s = result.settings
    shown = plot.relative_to(DOCS.parent) if plot.is_relative_to(DOCS.parent) else plot
    curve_rows = [
        f"| {n} | "
        + " | ".join(f"{result.mean(st)[i]:.3f} +- {result.std(st)[i]:.3f}" for st in result.strategies)
        + " |"
        for i, n in enumerate(result.labels.tolist())
    ]
    return "\n".join(
        [
            START,
            "## Active learning simulation (issue 8)",
            "",
            f"`benchmarks/al_simulation.py`, run {date.today().isoformat()} ({seconds:.0f} s). "
            f"Data: {source}. "
            f"Per seed ({len(result.seeds)} seeds) a stratified {s['test_fraction']:.0%} test split "
            f"({s['test_size']} images) is never labelled; the pool has {s['pool_size']}. Start: "
            f"{s['initial_per_class']} label per class, then {s['batch_size']} labels per round "
            f"({s['rounds']} rounds); classifier: {s['classifier']}, C = {s['c']:g}; uncertainty = "
            f"{s['measure']}. Plot: `{shown}`.",
            "",
            "Labels needed to reach the target: the first label count at which the mean curve over seeds "
            "reaches it; in brackets, each seed's own curve (never: not within the budget).",
            "",
            *summary_lines(result),
            "",
            "| labels | " + " | ".join(result.strategies) + " |",
            "|---|" + "---|" * len(result.strategies),
            *curve_rows,
            "",
            *(f"- {line}" for line in machine(load_settings())),
            END,
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="benchmarks markdown file to update")
    parser.add_argument("--json", type=Path, default=DOCS / "img" / "al_simulation.json")
    parser.add_argument("--plot", type=Path, default=DOCS / "img" / "al_simulation.png")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "feedlens" / "bench")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    threads = load_settings().threads_per_worker
    dataset, source = load_dataset()
    print(source, flush=True)
    x = features(dataset, args.cache, threads)
    began = time.perf_counter()
    result = simulate(
        x,
        dataset.targets,
        dataset.classes,
        seeds=range(args.seeds),
        initial_per_class=1,
        batch_size=args.batch_size,
        rounds=args.rounds,
        strategies=STRATEGIES,
        test_fraction=0.3,
        on_round=lambda st, seed, n, f1: print(
            f"{st} seed {seed}: macro-F1 {f1:.3f} at {n} labels", flush=True
        ),
    )
    seconds = time.perf_counter() - began
    result.settings["dataset"] = {"provenance": source, "hash": dataset.dataset_hash()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    result.plot(args.plot, title="Tux Paint stamps")
    section = render_section(result, source, seconds, args.plot)
    print(section)
    if args.out:
        write_section(args.out, section, START, END)


if __name__ == "__main__":
    main()
