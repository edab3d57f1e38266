"""Active-learning simulation: with a fully labelled set and an oracle, how many labels each strategy needs.

Per seed: a stratified test split (`test_fraction`) is held out and never labelled; the rest is the pool.
The loop starts from `initial_per_class` labels per class (the same for every strategy), then each round
fits a linear probe (`probe.fit_linear_head`: logistic regression on features scaled to unit mean norm,
C = DEFAULT_C)
on the labelled images, scores the unlabelled pool, lets the strategy pick `batch_size` images, and the
oracle reveals their labels. After every fit the test macro-F1 is recorded against the number of labels.

Strategies: `random`, or `<measure>[+diversity]` where measure is least_confidence, margin, entropy or
`uncertainty` (= `measure`, margin by default); `+diversity` clusters the candidates (active_learning.select).

"Labels needed" compares the strategies at the same macro-F1: targets are fractions of the reference
strategy's (random's) final mean F1, or absolute values; for each strategy, the first label count at which
its mean curve reaches the target, and the same per seed (None: never reached within the budget).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from feedlens.images import ImageDecoder
from feedlens.training.active_learning import (
    ActiveLearningCode,
    ActiveLearningError,
    Strategy,
    parse_strategy,
    select,
)
from feedlens.training.datasets import LabelledDataset, Resolver, load_image
from feedlens.training.network import ClassifierNet, TrainedClassifier, load_backbone
from feedlens.training.probe import DEFAULT_C, fit_linear_head

DEFAULT_STRATEGIES = ("uncertainty+diversity", "random")
DEFAULT_TARGET_FRACTIONS = (0.9, 0.95)


def parse_plan(name: str, measure: Strategy) -> tuple[Strategy, bool]:
    """A simulation strategy name -> (measure, diversity)."""
    base, _, extra = name.partition("+")
    if extra not in ("", "diversity"):
        raise ActiveLearningError(ActiveLearningCode.UNKNOWN_STRATEGY, f"unknown strategy {name!r}")
    strategy = measure if base == "uncertainty" else parse_strategy(base)
    if strategy is Strategy.RANDOM and extra:
        raise ActiveLearningError(ActiveLearningCode.UNKNOWN_STRATEGY, "`random` takes no `+diversity`")
    return strategy, bool(extra)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class Target:
    """A macro-F1 to reach and the labels each strategy needed (mean curve; per seed)."""

    macro_f1: float
    how: str  # e.g. "0.95 x random's final mean" or "absolute"
    labels_needed: dict[str, int | None]
    per_seed: dict[str, list[int | None]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "macro_f1": self.macro_f1,
            "how": self.how,
            "labels_needed": self.labels_needed,
            "per_seed": self.per_seed,
        }


@dataclass(frozen=True)
class SimulationResult:
    """Curves: `curves[strategy]` is (S seeds, L label counts) test macro-F1 at `labels` (L,)."""

    class_names: tuple[str, ...]
    strategies: tuple[str, ...]
    seeds: tuple[int, ...]
    labels: np.ndarray
    curves: dict[str, np.ndarray]
    targets: tuple[Target, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    def mean(self, strategy: str) -> np.ndarray:
        return np.asarray(self.curves[strategy].mean(axis=0))

    def std(self, strategy: str) -> np.ndarray:
        return np.asarray(self.curves[strategy].std(axis=0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "class_names": list(self.class_names),
            "seeds": list(self.seeds),
            "labels": self.labels.tolist(),
            "strategies": {
                s: {
                    "mean": self.mean(s).round(4).tolist(),
                    "std": self.std(s).round(4).tolist(),
                    "per_seed": self.curves[s].round(4).tolist(),
                }
                for s in self.strategies
            },
            "targets": [t.to_dict() for t in self.targets],
            "settings": self.settings,
        }

    def plot(self, path: Path, title: str = "Active learning simulation") -> Path:
        """A PNG of each strategy's mean test macro-F1 vs labels, with a +-1 std band over seeds."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # slow to import: only when plotting
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 4.5), dpi=110)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for strategy in self.strategies:
            mean, std = self.mean(strategy), self.std(strategy)
            (line,) = ax.plot(self.labels, mean, marker=".", label=strategy)
            ax.fill_between(self.labels, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        for target in self.targets:
            ax.axhline(target.macro_f1, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("labelled images")
        ax.set_ylabel("test macro-F1")
        ax.set_title(f"{title} ({len(self.class_names)} classes, {len(self.seeds)} seeds, mean +- std)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
        return path


def _first_reaching(curve: np.ndarray, labels: np.ndarray, target: float) -> int | None:
    hit = np.flatnonzero(curve >= target - 1e-12)
    return int(labels[hit[0]]) if len(hit) else None


def _run_one(
    x_pool: np.ndarray,
    y_pool: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    start: np.ndarray,
    schedule: list[int],
    plan: tuple[Strategy, bool],
    k: int,
    seed: int,
    c: float,
) -> list[float]:
    """Test macro-F1 after each fit; `schedule` lists the labels counts to fit at (the first = len(start))."""
    labelled = np.zeros(len(x_pool), dtype=bool)
    labelled[start] = True
    scores: list[float] = []
    w, b = np.zeros((k, x_pool.shape[1])), np.zeros(k)  # replaced by the first fit
    for round_no, count in enumerate(schedule):
        if round_no > 0:  # score the unlabelled pool with the last fit, pick, and let the oracle label
            rest = np.flatnonzero(~labelled)
            proba = _softmax(x_pool[rest] @ w.T + b)
            n = count - int(labelled.sum())
            picked = select(proba, x_pool[rest], n, plan[0], seed * 7919 + round_no, diversity=plan[1])
            labelled[rest[picked.indices]] = True
        w, b = fit_linear_head(x_pool[labelled], y_pool[labelled], k, c=c)
        predicted = (x_test @ w.T + b).argmax(axis=1)
        scores.append(float(f1_score(y_test, predicted, labels=range(k), average="macro", zero_division=0)))
    return scores


def simulate(
    features: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    initial_per_class: int = 2,
    batch_size: int = 10,
    rounds: int = 10,
    budget: int | None = None,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    measure: Strategy | str = Strategy.MARGIN,
    test_fraction: float = 0.3,
    target_fractions: Sequence[float] = DEFAULT_TARGET_FRACTIONS,
    targets: Sequence[float] = (),
    reference: str = "random",
    c: float = DEFAULT_C,
    blas_threads: int | None = 1,
    on_round: Callable[[str, int, int, float], object] | None = None,
) -> SimulationResult:
    """Run every strategy for every seed on (N, D) `features` with (N,) int `labels` in [0, K).

    Label counts: K * initial_per_class, then + batch_size per round for `rounds` rounds, capped by `budget`
    (total labels) and the pool. `on_round(strategy, seed, labels, macro_f1)` after each strategy/seed run
    (the last point). Raises `ActiveLearningError(bad_argument)` when the data cannot support the plan.

    `blas_threads`: BLAS and OpenMP threads during the loop (None: leave as is). The fits are small (a few
    hundred x 1280); threaded BLAS spends more time syncing than computing, and on a busy machine its
    spinning threads are far worse: one fit took 12 s with 2 threads and 0.08 s with 1 on a loaded 2-core
    box (the Tux Paint benchmark there: 22 s instead of an estimated 25 minutes).
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    k = len(class_names)

    def bad(message: str) -> ActiveLearningError:
        return ActiveLearningError(ActiveLearningCode.BAD_ARGUMENT, message)

    if x.ndim != 2 or len(x) != len(y) or not np.isfinite(x).all():
        raise bad(f"features must be finite (N, D) with one label each; got {x.shape} and {y.shape}")
    if k < 2 or len(y) == 0 or y.min() < 0 or y.max() >= k:
        raise bad(f"labels must lie in [0, {k}) with K >= 2 classes")
    if not 0 < test_fraction < 1 or initial_per_class < 1 or batch_size < 1 or rounds < 0 or not seeds:
        raise bad("need 0 < test_fraction < 1, initial_per_class >= 1, batch_size >= 1, rounds >= 0, seeds")
    counts = np.bincount(y, minlength=k)
    too_few = [class_names[i] for i in range(k) if counts[i] * (1 - test_fraction) < initial_per_class + 1]
    if too_few:
        raise bad(
            f"classes with too few images for the test split plus {initial_per_class} labels: {too_few}"
        )
    measure = parse_strategy(measure)
    plans = {name: parse_plan(name, measure) for name in strategies}
    pool_size = len(y) - int(np.ceil(test_fraction * len(y)))
    start_count = k * initial_per_class
    cap = min(pool_size, budget if budget is not None else pool_size)
    schedule = [start_count] + [
        c_ for c_ in (start_count + batch_size * r for r in range(1, rounds + 1)) if c_ <= cap
    ]
    if schedule[-1] < cap and len(schedule) <= rounds:  # a last, partial batch up to the cap
        schedule.append(cap)
    curves: dict[str, list[list[float]]] = {name: [] for name in strategies}
    with threadpool_limits(limits=blas_threads):  # BLAS and OpenMP (k-means)
        for seed in seeds:
            pool, test = train_test_split(
                np.arange(len(y)), test_size=test_fraction, stratify=y, random_state=seed
            )
            rng = np.random.default_rng(seed)
            start = np.concatenate(
                [
                    rng.choice(np.flatnonzero(y[pool] == cls), initial_per_class, replace=False)
                    for cls in range(k)
                ]
            )
            for name, plan in plans.items():
                scores = _run_one(x[pool], y[pool], x[test], y[test], start, schedule, plan, k, seed, c)
                curves[name].append(scores)
                if on_round is not None:
                    on_round(name, seed, schedule[-1], scores[-1])
    grid = np.array(schedule, dtype=np.int64)
    arrays = {name: np.array(v) for name, v in curves.items()}
    ref = reference if reference in arrays else strategies[0]
    goals = [
        (f * float(arrays[ref].mean(axis=0)[-1]), f"{f:g} x {ref}'s final mean") for f in target_fractions
    ]
    goals += [(float(t), "absolute") for t in targets]
    found = tuple(
        Target(
            goal,
            how,
            {s: _first_reaching(a.mean(axis=0), grid, goal) for s, a in arrays.items()},
            {s: [_first_reaching(row, grid, goal) for row in a] for s, a in arrays.items()},
        )
        for goal, how in goals
    )
    settings = {
        "initial_per_class": initial_per_class,
        "batch_size": batch_size,
        "rounds": len(schedule) - 1,
        "budget": budget,
        "measure": measure.value,
        "test_fraction": test_fraction,
        "pool_size": pool_size,
        "test_size": len(y) - pool_size,
        "c": c,
        "classifier": "logistic regression on features scaled to unit mean norm (probe.fit_linear_head)",
    }
    return SimulationResult(
        tuple(class_names), tuple(strategies), tuple(seeds), grid, arrays, found, settings
    )


def dataset_features(
    dataset: LabelledDataset,
    weights: Path,
    decoder: ImageDecoder,
    *,
    resolve: Resolver | None = None,
    threads: int | None = None,
    on_batch: Callable[[int], object] | None = None,
) -> np.ndarray:
    """(N, 1280) float32 pooled EfficientNet-Lite0 features of the dataset's items, in `items` order.

    `weights`: the backbone .pth (the model store's `efficientnet-lite0-pth`). Images are decoded lazily
    through the safe decoder; a bad one raises its `ImageError` (run `dataset.check_images` first and drop
    them with `dataset.without`).
    """
    net = ClassifierNet(load_backbone(weights), len(dataset.classes), train_blocks=None)
    model = TrainedClassifier(net, dataset.classes, mode="probe", threads=threads)

    def loader(index: int) -> Callable[[], Any]:
        return lambda: load_image(dataset.items[index], decoder, resolve).image

    return model.features([loader(i) for i in range(len(dataset))], on_batch=on_batch)


def simulate_dataset(
    dataset: LabelledDataset,
    weights: Path,
    decoder: ImageDecoder,
    *,
    resolve: Resolver | None = None,
    threads: int | None = None,
    on_batch: Callable[[int], object] | None = None,
    **options: Any,
) -> SimulationResult:
    """`simulate` on a labelled dataset: backbone features (`dataset_features`), then the loop (`options`)."""
    features = dataset_features(
        dataset, weights, decoder, resolve=resolve, threads=threads, on_batch=on_batch
    )
    result = simulate(features, dataset.targets, dataset.classes, **options)
    result.settings["dataset"] = {"provenance": dataset.provenance, "hash": dataset.dataset_hash()}
    return result
