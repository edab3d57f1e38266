"""Run a set of analyzers over many images: one safe decode per image, batched inference, per-item errors."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.core.errors import ImageError, ModelStoreError
from feedlens.core.results import ImageReport
from feedlens.images import DecodedImage, ImageDecoder

log = logging.getLogger(__name__)

ANALYZER_FAILED = "analyzer_failed"


def iter_image_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files under `paths` (folders recursively, sorted; hidden files and folders skipped)."""
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if not name.startswith("."):
                        yield Path(root) / name
        else:
            yield path


def _batched(items: Iterable[Path], size: int) -> Iterator[list[Path]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


@dataclass(frozen=True, slots=True)
class AnalysisFailure:
    """An analyzer raised on this image (after the one-by-one retry)."""

    message: str


@dataclass
class PipelineStats:
    images: int = 0
    failed: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> total wall time

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds


class Pipeline:
    """Decode once at the largest size any analyzer needs, then run each analyzer on the whole batch.

    `analyzers` must be ordered dependencies first (`Services.pipeline` does this). Results of
    `internal` analyzers feed their dependents and are reported only if named in `report`.
    """

    def __init__(
        self,
        decoder: ImageDecoder,
        analyzers: Sequence[Analyzer[Any, Any]],
        threads: int,
        report: Sequence[str] | None = None,
    ) -> None:
        self.decoder = decoder
        self.analyzers = list(analyzers)
        self.report = set(report) if report is not None else {a.name for a in analyzers if not a.internal}
        self.decode_size = max(a.decode_side() for a in self.analyzers)
        self.threads = threads
        self.stats = PipelineStats()

    def load(self) -> None:
        for analyzer in self.analyzers:
            analyzer.load()

    def analyze_paths(self, paths: Iterable[Path], batch_size: int) -> Iterator[ImageReport]:
        """Reports in input order, one per file; bad files become error reports, never exceptions. The
        decoded images are not kept on these reports (a long run would hold every one)."""
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="decode") as pool:
            batches = _batched(paths, batch_size)
            # the next batch decodes on the pool while this one is analysed (Pillow and ONNX Runtime both
            # release the GIL): decoding costs as much as a model on camera JPEGs
            ahead = self._decode_ahead(next(batches, None), pool)
            while ahead is not None:
                names, pending = ahead
                ahead = self._decode_ahead(next(batches, None), pool)
                start = time.perf_counter()
                decoded = [future.result() for future in pending]
                self.stats.add("decode", time.perf_counter() - start)  # the wait not hidden by inference
                for report in self._analyze_decoded(names, decoded):
                    report.image = None
                    yield report

    def analyze_sources(
        self,
        names: Sequence[str],
        sources: Sequence[bytes | Path],
        digests: Sequence[str | None] | None = None,
    ) -> list[ImageReport]:
        """One batch of already-read images (or files), reported in order. `digests`: the SHA-256 of
        each source where the caller already computed it (not hashed again)."""
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="decode") as pool:
            return self._analyze_batch(list(names), sources, pool, digests)

    def versions(self) -> dict[str, str]:
        """Analyzer name -> version of its code and models, for every analyzer this pipeline reports."""
        return {a.name: a.version for a in self.analyzers if a.name in self.report}

    def analyze_one(self, source: bytes | Path, name: str = "") -> ImageReport:
        with ThreadPoolExecutor(max_workers=1) as pool:
            return self._analyze_batch([name or str(source)], [source], pool)[0]

    def _decode(self, source: bytes | Path, digest: str | None = None) -> DecodedImage | ImageError:
        try:
            return self.decoder.decode(source, min_side=self.decode_size, sha256=digest)
        except ImageError as exc:
            return exc

    def _analyze_batch(
        self,
        names: list[str],
        sources: Sequence[bytes | Path],
        pool: ThreadPoolExecutor,
        digests: Sequence[str | None] | None = None,
    ) -> list[ImageReport]:
        start = time.perf_counter()
        known = list(digests) if digests is not None else [None] * len(sources)
        decoded = list(pool.map(self._decode, sources, known))  # Pillow releases the GIL while decoding
        self.stats.add("decode", time.perf_counter() - start)
        return self._analyze_decoded(names, decoded)

    def _decode_ahead(
        self, batch: list[Path] | None, pool: ThreadPoolExecutor
    ) -> tuple[list[str], list[Future[DecodedImage | ImageError]]] | None:
        """Start decoding `batch` on the pool; (names, futures), or None past the last batch."""
        if batch is None:
            return None
        return [str(p) for p in batch], [pool.submit(self._decode, path) for path in batch]

    def _analyze_decoded(
        self, names: Sequence[str], decoded: Sequence[DecodedImage | ImageError]
    ) -> list[ImageReport]:
        reports: list[ImageReport] = []
        good: list[tuple[ImageReport, DecodedImage]] = []
        for name, item in zip(names, decoded, strict=True):
            if isinstance(item, ImageError):
                reports.append(ImageReport(path=name, error=item.to_dict()))
                continue
            report = ImageReport(
                path=name,
                sha256=item.sha256,
                width=item.width,
                height=item.height,
                format=item.format,
                image=item.image,
            )
            reports.append(report)
            good.append((report, item))
        outcomes = self.analyze_images([d.image for _, d in good])
        for (report, _), outcome in zip(good, outcomes, strict=True):
            if isinstance(outcome, AnalysisFailure):
                report.error = {"code": ANALYZER_FAILED, "message": outcome.message}
            else:
                report.results = {name: r for name, r in outcome.items() if name in self.report}
        self.stats.images += len(reports)
        self.stats.failed += sum(1 for r in reports if not r.ok)
        return reports

    def analyze_images(self, images: Sequence[Image.Image]) -> list[dict[str, Any] | AnalysisFailure]:
        """Run every analyzer (dependencies first) over decoded images.

        Per image: every analyzer's result by name (internal stages included), or the first failure; an
        image whose analyzer failed is not passed to later analyzers.
        """
        results: dict[str, dict[int, Any]] = {}  # analyzer -> image index -> result
        failures: dict[int, AnalysisFailure] = {}
        for analyzer in self.analyzers:
            alive = [i for i in range(len(images)) if i not in failures]
            if not alive:
                break
            upstream = {d: [results[d][i] for i in alive] for d in analyzer.upstream_names if d in results}
            start = time.perf_counter()
            outputs = self._run_isolated(analyzer, [images[i] for i in alive], upstream)
            self.stats.add(analyzer.name, time.perf_counter() - start)
            for i, result in zip(alive, outputs, strict=True):
                if isinstance(result, Exception):
                    failures[i] = AnalysisFailure(f"{analyzer.name}: {result}")
                else:
                    results.setdefault(analyzer.name, {})[i] = result
        return [
            failures[i] if i in failures else {name: per[i] for name, per in results.items()}
            for i in range(len(images))
        ]

    @staticmethod
    def _run_isolated(analyzer: Analyzer[Any, Any], images: list[Any], upstream: Upstream) -> list[Any]:
        """Run on the batch; if it fails, retry one image at a time so one bad image cannot sink the rest."""
        try:
            return analyzer(images, upstream)
        except ModelStoreError:
            raise  # configuration, not input: every image would fail the same way
        except Exception:
            log.exception("%s failed on a batch of %d; retrying one by one", analyzer.name, len(images))
        out: list[Any] = []
        for k, image in enumerate(images):
            try:
                out.extend(analyzer([image], {d: [v[k]] for d, v in upstream.items()}))
            except ModelStoreError:
                raise
            except Exception as exc:
                out.append(exc)
        return out
