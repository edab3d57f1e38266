"""Cluster benchmarks (issue 21): `feedlens ingest --ray` against local ingest, one against two Ray worker
nodes of 1 CPU each, the time to recover from a killed node, and how soon an API replica finds an image
stored through another.

Everything runs on this machine over loopback, as a user runs it: a throwaway PostgreSQL
(tests/support/postgres.py), real Ray nodes (`ray start --block`, tests/e2e/ray_cluster.py: a head with no
CPUs, so that the analysis actors run only on the worker nodes) and `feedlens` commands in subprocesses, each
ingest into a fresh database. The images are ~1 MP JPEG crops of the photos the dev dependencies ship (as in
api_bench.py); the analyzers are `labels,objects,properties`, so that analysis outweighs storing and a run
still takes seconds. A worker node is killed by SIGKILL of its raylet once its actor is analysing and a batch
is stored.

Run with `make bench` (writes a section of docs/benchmarks.md). Figures are measured, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from api_bench import jpeg, photos, variant
from run import write_section
from tests.e2e.ray_cluster import QUICK_NODE_DEATH, RayNode, node_env
from tests.e2e.server import RELAXED_LIMITS, Server
from tests.support.api import auth, store
from tests.support.postgres import PostgresCluster, unique_database_name

from feedlens.storage.database import Database
from feedlens.storage.tables import Image as ImageRow

START, END = "<!-- bench:cluster:start -->", "<!-- bench:cluster:end -->"
FEEDLENS = str(Path(sys.executable).parent / "feedlens")
# labels and properties are cheap next to storing; objects makes analysis the larger part, as it is with the
# default analyzers (bench:analyzers), while a run still takes seconds
ANALYZERS = "labels,objects,properties"
BATCH = 4  # images per batch: more, smaller pieces of work for two actors to share
CROPS = 12  # distinct crops of each of the 8 photos: 96 images
CATCH_UP_SAMPLES = 8
TARGET = 1.7


@dataclass
class Run:
    """One `feedlens ingest` command: its wall time and when how many images were stored."""

    name: str
    images: int
    wall: float
    trace: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, images stored)
    killed_at: float | None = None  # seconds since start
    stored_at_kill: int = 0
    actor_cpu: dict[int, float] = field(default_factory=dict)  # actor pid -> CPU seconds, last seen
    actors_from: float | None = None  # seconds since start when an actor process was first seen

    @property
    def actor_cores(self) -> float:
        """The analysis actors' CPU time over the time they existed: cores they kept busy, on average."""
        if self.actors_from is None:
            return float("nan")
        return sum(self.actor_cpu.values()) / (self.wall - self.actors_from)

    @property
    def rate(self) -> float:
        return self.images / self.wall

    def when(self, count: int) -> float:
        """Seconds from the start until at least `count` images were stored."""
        return next(t for t, n in self.trace if n >= count)

    @property
    def steady(self) -> float:
        """Images/s from the first stored batch to the last: without start-up and model loading."""
        first = self.trace[next(i for i, (_, n) in enumerate(self.trace) if n > 0)]
        return (self.images - first[1]) / max(self.wall - first[0], 1e-9)


def crops() -> list[tuple[str, bytes]]:
    """CROPS distinct ~1 MP JPEG crops of each photo the dev dependencies ship (api_bench.py's way)."""
    made = [
        (f"{name}-{k}.jpg", jpeg(variant(im, 1.0 - 0.04 * k, 0.3 + 0.04 * k, 0.6 - 0.02 * k, k % 2 == 1)))
        for name, im in photos()
        for k in range(CROPS)
    ]
    if len({data for _, data in made}) != len(made):
        sys.exit("two benchmark images have the same bytes: the second would not be analysed")
    return made


def stored(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(ImageRow)) or 0)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def watch_actors(run: Run, nodes: list[RayNode], now: float) -> None:
    """Note the CPU time of every analysis actor on these nodes."""
    for node in nodes:
        for pid, title in node.processes().items():
            if "MapWorker" in title and (cpu := cpu_seconds(pid)) is not None:
                run.actor_cpu[pid] = cpu
                run.actors_from = now if run.actors_from is None else run.actors_from


def ingest(
    pg: PostgresCluster,
    folder: Path,
    name: str,
    ray: str | None,
    nodes: list[RayNode] | None = None,
    kill: RayNode | None = None,
) -> Run:
    """`feedlens ingest folder` into a fresh database (`--ray ray` when given), noting the CPU time of the
    actors on `nodes`; SIGKILL `kill`'s raylet once its actor analyses and a batch is stored."""
    url = pg.create_database(unique_database_name(name))
    database = Database(url)
    database.migrate()  # before the clock starts (every run's database is new)
    images = len(list(folder.iterdir()))
    env = node_env() | {
        "FEEDLENS_DATABASE_URL": url,
        "FEEDLENS_DATA_DIR": str(folder.parent / f"data-{name}"),
        "FEEDLENS_ANALYZERS": ANALYZERS,
        "FEEDLENS_BATCH_SIZE": str(BATCH),
    }
    command = [FEEDLENS, "ingest", str(folder), "-w", "bench", *(["--ray", ray] if ray else [])]
    log = folder.parent / f"{name}.log"
    began = time.perf_counter()
    with log.open("wb") as out:
        driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=out)
    run = Run(name, images, 0.0)
    try:
        while driver.poll() is None:
            count = stored(database)
            run.trace.append((time.perf_counter() - began, count))
            if nodes and len(run.trace) % 4 == 0:
                watch_actors(run, nodes, run.trace[-1][0])
            if kill is not None and run.killed_at is None and count >= BATCH and kill.analysing():
                kill.kill_raylet()
                run.killed_at, run.stored_at_kill = time.perf_counter() - began, count
            time.sleep(0.05)
        run.wall = time.perf_counter() - began
        run.trace.append((run.wall, stored(database)))
        output = log.read_text(errors="replace")
        if driver.returncode != 0 or f"images: {images} added" not in output:
            sys.exit(f"{name}: ingest failed ({driver.returncode}):\n{output[-3000:]}")
        if run.trace[-1][1] != images:
            sys.exit(f"{name}: {run.trace[-1][1]} images stored, expected {images}")
    finally:
        if driver.poll() is None:
            driver.kill()
        database.dispose()
    return run


def cluster_runs(pg: PostgresCluster, folder: Path, quick: bool) -> dict[str, Run]:
    """Local ingest; `--ray` with one, then two 1-CPU worker nodes; then two with one killed mid-ingest."""
    runs = {"local": ingest(pg, folder, "local", None)}
    head = RayNode(cpus=0, system_config=QUICK_NODE_DEATH if quick else None)
    workers = [RayNode(cpus=1, head=head.address) for _ in range(2)]
    try:
        head.start()
        workers[0].start()
        runs["one"] = ingest(pg, folder, "one", head.address, workers[:1])
        workers[1].start()
        runs["two"] = ingest(pg, folder, "two", head.address, workers[:2])
        runs["killed"] = ingest(pg, folder, "killed", head.address, kill=workers[1])
    finally:
        for node in [*workers, head]:
            node.stop()
    return runs


def catch_up(
    pg: PostgresCluster, images: list[bytes], tmp: Path
) -> tuple[list[float], list[int], list[float]]:
    """Two `feedlens serve` replicas on one database and folder. For each image stored through A: the
    seconds from A's answer until a search on B returns it, the searches that took, and one such search's
    seconds on A (where nothing needs catching up)."""
    env = {
        **RELAXED_LIMITS,
        "FEEDLENS_DATABASE_URL": pg.create_database(unique_database_name("replicas")),
        "FEEDLENS_ANALYZERS": "labels,embedding",
        "PYTHONPATH": node_env()["PYTHONPATH"],  # the replicas run this checkout too
    }
    a, b = Server(tmp / "shared", env), Server(tmp / "shared", env)
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(Server.start, (a, b)))
        key = a.key("replicas", "write")
        waits: list[float] = []
        tries: list[int] = []
        local: list[float] = []
        with (
            httpx.Client(base_url=a.url, timeout=60) as on_a,
            httpx.Client(base_url=b.url, timeout=60) as on_b,
        ):
            first = store(on_a, key, images[0], "warm.jpg")
            if top(on_b, key, images[0]) != first:
                sys.exit("replica B never found the first image")
            for n, data in enumerate(images[1 : CATCH_UP_SAMPLES + 1]):
                image_id = store(on_a, key, data, f"{n}.jpg")
                committed, searches = time.perf_counter(), 1
                while top(on_b, key, data) != image_id:
                    searches += 1
                    if time.perf_counter() - committed > 30:
                        sys.exit("replica B did not find an image stored through A within 30 s")
                waits.append(time.perf_counter() - committed)
                tries.append(searches)
                began = time.perf_counter()
                top(on_a, key, data)
                local.append(time.perf_counter() - began)
        return waits, tries, local
    finally:
        a.stop()
        b.stop()


def top(client: httpx.Client, key: str, data: bytes) -> str | None:
    """The id of the stored image most like this upload (None when nothing is stored)."""
    response = client.post("/v1/search/similar", headers=auth(key), files={"file": ("q.jpg", data)})
    response.raise_for_status()
    items = response.json()["items"]
    return str(items[0]["image_id"]) if items else None


def throughput(runs: dict[str, Run], mb: float, loads: tuple[float, float]) -> list[str]:
    local, one, two = runs["local"], runs["one"], runs["two"]
    steady_ratio = two.steady / one.steady
    row = "| {} | {:.1f} | {:.2f} | {:.2f} | {} |"
    return [
        f"`benchmarks/cluster_bench.py`, {time.strftime('%Y-%m-%d')}, this 2-core machine over loopback "
        f"(load average {loads[0]:.1f} before, {loads[1]:.1f} after). {local.images} distinct JPEGs (about "
        f"1 MP, {mb:.2f} MB each), analyzers `{ANALYZERS}`, batches of {BATCH}, each run into a fresh "
        f"PostgreSQL database. Ray {version('ray')}: a head with `--num-cpus 0` and worker nodes with "
        "`--num-cpus 1`, one actor each. *Wall*: the whole command (start-up, joining the cluster, models "
        "loaded in each actor). *Steady*: from the first stored batch to the last. *Cores the actors used*: "
        "their CPU time over the time they existed.",
        "",
        "| run | wall s | images/s, wall | images/s, steady | cores the actors used |",
        "|---|---|---|---|---|",
        row.format("local ingest (no Ray)", local.wall, local.rate, local.steady, "-"),
        row.format("`--ray`, 1 worker node", one.wall, one.rate, one.steady, f"{one.actor_cores:.2f}"),
        row.format("`--ray`, 2 worker nodes", two.wall, two.rate, two.steady, f"{two.actor_cores:.2f}"),
        "",
        f"Two worker nodes against one: {two.rate / one.rate:.2f}x (wall), {steady_ratio:.2f}x (steady); "
        f"the target of {TARGET}x is {'met' if steady_ratio >= TARGET else '**not met**'}. What two cores "
        f"allow: one node's actor kept {one.actor_cores:.2f} cores busy and two nodes' actors "
        f"{two.actor_cores:.2f}, not 2: the ingest command (hashing, thumbnails, PostgreSQL writes), every "
        "node's raylet and the head run on the same two cores. A 2x needs the second node to bring cores of "
        "its own. `--ray` with two nodes against local "
        f"ingest: {two.rate / local.rate:.2f}x (wall), {two.steady / local.steady:.2f}x (steady).",
    ]


def node_loss(runs: dict[str, Run], quick: bool) -> list[str]:
    two, killed = runs["two"], runs["killed"]
    assert killed.killed_at is not None
    recovered = killed.wall - killed.killed_at
    unkilled = two.wall - two.when(killed.stored_at_kill)  # the same stretch of the run nobody killed
    detection = (
        "the tests' quick setting (health checks every 1 s, dead after 4 missed)"
        if quick
        else "Ray's default (a health check every 3 s, dead after 5 missed)"
    )
    return [
        f"**A lost node.** Two worker nodes; the second's raylet SIGKILLed while its actor analysed, "
        f"{killed.stored_at_kill} of {killed.images} images stored. The command finished {recovered:.1f} s "
        f"after the kill, every image stored once; the run nobody killed needed {unkilled:.1f} s from the "
        f"same point, so losing the node cost {recovered - unkilled:.1f} s (whole runs {killed.wall:.1f} s "
        f"and {two.wall:.1f} s). Ray Data restarted the lost actor's work by its defaults; node death "
        f"detection: {detection}.",
    ]


def replicas(catch: tuple[list[float], list[int], list[float]]) -> list[str]:
    waits, tries, here = catch
    return [
        "**Replica catch-up.** Two `feedlens serve` replicas on one database and data folder (analyzers "
        f"`labels,embedding`). For {len(waits)} images stored through replica A: from A's answer until a "
        f"similar-image search on replica B returned the image, median {1000 * statistics.median(waits):.0f} "
        f"ms, max {1000 * max(waits):.0f} ms; B's first search found it {tries.count(1)} of {len(tries)} "
        f"times. The same search on A, where nothing was new: median {1000 * statistics.median(here):.0f} ms "
        "(mostly embedding the uploaded query).",
    ]


def render(
    runs: dict[str, Run],
    catch: tuple[list[float], list[int], list[float]],
    quick: bool,
    mb: float,
    loads: tuple[float, float],
) -> str:
    title = "## Cluster: `feedlens ingest --ray` on one and two worker nodes, a lost node, replica catch-up"
    body = [*throughput(runs, mb, loads), "", *node_loss(runs, quick), "", *replicas(catch)]
    return "\n".join([START, title, "", *body, END])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="feedlens cluster benchmarks (issue 21)")
    parser.add_argument("--out", type=Path, help="markdown file whose cluster section is (re)written")
    parser.add_argument(
        "--quick-death",
        action="store_true",
        help="the tests' 3 s node-death detection instead of Ray's default",
    )
    args = parser.parse_args(argv)
    before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="feedlens-cluster-") as tmp, PostgresCluster() as pg:
        images = crops()
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for name, data in images:
            (folder / name).write_bytes(data)
        mb = statistics.mean(len(d) for _, d in images) / 1e6
        runs = cluster_runs(pg, folder, args.quick_death)
        catch = catch_up(pg, [data for _, data in images], Path(tmp))
    section = render(runs, catch, args.quick_death, mb, (before, os.getloadavg()[0]))
    print(section)
    if args.out:
        write_section(args.out, section, START, END)


if __name__ == "__main__":
    main()
