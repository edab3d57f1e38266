"""A round whose cluster lost work (services/cluster/ray_ingest.py `RayAnalysis.analyse_all`): what did not
come back is sent again, once per loss, and only for Ray's lost-node errors. Ray's exception types, no
cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from feedlens.core.results.base import ImageReport
from feedlens.services.cluster import ray_ingest
from feedlens.services.cluster.ray_ingest import ClusterError, RayAnalysis

ray = pytest.importorskip("ray", reason="the `cluster` extra is not installed")


class Flaky(RayAnalysis):
    """`_analyse` answers one content per call, then fails with `error` until `failures` are spent."""

    def __init__(self, error: BaseException, failures: int) -> None:  # no database, no cluster
        self.error, self.failures = error, failures
        self.sent: list[list[str]] = []

    def _analyse(self, ray: object, fresh: dict[str, tuple[str, bytes]]) -> Iterator[tuple[str, ImageReport]]:
        self.sent.append(sorted(fresh))
        for sha, (name, _) in sorted(fresh.items()):
            yield sha, ImageReport(path=name)
            if self.failures:
                self.failures -= 1
                raise ClusterError("the Ray cluster failed while analysing") from self.error


def _fresh(n: int) -> dict[str, tuple[str, bytes]]:
    return {f"{k:02d}": (f"{k}.jpg", b"") for k in range(n)}


def test_lost_work_is_sent_again_until_every_report_came_back() -> None:
    lost_node = ray.exceptions.ActorDiedError()
    flaky = Flaky(lost_node, failures=2)
    got = [sha for sha, _ in flaky.analyse_all(ray, _fresh(4))]
    assert sorted(got) == ["00", "01", "02", "03"]  # each once
    assert flaky.sent == [["00", "01", "02", "03"], ["01", "02", "03"], ["02", "03"]]


def test_gives_up_after_resends_and_on_other_errors() -> None:
    endless = Flaky(ray.exceptions.ObjectLostError("ab" * 20, None, ""), failures=100)
    with pytest.raises(ClusterError):
        list(endless.analyse_all(ray, _fresh(10)))
    assert len(endless.sent) == ray_ingest.RESENDS + 1
    broken = Flaky(ValueError("a bug in the analysis"), failures=100)
    with pytest.raises(ClusterError):
        list(broken.analyse_all(ray, _fresh(10)))
    assert len(broken.sent) == 1
