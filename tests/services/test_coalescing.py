"""CoalescingIngestor: concurrent single-image requests share batches (logic, with a recording ingestor)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from feedlens.services.coalescing import CoalescingIngestor
from feedlens.services.ingest import IngestItem, ItemOutcome


class Recording:
    """Stands in for Ingestor: records each batch and answers one outcome per item."""

    def __init__(self, batch_size: int, fail: bool = False) -> None:
        self.batch_size = batch_size
        self.fail = fail
        self.batches: list[tuple[int, list[str]]] = []

    def process_batch(
        self, workspace: int, batch: Sequence[IngestItem], on_commit: Any = None
    ) -> list[ItemOutcome]:
        if self.fail:
            raise RuntimeError("database unreachable")
        self.batches.append((workspace, [i.source for i in batch]))
        return [ItemOutcome(i, "added", image_id=f"id-{i.source}") for i in batch]


def test_waiting_requests_share_one_batch_and_later_drains_are_empty() -> None:
    ingestor = Recording(batch_size=16)
    coalescer = CoalescingIngestor(ingestor)  # type: ignore[arg-type]
    futures = [coalescer.submit(1, IngestItem(source=f"img{n}", data=b"x")) for n in range(3)]
    assert coalescer.drain() == 3
    assert [coalescer.drain() for _ in range(2)] == [0, 0]  # the other requests' drains find nothing
    assert ingestor.batches == [(1, ["img0", "img1", "img2"])]
    assert [f.result().image_id for f in futures] == ["id-img0", "id-img1", "id-img2"]


def test_batches_are_capped_and_split_by_workspace() -> None:
    ingestor = Recording(batch_size=2)
    coalescer = CoalescingIngestor(ingestor)  # type: ignore[arg-type]
    futures = [
        coalescer.submit(ws, IngestItem(source=f"{ws}-{n}", data=b"x")) for n, ws in enumerate([1, 2, 1])
    ]
    assert coalescer.drain() == 2 and coalescer.drain() == 1
    assert ingestor.batches == [(1, ["1-0"]), (2, ["2-1"]), (1, ["1-2"])]
    assert all(f.done() for f in futures)


def test_a_failing_batch_fails_every_waiting_request() -> None:
    coalescer = CoalescingIngestor(Recording(batch_size=4, fail=True))  # type: ignore[arg-type]
    futures = [coalescer.submit(1, IngestItem(source=str(n), data=b"x")) for n in range(2)]
    coalescer.drain()
    for future in futures:
        with pytest.raises(RuntimeError, match="database unreachable"):
            future.result()
