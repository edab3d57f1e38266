"""Categorising images analysed in memory (`feedlens analyze`): no workspace, no database, so zero-shot
with the default taxonomy or one from a file, and one caption standing for every image's post.

The run itself plays the workspace: scores are read against the running statistics of every image
categorised so far in this run (normalise.py), shrunk towards the taxonomy's prior, so one image alone is
read against the prior and a folder of images against itself, as it grows (the first batch of a run is
read against less than the last)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from feedlens.core.results import ImageReport
from feedlens.core.results.categories import CategoriesResult
from feedlens.core.results.embedding import EmbeddingResult
from feedlens.core.results.text import TextResult
from feedlens.core.taxonomy import Taxonomy
from feedlens.services.categories.categoriser import Categoriser
from feedlens.services.categories.fusion import COMPONENTS
from feedlens.services.categories.normalise import Moments
from feedlens.services.categories.taxonomies import TaxonomyCompiler, default_taxonomy
from feedlens.services.categories.zero_shot import Evidence


class ReportCategoriser:
    """Adds a `categories` result to analysed reports. The taxonomy is compiled at construction, so an
    unknown concept fails before any image is analysed."""

    def __init__(
        self,
        compiler: TaxonomyCompiler,
        taxonomy: Taxonomy | None = None,
        caption: str = "",
        threshold: float | None = None,
    ) -> None:
        self.compiler = compiler
        # version 0: this taxonomy was never stored in a workspace
        self.categoriser = Categoriser(compiler.compile(taxonomy or default_taxonomy(), 0), threshold)
        self.caption = caption
        self.moments = Moments.empty(len(COMPONENTS), len(self.categoriser.compiled.names))

    def add(self, reports: Sequence[ImageReport]) -> None:
        """Adds a `categories` result to each report that has `labels` (one encoder call per batch)."""
        usable, evidence = report_evidence(self.compiler, reports, [self.caption] * len(reports))
        computed = self.categoriser.features(evidence)
        self.moments = self.moments + Moments.of(computed[1])
        categoriser = replace(self.categoriser, moments=self.moments)
        for i, result in zip(usable, categoriser.categorise(evidence, computed), strict=True):
            reports[i].results["categories"] = result


def categorise_reports(
    compiler: TaxonomyCompiler,
    categoriser: Categoriser,
    reports: Sequence[ImageReport],
    captions: Sequence[str] | None = None,
) -> list[CategoriesResult | None]:
    """Categories of images analysed in memory, read against each other (None for failed reports or ones
    without `labels`)."""
    usable, evidence = report_evidence(compiler, reports, captions)
    out: list[CategoriesResult | None] = [None] * len(reports)
    for i, result in zip(usable, categoriser.categorise(evidence), strict=True):
        out[i] = result
    return out


def report_evidence(
    compiler: TaxonomyCompiler, reports: Sequence[ImageReport], captions: Sequence[str] | None = None
) -> tuple[list[int], list[Evidence]]:
    """The positions of the reports that can be categorised (ok, with `labels`) and their evidence."""
    captions = list(captions) if captions is not None else [""] * len(reports)
    usable = [i for i, r in enumerate(reports) if r.ok and "labels" in r.results]
    texts = [_full_text(reports[i].results.get("text")) for i in usable]
    text_vectors = compiler.encode(texts)
    caption_vectors = compiler.encode([captions[i] for i in usable])
    evidence = []
    for k, i in enumerate(usable):
        results = reports[i].results
        embedding = reports[i].results.get("embedding")
        vectors = embedding if isinstance(embedding, EmbeddingResult) else None
        evidence.append(
            Evidence.from_results(
                results,
                content=vectors.content if vectors else None,
                visual=vectors.visual if vectors else None,
                caption=captions[i],
                text_vector=text_vectors[k],
                caption_vector=caption_vectors[k],
            )
        )
    return usable, evidence


def _full_text(result: object) -> str:
    return result.full_text if isinstance(result, TextResult) else ""
