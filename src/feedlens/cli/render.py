"""Output of `feedlens analyze`: a table, JSON or JSON Lines, a progress bar and a failure summary."""

from __future__ import annotations

import json
from collections import Counter
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from feedlens.cli.tables import Col, print_table
from feedlens.core.results import FacesResult, ImageReport, LabelsResult
from feedlens.core.results.categories import CategoriesResult
from feedlens.core.results.properties import PropertiesResult
from feedlens.core.results.safety import SafetyResult
from feedlens.core.results.text import TextResult

if TYPE_CHECKING:
    from feedlens.services.pipeline import PipelineStats


def number(value: Any, digits: int = 3) -> str:
    """A table cell for a number that may be missing: "-" for None, floats to `digits` places."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    JSONL = "jsonl"


def summarise_other(report: ImageReport) -> str:
    """One cell summarising the other analyzers: safety, faces, text, colours."""
    parts = []
    results = report.results
    if isinstance(safety := results.get("safety"), SafetyResult):
        parts.append(safety.verdict.value)
    if isinstance(faces := results.get("faces"), FacesResult) and faces.count:
        summary = faces.emotion_summary
        mood = f" {summary.dominant} ({summary.sentiment})" if summary is not None else ""
        parts.append(f"{faces.count} face{'s' if faces.count > 1 else ''}{mood}")
    if isinstance(text := results.get("text"), TextResult) and text.full_text:
        snippet = " ".join(text.full_text.split())
        parts.append(f"text: {snippet[:40]}{'…' if len(snippet) > 40 else ''}")
    if isinstance(props := results.get("properties"), PropertiesResult):
        names = list(dict.fromkeys(c.name for c in props.colours))[:3]
        parts.append("/".join(names) + (", blurry" if props.blurry else ""))
    return " · ".join(parts)


def _summarise(report: ImageReport) -> str:
    """The labels cell: the first few labels in display order, with their scores."""
    labels = report.results.get("labels")
    if not isinstance(labels, LabelsResult):
        return ""
    return ", ".join(f"{lab.name} {lab.score:.2f}" for lab in labels.labels[:4])


def _categories(report: ImageReport) -> str:
    """The assigned categories with their scores; `other` alone when none fits."""
    result = report.results.get("categories")
    if not isinstance(result, CategoriesResult):
        return ""
    scores = {c.name: c.score for c in result.categories}
    return ", ".join(f"{n} {scores[n]:.2f}" if n in scores else n for n in result.assigned)


class ReportWriter:
    """Streams JSON Lines as reports arrive; collects rows for the table and the JSON array."""

    def __init__(self, fmt: OutputFormat, out: Console, err: Console) -> None:
        self.fmt = fmt
        self.out = out
        self.err = err
        self.reports: list[ImageReport] = []

    def add(self, report: ImageReport) -> None:
        self.reports.append(report)
        if self.fmt is OutputFormat.JSONL:
            self.out.file.write(json.dumps(report.to_dict()) + "\n")
            self.out.file.flush()

    def finish(self, stats: PipelineStats) -> None:
        if self.fmt is OutputFormat.JSON:
            self.out.file.write(json.dumps([r.to_dict() for r in self.reports], indent=2) + "\n")
        elif self.fmt is OutputFormat.TABLE:
            self._table()
        self._summary(stats)

    def _table(self) -> None:
        """One line per image; on a narrow terminal `other`, then `size` go, and long cells are cut."""
        with_categories = any(isinstance(r.results.get("categories"), CategoriesResult) for r in self.reports)
        columns = [
            Col("image", flex=True, cut_start=True, min_width=18),
            Col("size", drop=3),
            *([Col("categories", flex=True, min_width=20, drop=1)] if with_categories else []),
            Col("labels", flex=True, min_width=30),
            Col("safety · faces · text · colours", flex=True, min_width=24, drop=4),
        ]
        rows = []
        for report in self.reports:
            gap = [""] * (1 if with_categories else 0)
            if report.error is not None:  # the error reads under `labels`
                error = [f"[red]{report.error['code']}[/]", escape(report.error["message"][:80])]
                rows.append([escape(report.path), "", *gap, *error])
                continue
            cats = [escape(_categories(report))] if with_categories else []
            size = f"{report.width}x{report.height}"
            rows.append(
                [
                    escape(report.path),
                    size,
                    *cats,
                    escape(_summarise(report)),
                    escape(summarise_other(report)),
                ]
            )
        print_table(columns, rows, self.out)

    def _summary(self, stats: PipelineStats) -> None:
        failed = [r for r in self.reports if r.error is not None]
        analysed = len(self.reports) - len(failed)
        timing = ", ".join(f"{stage} {seconds:.2f}s" for stage, seconds in stats.seconds.items())
        self.err.print(f"{analysed} analysed, {len(failed)} failed ({timing})", highlight=False)
        if failed:
            codes = Counter(r.error["code"] for r in failed if r.error is not None)
            self.err.print("failures: " + ", ".join(f"{c} x{n}" for c, n in codes.most_common()))
