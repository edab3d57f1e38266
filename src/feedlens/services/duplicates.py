"""Three duplicate relations in a workspace, kept apart:

- exact: the same bytes, which the library stores once; it shows as one image with several posts
  (reposts) or several sources;
- near: the same photo re-encoded, resized, slightly cropped, watermarked or mirrored: visual cosine at
  least `near_cosine`, or a perceptual-hash match (Hamming <= `near_phash_bits`) backed by cosine >=
  `near_phash_cosine` (pHash alone confuses flat graphics; EfficientNet features survive mirroring,
  which pHash does not);
- similar: the same scene or subject in another shot: cosine >= `similar_cosine` but not near.

Groups are connected components of each relation. Thresholds: docs/search.md (measured curves).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from feedlens.config import SearchSettings
from feedlens.core.results.properties import PropertiesResult
from feedlens.storage import embeddings as vectors
from feedlens.storage import repositories as repo
from feedlens.storage.database import Database

NEIGHBOURS = 20  # candidates per image; a group larger than this is still joined transitively


@dataclass(frozen=True, slots=True)
class Pair:
    a: str
    b: str
    cosine: float
    phash_bits: int | None


def phash_distance(a: str | None, b: str | None) -> int | None:
    if not a or not b or len(a) != len(b):
        return None
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def classify(pair: Pair, t: SearchSettings) -> str | None:
    """'near', 'similar' or None for one candidate pair."""
    if pair.cosine >= t.near_cosine:
        return "near"
    if (
        pair.phash_bits is not None
        and pair.phash_bits <= t.near_phash_bits
        and pair.cosine >= t.near_phash_cosine
    ):
        return "near"
    if pair.cosine >= t.similar_cosine:
        return "similar"
    return None


def components(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected components (union-find), each sorted, largest first."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g))


def candidate_pairs(ids: list[str], matrix: np.ndarray, hashes: dict[str, str | None]) -> list[Pair]:
    """Each image against its nearest neighbours by visual cosine (exact, blockwise: (n, n) never whole)."""
    pairs: dict[tuple[str, str], Pair] = {}
    k = min(NEIGHBOURS + 1, len(ids))
    for start in range(0, len(ids), 1024):
        block = matrix[start : start + 1024] @ matrix.T  # (b, n)
        top = (
            np.argpartition(-block, k - 1, axis=1)[:, :k]
            if k < len(ids)
            else np.tile(np.arange(len(ids)), (len(block), 1))
        )
        for row, candidates in enumerate(top):
            i = start + row
            for j in candidates:
                if j == i:
                    continue
                a, b = sorted((ids[i], ids[int(j)]))
                if (a, b) not in pairs:
                    bits = phash_distance(hashes.get(a), hashes.get(b))
                    pairs[(a, b)] = Pair(a, b, float(block[row, j]), bits)
    return list(pairs.values())


def find_duplicates(
    database: Database, workspace: int, thresholds: SearchSettings, exclude: Collection[str] = ()
) -> dict[str, Any]:
    with database.session() as session:
        found = vectors.of_workspace(session, workspace, "visual", exclude)  # exclude: hidden until reviewed
        ids = list(found)
        analyses = repo.current_analyses(session, ids)
        posts = repo.posts_of(session, ids)
    loaded = {i: a["properties"].loaded if "properties" in a else None for i, a in analyses.items()}
    hashes = {i: r.phash if isinstance(r, PropertiesResult) else None for i, r in loaded.items()}
    exact = [
        {
            "image_id": i,
            "posts": [{"platform": p.platform, "post_id": p.post_id, "author": p.author} for p in ps],
        }
        for i, ps in posts.items()
        if len(ps) > 1
    ]
    if len(ids) < 2:
        return {"exact": exact, "near": [], "similar": []}
    matrix = np.stack([found[i] for i in ids]).astype(np.float32)
    pairs = candidate_pairs(ids, matrix, hashes)
    kinds = {"near": [], "similar": []}  # type: dict[str, list[Pair]]
    for pair in pairs:
        kind = classify(pair, thresholds)
        if kind:
            kinds[kind].append(pair)
    near_groups = components((p.a, p.b) for p in kinds["near"])
    near_of = {i: n for n, g in enumerate(near_groups) for i in g}
    # similar groups join near groups' members, but a pair already near is not "similar"
    similar_groups = [
        g for g in components((p.a, p.b) for p in kinds["similar"]) if len({near_of.get(i, i) for i in g}) > 1
    ]

    def described(groups: list[list[str]], relation: list[Pair]) -> list[dict[str, Any]]:
        best = {}
        for p in relation:
            best[(p.a, p.b)] = p
        return [
            {
                "images": g,
                "pairs": [
                    {"a": p.a, "b": p.b, "cosine": round(p.cosine, 4), "phash_bits": p.phash_bits}
                    for (a, b), p in best.items()
                    if a in g and b in g
                ],
            }
            for g in groups
        ]

    return {
        "exact": exact,
        "near": described(near_groups, kinds["near"]),
        "similar": described(similar_groups, kinds["similar"]),
    }
