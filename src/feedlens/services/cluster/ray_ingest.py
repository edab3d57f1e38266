"""`feedlens ingest --ray ADDRESS`: decode and analyse on a Ray cluster, store here exactly as local ingest.

The driver (this process) reads the items a round (`cluster.chunk_images`) at a time, hashes them and
asks the database which contents are stored already; only new contents travel, as bytes, to a pool of
Ray Data actors (`map_batches` over `AnalyzeActor`, `cluster.cpus_per_actor` CPUs each) that load the
models once and return each report as a plain row (wire.py). As the rows stream back, every batch whose
reports have all arrived goes through `Ingestor.process_batch`, the code local ingest runs: the same
transaction per batch, the same exactly-once keys (SHA-256 of the bytes, platform + post id) and the same
after-commit hooks. Only the analysis step differs: it hands back the cluster's reports instead of running
models.

The store must be one every process can reach: PostgreSQL (SQLite is refused, ClusterStoreError). Blobs
are written by the driver into its own blob store (FEEDLENS_DATA_DIR), so the nodes need no shared disk.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import replace
from itertools import islice
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from feedlens.config import Settings
from feedlens.core.errors import ConfigError, FeedlensError
from feedlens.core.results.base import ImageReport
from feedlens.services.cluster.wire import report_from_row, report_row
from feedlens.services.ingest import BatchHook, IngestItem, Ingestor, ItemOutcome
from feedlens.services.pipeline import ANALYZER_FAILED, Pipeline
from feedlens.storage import repositories as repo

if TYPE_CHECKING:
    from types import ModuleType

    import numpy as np

log = logging.getLogger(__name__)

REACH_TIMEOUT_S = 5.0
RESENDS = 3  # times a round's unanalysed contents are sent again after the cluster lost work (a node died)
ROW_KEYS = ("sha256", "report", "visual", "content", "versions")
# What only this process needs: where data lives, which cluster, its own threads. Each node finds its models
# in its own FEEDLENS_HOME (the environment `ray start` ran in).
_DRIVER_ONLY = frozenset(
    {"home", "data_dir", "database_url", "ray_address", "cluster", "threads_per_worker", "host", "port"}
)


class ClusterStoreError(ConfigError):
    """A cluster was asked for with a store only this machine can reach (SQLite)."""

    code = "cluster_needs_postgresql"


class ClusterError(FeedlensError):
    """The cluster could not be reached or failed while analysing."""

    code = "cluster_failed"
    http_status = 503


def check_cluster_store(settings: Settings) -> None:
    """Raise ClusterStoreError unless the database is PostgreSQL, the store every node's results meet in."""
    backend = make_url(settings.database).get_backend_name()
    if backend != "postgresql":
        raise ClusterStoreError(
            f"--ray needs PostgreSQL as the shared store, but the database is {backend}: set "
            "FEEDLENS_DATABASE_URL=postgresql+psycopg://... (docs/scale.md)"
        )


def actor_settings(settings: Settings) -> dict[str, Any]:
    """The settings an actor builds its pipeline from: what the user set here (analyzers, thresholds ...)
    minus what is this machine's own; its model threads are the CPUs it reserves."""
    chosen: dict[str, Any] = settings.model_dump(mode="json", exclude_unset=True, exclude=set(_DRIVER_ONLY))
    chosen["threads_per_worker"] = settings.cluster.cpus_per_actor
    return chosen


class AnalyzeActor:
    """A Ray Data actor: builds the ingest pipeline once (models load once per actor), then analyses
    batches of rows {name, sha256, data} into report rows (wire.report_row)."""

    def __init__(self, settings: dict[str, Any], names: list[str] | None = None) -> None:
        from feedlens.services.factory import build_services

        services = build_services(Settings(**settings))
        # `names`: reanalysis runs only the analyzers it refreshes, decoded at ingest's size as it does here
        self.pipeline = (
            services.ingest_pipeline if names is None else services.pipeline(names, decode_like_ingest=True)
        )
        self.pipeline.load()
        self.versions = self.pipeline.versions()

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, list[Any]]:
        """`batch`: columns of n rows (object arrays); returns the ROW_KEYS columns of n report rows."""
        names = [str(n) for n in batch["name"]]
        digests = [str(d) for d in batch["sha256"]]
        data = [bytes(d) for d in batch["data"]]
        reports = self.pipeline.analyze_sources(names, data, digests=digests)
        rows = [report_row(r, self.versions) | {"sha256": d} for r, d in zip(reports, digests, strict=True)]
        return {key: [row[key] for row in rows] for key in ROW_KEYS}


class ClusterReports(Pipeline):
    """What `Ingestor.process_batch` sees as its pipeline on the driver: the reports the cluster made, by
    SHA-256. Versions are the local pipeline's (same analyzers, unloaded); wire.py checks the nodes'."""

    def __init__(self, base: Pipeline) -> None:
        super().__init__(base.decoder, base.analyzers, base.threads, report=sorted(base.report))
        self.reports: dict[str, ImageReport] = {}

    def load(self) -> None:
        """Nothing: the models run on the cluster."""

    def analyze_sources(
        self,
        names: Sequence[str],
        sources: Sequence[Any],
        digests: Sequence[str | None] | None = None,
    ) -> list[ImageReport]:
        known = list(digests) if digests is not None else [None] * len(names)
        return [self._report(name, digest) for name, digest in zip(names, known, strict=True)]

    def _report(self, name: str, digest: str | None) -> ImageReport:
        found = self.reports.get(digest) if digest is not None else None
        if found is not None:
            return found
        # read differently here than when the round was sent (the file changed): a rerun analyses it
        return ImageReport(path=name, error={"code": ANALYZER_FAILED, "message": "not analysed; run again"})


class ClusterPipeline(ClusterReports):
    """`feedlens reanalyze --ray`: a pipeline whose `analyze_sources` sends the round of stored originals it
    is given to the cluster (only `base`'s analyzers run there, decoded as ingest decodes) and returns
    their reports in order; storing stays with the caller. `close()` disconnects."""

    def __init__(self, base: Pipeline, settings: Settings, address: str) -> None:
        check_cluster_store(settings)
        super().__init__(base)
        self.address = address
        names = [a.name for a in base.analyzers]
        self.analysis = RayAnalysis(settings, settings.batch_size, self.versions(), names)
        self._ray: ModuleType | None = None
        self._connected = False

    def analyze_sources(
        self,
        names: Sequence[str],
        sources: Sequence[Any],
        digests: Sequence[str | None] | None = None,
    ) -> list[ImageReport]:
        data = [bytes(source) for source in sources]
        shas = [hashlib.sha256(d).hexdigest() for d in data]
        fresh: dict[str, tuple[str, bytes]] = {}
        for name, sha, d in zip(names, shas, data, strict=True):
            fresh.setdefault(sha, (name, d))
        if self._ray is None:
            self._ray, self._connected = _connect(self.address)
        self.reports = dict(self.analysis.analyse_all(self._ray, fresh))
        return super().analyze_sources(names, data, shas)

    def close(self) -> None:
        self.reports = {}
        if self._ray is not None and self._connected:
            self._ray.shutdown()
        self._ray = None


class ClusterIngestor:
    """Ingest whose analysis runs on a Ray cluster; storing is `base`'s (library, hooks, batch size)."""

    def __init__(self, base: Ingestor, settings: Settings, address: str) -> None:
        check_cluster_store(settings)
        self.settings = settings
        self.address = address
        self.reports = ClusterReports(base.pipeline)
        self.ingestor = Ingestor(base.library, self.reports, base.fetcher, base.batch_size, base.after_commit)
        self.batch_size = base.batch_size
        self.analysis = RayAnalysis(settings, base.batch_size, self.reports.versions())
        self._ray: ModuleType | None = None
        self._connected = False

    def ingest(self, workspace: int, items: Sequence[IngestItem]) -> Generator[list[ItemOutcome]]:
        """The outcomes of each batch once it has committed, batches in input order. Connects on first
        use; closing the iterator (Ctrl-C) stops the cluster work and disconnects."""
        ray, connected = _connect(self.address)
        try:
            it = iter(items)
            while chunk := list(islice(it, self.settings.cluster.chunk_images)):
                yield from self._round(ray, workspace, chunk)
        finally:
            self.reports.reports.clear()
            if connected:
                ray.shutdown()

    def _round(self, ray: ModuleType, workspace: int, chunk: list[IngestItem]) -> Iterator[list[ItemOutcome]]:
        loaded = [self._load(item) for item in chunk]
        digests = {sha for _, sha in loaded if sha is not None}
        with self.ingestor.library.database.session() as session:
            known = repo.images_by_sha(session, workspace, sorted(digests))
        fresh = _new_contents(loaded, known)
        size = self.batch_size
        batches = [loaded[i : i + size] for i in range(0, len(loaded), size)]
        needed = [{sha for _, sha in batch if sha in fresh} for batch in batches]
        done = 0
        self.reports.reports.clear()
        for sha, report in self.analysis.analyse_all(ray, fresh):
            self.reports.reports[sha] = report
            while done < len(batches) and needed[done] <= self.reports.reports.keys():
                yield self._store(workspace, chunk, batches[done], done * size)
                done += 1
        for index in range(done, len(batches)):  # all arrived (or failed: stored as failures)
            yield self._store(workspace, chunk, batches[index], index * size)

    def process_batch(
        self, workspace: int, items: Sequence[IngestItem], on_commit: BatchHook | None = None
    ) -> list[ItemOutcome]:
        """`Ingestor.process_batch` with the analysis on the cluster: batch jobs (`/v1/batches`) on a replica
        with FEEDLENS_RAY_ADDRESS. One transaction, `on_commit` in it, as there. Stays connected until
        `close()` (the job worker calls it once per chunk it claims)."""
        loaded = [self._load(item) for item in items]
        digests = sorted({sha for _, sha in loaded if sha is not None})
        with self.ingestor.library.database.session() as session:
            known = repo.images_by_sha(session, workspace, digests)
        fresh = _new_contents(loaded, known)
        self.reports.reports = {}
        if fresh:
            if self._ray is None:
                self._ray, self._connected = _connect(self.address)
            self.reports.reports = dict(self.analysis.analyse_all(self._ray, fresh))
        log.info("%d images of a batch job analysed on the Ray cluster at %s", len(fresh), self.address)
        try:
            return self.ingestor.process_batch(workspace, [item for item, _ in loaded], on_commit=on_commit)
        finally:
            self.reports.reports = {}

    def close(self) -> None:
        """Disconnect from the cluster if `process_batch` connected."""
        if self._ray is not None and self._connected:
            self._ray.shutdown()
        self._ray, self._connected = None, False

    def _store(
        self, workspace: int, chunk: list[IngestItem], batch: list[tuple[IngestItem, str | None]], start: int
    ) -> list[ItemOutcome]:
        outcomes = self.ingestor.process_batch(workspace, [item for item, _ in batch])
        # report the caller's own items (without the bytes read for the cluster)
        return [replace(o, item=chunk[start + k]) for k, o in enumerate(outcomes)]

    def _load(self, item: IngestItem) -> tuple[IngestItem, str | None]:
        """The item with its bytes read (and their SHA-256), or unchanged when it cannot be read: then
        `process_batch` reads it again and reports its error as local ingest does."""
        decoder, fetcher = self.ingestor.decoder, self.ingestor.fetcher
        try:
            if item.error is not None:
                return item, None
            if item.data is not None:
                data = decoder.read(item.data)
            elif item.path is not None:
                data = decoder.read(item.path)
            elif item.url is not None:
                data = decoder.read(fetcher.fetch(item.url).data)
            else:
                return item, None
        except FeedlensError:
            return item, None
        return replace(item, data=data), hashlib.sha256(data).hexdigest()


class RayAnalysis:
    """Contents in, (SHA-256, report) out, on the cluster: a Ray Data actor pool per call (models load
    once per actor and call). `names`: run only these analyzers (reanalysis); None: the ingest pipeline."""

    def __init__(
        self, settings: Settings, batch_size: int, versions: dict[str, str], names: list[str] | None = None
    ) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self.versions = versions
        self.names = names

    def analyse_all(
        self, ray: ModuleType, fresh: dict[str, tuple[str, bytes]]
    ) -> Iterator[tuple[str, ImageReport]]:
        """(SHA-256, report) of each new content. When the cluster loses work (a node died with actors or
        results on it), the contents whose reports have not come back are sent again, to the nodes still
        alive, up to RESENDS times; what came back is kept, and stored batches stay stored."""
        left = dict(fresh)
        for attempt in range(RESENDS + 1):
            try:
                for sha, report in self._analyse(ray, left):
                    left.pop(sha, None)
                    yield sha, report
                return
            except ClusterError as exc:
                if attempt == RESENDS or not _lost_work(ray, exc):
                    raise
                log.warning("the cluster lost work (%s); sending %d images again", exc, len(left))

    def _analyse(
        self, ray: ModuleType, fresh: dict[str, tuple[str, bytes]]
    ) -> Iterator[tuple[str, ImageReport]]:
        """(SHA-256, report) of each new content as the actors finish it (any order)."""
        if not fresh:
            return
        size = self.batch_size
        blocks = math.ceil(len(fresh) / size)
        cpus = self.settings.cluster.cpus_per_actor
        actors = self.settings.cluster.actors or max(1, int(ray.cluster_resources().get("CPU", 1) // cpus))
        rows = [{"name": name, "sha256": sha, "data": data} for sha, (name, data) in fresh.items()]
        dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            AnalyzeActor,
            fn_constructor_kwargs={"settings": actor_settings(self.settings), "names": self.names},
            batch_size=size,
            compute=ray.data.ActorPoolStrategy(size=min(actors, blocks)),  # more would only load models
            num_cpus=cpus,
        )
        try:
            for row in dataset.iter_rows():
                yield str(row["sha256"]), report_from_row(row, self.versions)
        except FeedlensError:
            raise
        except Exception as exc:  # Ray's own errors (an actor that cannot load its models, a lost node)
            log.exception("the cluster failed while analysing")
            raise ClusterError(f"the Ray cluster failed while analysing: {_first_line(exc)}") from exc


def _new_contents(
    loaded: Sequence[tuple[IngestItem, str | None]], known: Mapping[str, Any]
) -> dict[str, tuple[str, bytes]]:
    """SHA-256 -> (name, bytes) of the contents not stored yet: each once, under its first item's name."""
    fresh: dict[str, tuple[str, bytes]] = {}
    for item, sha in loaded:
        if sha is not None and sha not in known and sha not in fresh and item.data is not None:
            fresh[sha] = (item.source, item.data)
    return fresh


def _lost_work(ray: ModuleType, exc: BaseException) -> bool:
    """Whether Ray failed because workers, actors or results were lost (a node died), which sending the work
    again mends; not because the analysis itself failed (an actor that cannot load its models)."""
    lost = (
        ray.exceptions.RayActorError,
        ray.exceptions.ObjectLostError,
        ray.exceptions.NodeDiedError,
        ray.exceptions.WorkerCrashedError,
    )
    cause: BaseException | None = exc
    for _ in range(20):  # a chain of causes, which in rare cases loops
        if cause is None:
            return False
        if isinstance(cause, lost):
            return not (isinstance(cause, ray.exceptions.RayActorError) and cause.actor_init_failed)
        if isinstance(cause, ray.exceptions.RayTaskError) and cause.cause is not None:
            cause = cause.cause
        else:
            cause = cause.__cause__ or cause.__context__
    return False


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _check_reachable(address: str) -> None:
    """Fail fast on a host:port nobody listens on (Ray itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return  # `auto`, `local`, ray://...: Ray resolves these itself
    try:
        socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {exc}") from exc


def _connect(address: str) -> tuple[ModuleType, bool]:
    """Ray, connected to the cluster at `address`; True when this call connected (and so disconnects)."""
    _check_reachable(address)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    # Ray's C++ core logs to this terminal (e.g. a note on every actor pool); failures still raise
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ConfigError("--ray needs Ray: pip install 'feedlens[cluster]'") from exc
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the CLI shows its own progress
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # e.g. "progress bars disabled"
    if ray.is_initialized():
        return ray, False
    try:
        # the nodes' logs stay on the nodes and Ray's own warnings in its log folder: printed here they
        # would break the progress line (failures still raise)
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot join the Ray cluster at {address}: {_first_line(exc)}") from exc
    return ray, True
