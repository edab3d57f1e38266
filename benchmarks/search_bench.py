"""Vector search benchmark (issue "search"): `ExactIndex` (numpy), `FaissIndex` flat and HNSW.

Synthetic 1280-d vectors (the `visual` embedding's size) at 100k and 1M: build time, memory, single-query
latency p50/p99 and recall@10 against exact search; HNSW's efSearch sweep, filtered searches (the
`allowed` pre-filter), save/load of the index file, and PCA to 256-d with its recall against the exact
1280-d answers.

The data is a Gaussian mixture with a decaying spectrum, so that neighbours mean something and the
intrinsic dimension is far below 1280, as with real embeddings: per-dimension scale s_i = (1 + i)^-0.5
(participation ratio ~36 dimensions), one centre per 1000 vectors drawn with those scales, each vector its
centre plus noise of the same scales, then L2-normalised. Queries are fresh draws from the same mixture.

Run with `make bench` (writes a section of docs/benchmarks.md). Figures are measured, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
from api_bench import busy_seconds, own_seconds
from run import machine, write_section

from feedlens.config import load_settings
from feedlens.index import ExactIndex, FaissIndex, FaissParams, Match, VectorIndex
from feedlens.index.base import POSTFILTER_MIN_IDS, POSTFILTER_SHARE, top_k

START, END = "<!-- bench:search:start -->", "<!-- bench:search:end -->"
DIM, REDUCED, K = 1280, 256, 10
ALPHA = 0.5  # per-dimension scale (1 + i)^-ALPHA
PER_CLUSTER = 1000
CHUNK = 50_000  # rows generated (and projected) at a time: no full-size temporaries
EF_SWEEP = (32, 64, 128, 256)
FILTERS = {"0.5%": 0.005, "2%": 0.02, "10%": 0.10, "50%": 0.50}  # share a metadata filter lets through
TRUTH_BLOCK = 32  # queries scored at once for the exact answers (a 32 x 1M score matrix is 128 MB)
PCA_TRAIN = 100_000
THRESHOLD = FaissParams().hnsw_threshold


# -- data ----------------------------------------------------------------------------------------------
def mixture(n: int, n_queries: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n library vectors and n_queries queries from one Gaussian mixture (see the module docstring)."""
    rng = np.random.default_rng(seed)
    scale = ((1 + np.arange(dim)) ** -ALPHA).astype(np.float32)
    centres = rng.standard_normal((max(n // PER_CLUSTER, 1), dim), dtype=np.float32) * scale

    def draw(m: int) -> np.ndarray:
        out = np.empty((m, dim), np.float32)
        for s in range(0, m, CHUNK):
            block = out[s : s + CHUNK]
            block[:] = rng.standard_normal(block.shape, dtype=np.float32)
            block *= scale
            block += centres[rng.integers(0, len(centres), len(block))]
            faiss.normalize_L2(block)
        return out

    return draw(n), draw(n_queries)


def image_ids(n: int) -> list[str]:
    return [f"{i:024x}" for i in range(n)]


# -- measuring -----------------------------------------------------------------------------------------
def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def settle() -> float:
    gc.collect()
    return rss_mb()


def queries_loop(
    index: VectorIndex, queries: np.ndarray, allowed: Collection[str] | None = None
) -> tuple[list[float], list[list[Match]]]:
    """One query at a time on one thread (FAISS OpenMP and BLAS both limited to 1), after 5 warm-ups:
    what one request costs the service, which answers concurrent requests on separate threads."""
    out: list[list[Match]] = []
    seconds: list[float] = []
    with threadpool_limits(limits=1):
        for q in queries[:5]:
            index.search(q, K, allowed)
        for q in queries:
            start = time.perf_counter()
            found = index.search(q, K, allowed)
            seconds.append(time.perf_counter() - start)
            out.append(found[0])
    return seconds, out


def recall(found: Sequence[list[Match]], truth: Sequence[list[Match]]) -> float:
    hits = [len({i for i, _ in f} & {i for i, _ in t}) / len(t) for f, t in zip(found, truth, strict=False)]
    return float(np.mean(hits))


def ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(seconds, q) * 1000)


@dataclass
class Row:
    size: int
    what: str
    build_s: float | None
    index_mb: float | None
    rss_mb: float | None
    p50: float
    p99: float
    recall: float | None
    queries: int
    note: str = ""

    def markdown(self) -> str:
        def f(v: float | None, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)

        cells = [
            f"{self.size:,}",
            self.what,
            f(self.build_s, ".1f"),
            f(self.index_mb, ",.0f"),
            f(self.rss_mb, ",.0f"),
            f"{self.p50:.2f}",
            f"{self.p99:.2f}",
            f(self.recall, ".3f"),
            str(self.queries),
            self.note,
        ]
        return "| " + " | ".join(cells) + " |"


@dataclass
class Results:
    rows: list[Row]
    sweep: list[Row]
    filtered: list[Row]
    reduced: list[Row]
    files: list[str]
    facts: list[str]


def log(message: str, began: float) -> None:
    print(f"[{time.perf_counter() - began:7.0f} s] {message}", file=sys.stderr, flush=True)


def timed_build(make: object, *args: object) -> tuple[VectorIndex, float, float]:
    """(index, seconds, RSS growth in MB) of one construction call (builds use every core)."""
    before = settle()
    start = time.perf_counter()
    index: VectorIndex = make(*args)  # type: ignore[operator]
    seconds = time.perf_counter() - start
    return index, seconds, settle() - before


def exact_of(ids: list[str], vectors: np.ndarray) -> ExactIndex:
    index = ExactIndex(vectors.shape[1])
    index.add(ids, vectors)
    return index


def row(
    n: int,
    what: str,
    seconds: list[float],
    found_recall: float | None,
    built: tuple[float, float, float] | None = None,
    note: str = "",
) -> Row:
    """A result row; `built` is (build seconds, index MB, RSS growth MB)."""
    b, mb, grew = built if built else (None, None, None)
    return Row(n, what, b, mb, grew, ms(seconds, 50), ms(seconds, 99), found_recall, len(seconds), note)


@dataclass
class Data:
    """One size's vectors and queries, and the exact answers everything is compared with."""

    n: int
    x: np.ndarray
    q: np.ndarray
    ids: list[str]
    allowed: dict[str, set[str]]
    allowed_rows: dict[str, np.ndarray]
    slow: np.ndarray  # the queries brute force answers (all of them, except at 1M)
    truth: list[list[Match]] = field(default_factory=list)
    truth_f: dict[str, list[list[Match]]] = field(default_factory=dict)
    before_save: list[list[Match]] = field(default_factory=list)  # HNSW's answers to the first 100 queries


def stage_truth(d: Data, out: Results) -> None:
    """The exact answers, unfiltered and for each filter, from one pass of matrix products (BLAS on
    every core) over blocks of queries."""
    start = time.perf_counter()
    masks = {name: np.zeros(d.n, dtype=bool) for name in d.allowed}
    for name, mask in masks.items():
        mask[d.allowed_rows[name]] = True
    d.truth, d.truth_f = [], {name: [] for name in d.allowed}

    def answers(scores: np.ndarray) -> list[list[Match]]:
        cols, best = top_k(scores, K)
        return [
            [(d.ids[c], float(v)) for c, v in zip(cr, br, strict=True)]
            for cr, br in zip(cols, best, strict=True)
        ]

    for s in range(0, len(d.q), TRUTH_BLOCK):
        scores = d.q[s : s + TRUTH_BLOCK] @ d.x.T
        d.truth += answers(scores)
        for name, mask in masks.items():
            d.truth_f[name] += answers(np.where(mask, scores, -np.inf).astype(np.float32))
    out.facts.append(
        f"exact answers to {len(d.q)} queries at {d.n:,}, unfiltered and under {len(masks)} filters: "
        f"{time.perf_counter() - start:.0f} s (numpy, batched)"
    )


def stage_exact(d: Data, out: Results) -> None:
    """Exact numpy (`ExactIndex`), the reference: single queries, unfiltered and filtered."""
    exact, build, grew = timed_build(exact_of, d.ids, d.x)
    assert recall(exact.search(d.q[:20], K), d.truth[:20]) == 1.0  # the index agrees with the matrix product
    seconds, _ = queries_loop(exact, d.slow)
    out.rows.append(row(d.n, "exact numpy", seconds, 1.0, (build, exact.nbytes / 2**20, grew)))
    for name, a in d.allowed.items():
        seconds, _ = queries_loop(exact, d.slow, a)
        out.filtered.append(row(d.n, f"exact numpy, {name} allowed", seconds, 1.0))


def stage_threshold(d: Data, out: Results) -> None:
    """At the flat/HNSW threshold: flat search there vs the cost of building the graph instead."""
    ids, sub = d.ids[:THRESHOLD], d.x[:THRESHOLD]
    flat, build, grew = timed_build(FaissIndex.build, DIM, ids, sub, FaissParams(THRESHOLD + 1))
    seconds, _ = queries_loop(flat, d.q)
    out.rows.append(row(THRESHOLD, "FAISS flat", seconds, None, (build, flat.nbytes / 2**20, grew)))
    del flat
    graph, build, grew = timed_build(FaissIndex.build, DIM, ids, sub, FaissParams())
    seconds, _ = queries_loop(graph, d.q)
    out.rows.append(row(THRESHOLD, "FAISS HNSW", seconds, None, (build, graph.nbytes / 2**20, grew)))


def stage_flat(d: Data, out: Results) -> None:
    """FAISS flat (threshold above n, so it stays flat)."""
    flat, build, grew = timed_build(FaissIndex.build, DIM, d.ids, d.x, FaissParams(hnsw_threshold=d.n + 1))
    seconds, found = queries_loop(flat, d.slow)
    out.rows.append(
        row(d.n, "FAISS flat", seconds, recall(found, d.truth), (build, flat.nbytes / 2**20, grew))
    )


def stage_hnsw(d: Data, out: Results, began: float, path: Path) -> float:
    """FAISS HNSW with the default parameters; then efSearch swept and filters tried on the same graph;
    then saved to `path`. Returns the seconds the save took."""
    params = FaissParams()
    hnsw, build, grew = timed_build(FaissIndex.build, DIM, d.ids, d.x, params)
    assert isinstance(hnsw, FaissIndex) and hnsw.backend == "faiss-hnsw"
    log(f"{d.n:,}: HNSW built in {build:.0f} s", began)
    seconds, found = queries_loop(hnsw, d.q)
    d.before_save = found[:100]
    note = f"M {params.hnsw_m}, efConstruction {params.ef_construction}, efSearch {params.ef_search}"
    built = (build, hnsw.nbytes / 2**20, grew)
    out.rows.append(row(d.n, "FAISS HNSW (defaults)", seconds, recall(found, d.truth), built, note))
    for ef in EF_SWEEP:
        hnsw.params = replace(params, ef_search=ef)
        seconds, found = queries_loop(hnsw, d.q)
        out.sweep.append(row(d.n, f"efSearch {ef}", seconds, recall(found, d.truth)))
    hnsw.params = params
    for name, a in d.allowed.items():
        how = (
            "unfiltered search, then filtered"
            if len(a) >= POSTFILTER_SHARE * d.n and len(a) > POSTFILTER_MIN_IDS
            else "exact over the allowed rows"
            if len(a) <= params.exact_filter_limit
            else "graph + selector"
        )
        seconds, found = queries_loop(hnsw, d.q, a)
        assert all(i in a for hit in found for i, _ in hit)
        what = f"FAISS HNSW, {name} allowed ({len(a):,} ids)"
        out.filtered.append(row(d.n, what, seconds, recall(found, d.truth_f[name]), note=how))
    start = time.perf_counter()
    hnsw.save(path)
    return time.perf_counter() - start


def stage_files(d: Data, out: Results, path: Path, save_s: float) -> None:
    """Load the HNSW index `stage_hnsw` saved (after it was freed: one copy in memory at a time)."""
    gc.collect()
    start = time.perf_counter()
    loaded = FaissIndex.load(path)
    load_s = time.perf_counter() - start
    _, found = queries_loop(loaded, d.q[:100])
    same = sum(f == b for f, b in zip(found, d.before_save, strict=True))
    mb = path.stat().st_size / 2**20
    out.files.append(f"| {d.n:,} | {mb:,.0f} | {save_s:.1f} | {load_s:.1f} | {same}/{len(found)} |")
    path.unlink()


def stage_pca(d: Data, out: Results) -> None:
    """PCA to REDUCED dimensions, trained on a sample; recall against the exact 1280-d answers.
    Frees the 1280-d vectors (`d.x`) first: the reduced copy is all that is needed from here."""
    pca = faiss.PCAMatrix(DIM, REDUCED)
    start = time.perf_counter()
    sample = np.sort(np.random.default_rng(2).choice(d.n, min(d.n, PCA_TRAIN), replace=False))
    pca.train(np.ascontiguousarray(d.x[sample]))
    xr = np.empty((d.n, REDUCED), np.float32)
    for s in range(0, d.n, CHUNK):
        xr[s : s + CHUNK] = pca.apply(np.ascontiguousarray(d.x[s : s + CHUNK]))
    faiss.normalize_L2(xr)
    qr = pca.apply(d.q)
    faiss.normalize_L2(qr)
    note = f"PCA trained on {len(sample):,}, {d.n:,} projected: {time.perf_counter() - start:.0f} s"
    d.x = np.zeros((0, DIM), np.float32)
    gc.collect()
    exact_r, build, grew = timed_build(exact_of, d.ids, xr)
    seconds, _ = queries_loop(exact_r, qr[: len(d.slow)])
    in_reduced = exact_r.search(qr, K)
    built = (build, exact_r.nbytes / 2**20, grew)
    out.reduced.append(
        row(d.n, f"exact numpy, {REDUCED}-d", seconds, recall(in_reduced, d.truth), built, note)
    )
    del exact_r
    hnsw_r, build, grew = timed_build(FaissIndex.build, REDUCED, d.ids, xr, FaissParams())
    seconds, found = queries_loop(hnsw_r, qr)
    built = (build, hnsw_r.nbytes / 2**20, grew)
    note = f"recall vs exact {REDUCED}-d: {recall(found, in_reduced):.3f}"
    out.reduced.append(row(d.n, f"FAISS HNSW, {REDUCED}-d", seconds, recall(found, d.truth), built, note))


def bench_size(n: int, args: argparse.Namespace, out: Results, began: float) -> None:
    x, q = mixture(n, args.queries, DIM, seed=n)
    ids = image_ids(n)
    rng = np.random.default_rng(1)
    allowed_rows = {name: rng.choice(n, int(share * n), replace=False) for name, share in FILTERS.items()}
    allowed = {name: {ids[i] for i in rows.tolist()} for name, rows in allowed_rows.items()}
    slow = q[: args.slow_queries] if n > 200_000 else q  # brute force at 1M: ~0.2 s a query
    d = Data(n, x, q, ids, allowed, allowed_rows, slow)
    del x
    log(f"{n:,}: data ready ({d.x.nbytes / 2**30:.1f} GiB)", began)
    stage_truth(d, out)
    log(f"{n:,}: exact answers done", began)
    stage_exact(d, out)  # each stage's indexes are freed when it returns: one big copy at a time
    log(f"{n:,}: exact done", began)
    if n == min(args.sizes):
        stage_threshold(d, out)
    stage_flat(d, out)
    log(f"{n:,}: flat done", began)
    with tempfile.TemporaryDirectory(prefix="feedlens-search-bench-", dir=args.tmp) as tmp:
        path = Path(tmp) / "visual.index"
        stage_files(d, out, path, stage_hnsw(d, out, began, path))
    log(f"{n:,}: HNSW done", began)
    stage_pca(d, out)
    log(f"{n:,}: PCA done", began)


# -- report --------------------------------------------------------------------------------------------
HEAD = (
    "| Vectors | Index | Build s | Index MB | RSS growth MB | p50 ms | p99 ms | recall@10 | queries "
    "| Notes |",
    "|--:|---|--:|--:|--:|--:|--:|--:|--:|---|",
)


def render(r: Results, args: argparse.Namespace, load: str) -> str:
    p = FaissParams()
    met = {True: "met", False: "**not met**"}

    def default_hnsw(n: int) -> Row | None:
        return next((x for x in r.rows if x.size == n and x.what.startswith("FAISS HNSW (")), None)

    targets = []
    for n, budget in ((100_000, 10.0), (1_000_000, 20.0)):
        h = default_hnsw(n)
        if h is not None:
            ok = h.p99 <= budget and (h.recall or 0) >= 0.95
            targets.append(
                f"| Search p99 <= {budget:g} ms at {n:,} x {DIM}-d, recall@10 >= 0.95 | p99 {h.p99:.2f} ms, "
                f"recall {h.recall:.3f} (HNSW, defaults) | {met[ok]} |"
            )
    return "\n".join(
        [
            START,
            "## Vector search: exact numpy, FAISS flat, FAISS HNSW",
            "",
            f"Measured {time.strftime('%Y-%m-%d')} with `benchmarks/search_bench.py`. Synthetic {DIM}-d "
            "float32 vectors, L2-normalised: a Gaussian mixture (one centre per 1000 vectors) with "
            f"per-dimension scale (1 + i)^-{ALPHA}, for neighbours that mean something and an intrinsic "
            f"dimension far below {DIM} (participation ratio ~36), as with real embeddings; queries are "
            "fresh draws from the same mixture. Latency: one query at a time through "
            "`VectorIndex.search(q, 10)` (input checks and id mapping included) on **one thread** (FAISS "
            "OpenMP and BLAS limited to 1 with threadpoolctl: the service answers concurrent requests on "
            "separate threads), after 5 warm-ups. Builds use every core. recall@10 is against exact search "
            "over the same vectors. *Index MB* is the vectors plus graph (`nbytes`); *RSS growth* is the "
            "process's resident memory growth across the build (it also counts the string-id maps). Brute "
            "force at 1M answers a subset of the queries (~0.2 s each).",
            "",
            *HEAD,
            *(x.markdown() for x in r.rows),
            "",
            f"HNSW efSearch sweep (graph built with M {p.hnsw_m}, efConstruction {p.ef_construction}; "
            f"the default efSearch is {p.ef_search}):",
            "",
            *HEAD,
            *(x.markdown() for x in r.sweep),
            "",
            "Filtered search (`allowed` ids, a metadata pre-filter; recall against exact filtered search). "
            f"A filter of more than {POSTFILTER_MIN_IDS:,} ids letting at least {POSTFILTER_SHARE:.0%} of "
            "the index through is applied to an unfiltered search for ceil(2k / share) candidates; a "
            "smaller one is mapped to positions and searched exactly over the allowed rows "
            f"(`compute_distance_subset`), on HNSW when at most {p.exact_filter_limit:,}, else on the graph "
            "with a bitmap selector and efSearch raised by 1 / share:",
            "",
            *HEAD,
            *(x.markdown() for x in r.filtered),
            "",
            f"Reduced dimension: PCA {DIM} -> {REDUCED} (`faiss.PCAMatrix`), recall@10 against the exact "
            f"**{DIM}-d** answers:",
            "",
            *HEAD,
            *(x.markdown() for x in r.reduced),
            "",
            "The HNSW index file (`FaissIndex.save`: atomic write, fsync, rename; `load`); the loaded index "
            "is checked to answer 100 queries exactly as before the save:",
            "",
            "| Vectors | File MB | save s | load s | same answers after load |",
            "|--:|--:|--:|--:|--:|",
            *r.files,
            "",
            *(f"- {fact[0].upper()}{fact[1:]}." for fact in r.facts),
            "",
            "Targets (reported, not asserted):",
            "",
            "| Target | Measured | Status |",
            "|---|---|---|",
            *targets,
            "",
            "Machine:",
            "",
            *(f"- {line}" for line in machine(load_settings())),
            f"- faiss-cpu {version('faiss-cpu')}, threadpoolctl {version('threadpoolctl')}; query loops on 1 "
            f"thread, builds on {os.cpu_count()} (FAISS OpenMP default)",
            f"- {load}",
            END,
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="feedlens vector search benchmark")
    parser.add_argument("--out", type=Path, help="markdown file whose search section is (re)written")
    parser.add_argument(
        "--sizes", type=lambda s: [int(v) for v in s.split(",")], default=[100_000, 1_000_000]
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--slow-queries", type=int, default=200, help="brute-force queries at sizes > 200k")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the index files saved and loaded")
    args = parser.parse_args(argv)
    began, busy0, own0 = time.perf_counter(), busy_seconds(), own_seconds()
    load0 = os.getloadavg()[0]
    results = Results([], [], [], [], [], [])
    for n in args.sizes:
        bench_size(n, args, results, began)
    wall = time.perf_counter() - began
    others = (busy_seconds() - busy0 - (own_seconds() - own0)) / (wall * (os.cpu_count() or 1))
    load = (
        f"Load: the run took {wall / 60:.0f} min; other processes used {max(others, 0) * 100:.0f}% of the "
        f"machine's CPU meanwhile (from /proc/stat); 1-min load average {load0:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end"
    )
    section = render(results, args, load)
    print(section)
    if args.out:
        write_section(args.out, section, START, END)


if __name__ == "__main__":
    main()
