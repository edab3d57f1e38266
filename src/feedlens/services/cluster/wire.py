"""Reports across the wire: an analysed image as one plain row of a Ray dataset, and back.

A row holds the report's JSON form (`ImageReport.to_dict()`, each result through its own `to_dict`) and
the embedding's two vectors as raw float32 bytes (their JSON form is only a summary). The driver rebuilds
typed results with each result type's `from_dict`, so what it stores is exactly what a local ingest
stores: `Library.save` calls `to_dict()` again on the rebuilt results.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from feedlens.core.errors import ConfigError
from feedlens.core.results.base import AnalyzerResult, ImageReport
from feedlens.core.results.embedding import EmbeddingResult
from feedlens.core.results.loading import RESULT_TYPES

EMBEDDING = "embedding"


class ClusterVersionError(ConfigError):
    """A node analysed with other code or models than this process stores under (mixed installs)."""

    code = "cluster_version_mismatch"


def report_row(report: ImageReport, versions: Mapping[str, str]) -> dict[str, Any]:
    """One analysed image as a row: str and bytes values only (Arrow-friendly). `versions`: the
    analyzer versions of the node's pipeline, checked by the driver."""
    embedding = report.results.get(EMBEDDING)
    visual = content = b""
    if isinstance(embedding, EmbeddingResult):
        visual = np.asarray(embedding.visual, dtype=np.float32).tobytes()
        content = np.asarray(embedding.content, dtype=np.float32).tobytes()
    return {
        "sha256": report.sha256 or "",
        "report": json.dumps(report.to_dict(), allow_nan=False),
        "visual": visual,
        "content": content,
        "versions": json.dumps(dict(versions), sort_keys=True),
    }


def report_from_row(row: Mapping[str, Any], versions: Mapping[str, str]) -> ImageReport:
    """The typed report of a row; ClusterVersionError when the node ran other analyzer versions than
    `versions` (this process's pipeline), whose results would be stored under the wrong version."""
    remote = json.loads(row["versions"])
    if remote != dict(versions):
        differ = sorted(k for k in {*remote, *versions} if remote.get(k) != versions.get(k))
        raise ClusterVersionError(
            f"a cluster node analysed with other analyzer versions ({', '.join(differ)}): install the same "
            "feedlens and models on every node and on this machine"
        )
    data = json.loads(row["report"])
    report = ImageReport(
        path=data["path"],
        sha256=data.get("sha256"),
        width=data.get("width"),
        height=data.get("height"),
        format=data.get("format"),
        error=data.get("error"),
    )
    if report.error is None:
        report.results = {
            name: _result(name, stored, row) for name, stored in data.get("results", {}).items()
        }
    return report


def _result(name: str, stored: Mapping[str, Any], row: Mapping[str, Any]) -> AnalyzerResult:
    if name == EMBEDDING:
        visual = np.frombuffer(bytes(row["visual"]), dtype=np.float32).copy()  # (1280,) or the CLIP width
        content = np.frombuffer(bytes(row["content"]), dtype=np.float32).copy()  # (384,) or the CLIP width
        return EmbeddingResult(visual=visual, content=content, parts=tuple(stored.get("parts", ())))
    result: AnalyzerResult = RESULT_TYPES[name].from_dict(stored)
    return result
