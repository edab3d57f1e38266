"""'More like what this follower engaged with' (docs/insights.md "Recommendations"), and its offline
evaluation with a seeded held-out split against popularity and random baselines.

Relevance of an unseen image c to a follower with engaged images S (weights w_s by kind of engagement):

- visual: the mean of the m = min(3, |S|) largest w_s / max(w) x cos(v_c, v_s) over S, v the unit visual
  vectors (EfficientNet-Lite0 features, 1280-d, what "similar images" uses);
- categories: p . q_c, where q_c holds c's assigned category scores and p is the w-weighted mean of the
  seeds' (both in [0, 1]);
- relevance = a x visual + (1 - a) x categories, a = FEEDLENS_INSIGHTS__RECOMMEND_VISUAL_WEIGHT.

Picks are greedy (maximal marginal relevance): each next image maximises relevance - d x (its largest
cosine to the images already picked), d = FEEDLENS_INSIGHTS__RECOMMEND_DIVERSITY; an image whose cosine to
one already picked, or to one the follower engaged with, reaches FEEDLENS_INSIGHTS__RECOMMEND_DUPLICATE_
COSINE is the same picture and never shown, so ten near-duplicates cannot fill a list.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# how much each kind of engagement says about a taste (a share says more than a like; a view little)
KIND_WEIGHTS: Mapping[str, float] = {"view": 0.5, "like": 1.0, "save": 2.0, "comment": 2.0, "share": 3.0}
POOL = 300  # candidates ranked by relevance before the diversity pass


@dataclass(frozen=True)
class Catalog:
    """The images that can be recommended: `ids` (N), unit `visual` vectors (N, D) and category scores
    `categories` (N, C) in [0, 1] over the category names `names` (C; zeros where none is assigned)."""

    ids: tuple[str, ...]
    visual: np.ndarray
    categories: np.ndarray
    names: tuple[str, ...]

    @classmethod
    def build(
        cls, vectors: Mapping[str, np.ndarray], categories: Mapping[str, Mapping[str, float]]
    ) -> Catalog:
        ids = tuple(sorted(vectors))
        names = tuple(sorted({c for i in ids for c in categories.get(i, {})}))
        column = {n: j for j, n in enumerate(names)}
        dim = len(next(iter(vectors.values()))) if vectors else 0
        visual = np.zeros((len(ids), dim), dtype=np.float32)
        cats = np.zeros((len(ids), len(names)), dtype=np.float32)
        for row, image_id in enumerate(ids):
            v = np.asarray(vectors[image_id], dtype=np.float32)
            visual[row] = v / max(float(np.linalg.norm(v)), 1e-12)
            for name, score in categories.get(image_id, {}).items():
                cats[row, column[name]] = min(max(score, 0.0), 1.0)
        return cls(ids, visual, cats, names)

    def index(self) -> dict[str, int]:
        return {image_id: n for n, image_id in enumerate(self.ids)}


@dataclass(frozen=True, slots=True)
class Pick:
    image_id: str
    relevance: float
    visual: float
    categories: float
    because: str  # the engaged image it is most like

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.image_id,
            "relevance": round(self.relevance, 4),
            "visual": round(self.visual, 4),
            "categories": round(self.categories, 4),
            "because": self.because,
        }


@dataclass(frozen=True)
class Params:
    visual_weight: float = 0.7
    diversity: float = 0.3
    duplicate_cosine: float = 0.93


def relevance(
    catalog: Catalog, seeds: Mapping[int, float], params: Params
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(relevance, visual, categories, nearest seed row), each (N,), of every catalog image."""
    rows = np.array(sorted(seeds), dtype=np.int64)
    weights = np.array([seeds[int(r)] for r in rows], dtype=np.float32)
    sims = catalog.visual @ catalog.visual[rows].T  # (N, S)
    weighted = sims * (weights / weights.max())[None, :]
    m = min(3, len(rows))
    top = -np.sort(-weighted, axis=1)[:, :m]
    visual = np.clip(top.mean(axis=1), 0.0, 1.0)
    if catalog.categories.shape[1]:
        profile = (weights[:, None] * catalog.categories[rows]).sum(axis=0) / weights.sum()
        cats = catalog.categories @ profile
    else:
        cats = np.zeros(len(catalog.ids), dtype=np.float32)
    a = params.visual_weight
    nearest = rows[np.argmax(sims, axis=1)]
    return a * visual + (1 - a) * cats, visual, cats, nearest


def recommend(
    catalog: Catalog, seeds: Mapping[int, float], k: int, params: Params, exclude: Sequence[int] = ()
) -> list[Pick]:
    """The `k` best unseen images for a follower whose engaged catalog rows weigh `seeds` (row -> weight);
    rows in `exclude` (and the seeds) are never picked."""
    if not seeds or not catalog.ids:
        return []
    rel, visual, cats, nearest = relevance(catalog, seeds, params)
    blocked = np.zeros(len(catalog.ids), dtype=bool)
    blocked[list(seeds)] = True
    blocked[list(exclude)] = True
    seen_sims = (catalog.visual @ catalog.visual[sorted(seeds)].T).max(axis=1)
    blocked |= seen_sims >= params.duplicate_cosine  # the same picture as one already engaged with
    order = [int(i) for i in np.argsort(-rel, kind="stable") if not blocked[i]][:POOL]
    picked: list[int] = []
    closest = np.full(len(order), -1.0, dtype=np.float32)  # each candidate's largest cosine to the picks
    pool = catalog.visual[order] if order else np.zeros((0, catalog.visual.shape[1]), dtype=np.float32)
    alive = np.ones(len(order), dtype=bool)
    while len(picked) < k and alive.any():
        gain = rel[order] - params.diversity * np.clip(closest, 0.0, None)
        gain[~alive] = -np.inf
        best = int(np.argmax(gain))
        picked.append(order[best])
        alive[best] = False
        cos = pool @ pool[best]
        closest = np.maximum(closest, cos)
        alive &= cos < params.duplicate_cosine
    return [
        Pick(catalog.ids[i], float(rel[i]), float(visual[i]), float(cats[i]), catalog.ids[int(nearest[i])])
        for i in picked
    ]


# -- offline evaluation -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """Per follower: the catalog rows they engaged with that the recommender sees (`train`, row -> weight)
    and those it must find (`held`)."""

    train: dict[str, dict[int, float]]
    held: dict[str, set[int]]


def split(histories: Mapping[str, Mapping[int, float]], holdout: float, seed: int) -> Split:
    """Hold out round(holdout x n) (at least 1) of each follower's engaged images, chosen by a seeded
    shuffle; followers with fewer than 2 are left out (nothing to learn from, or nothing to find)."""
    rng = random.Random(seed)
    train, held = {}, {}
    for follower in sorted(histories):
        items = sorted(histories[follower])
        if len(items) < 2:
            continue
        rng.shuffle(items)
        n_held = min(len(items) - 1, max(1, round(holdout * len(items))))
        held[follower] = set(items[:n_held])
        train[follower] = {i: histories[follower][i] for i in items[n_held:]}
    return Split(train, held)


def _popular(split_: Split, n: int, rng: random.Random) -> list[int]:
    counts = np.zeros(n)
    for seen in split_.train.values():
        for row in seen:
            counts[row] += 1
    jitter = np.array([rng.random() for _ in range(n)])  # seeded tie-break
    return [int(i) for i in np.lexsort((jitter, -counts))]


def evaluate(
    catalog: Catalog,
    histories: Mapping[str, Mapping[int, float]],
    k: int = 10,
    holdout: float = 0.2,
    seed: int = 0,
    params: Params | None = None,
) -> dict[str, Any]:
    """Hit rate@k (share of followers with at least one held-out image in their top k) and recall@k
    (share of held-out images found) of the recommender, of popularity (most engaged in the training
    part) and of random picks, on one seeded split. The same seed gives the same numbers."""
    params = params or Params()
    parts = split(histories, holdout, seed)
    rng = random.Random(seed + 1)
    popular = _popular(parts, len(catalog.ids), rng)
    tallies = {name: [0, 0] for name in ("feedlens", "popularity", "random")}  # hits, found
    held_total, n, index = 0, len(catalog.ids), catalog.index()
    for follower, seen in parts.train.items():
        held = parts.held[follower]
        held_total += len(held)
        lists = {
            "feedlens": [index[p.image_id] for p in recommend(catalog, seen, k, params)],
            "popularity": [i for i in popular if i not in seen][:k],
            "random": rng.sample(unseen := [i for i in range(n) if i not in seen], min(k, len(unseen))),
        }
        for name, shown in lists.items():
            found = len(held & set(shown))
            tallies[name][0] += found > 0
            tallies[name][1] += found
    followers = len(parts.train)
    return {
        "followers": followers,
        "held_out": held_total,
        "images": len(catalog.ids),
        "k": k,
        "seed": seed,
        "hit_rate": {n: round(t[0] / followers, 4) if followers else None for n, t in tallies.items()},
        "recall": {n: round(t[1] / held_total, 4) if held_total else None for n, t in tallies.items()},
    }
