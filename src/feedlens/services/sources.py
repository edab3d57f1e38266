"""What to ingest: image files, folders (recursively) and feed exports, as ingest items in input order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from feedlens.services.feeds import FeedError, feed_format, read_feed, resolve_image
from feedlens.services.ingest import IngestItem
from feedlens.services.pipeline import iter_image_files


def items_from_paths(paths: Iterable[Path]) -> Iterator[IngestItem]:
    """Ingest items for image files, folders (recursively; feed files inside are skipped) and feed
    exports (.jsonl/.csv): one item per post image, and one failed item per bad feed row."""
    for path in paths:
        if path.is_file() and feed_format(path) is not None:
            yield from _feed_items(path)
            continue
        for file in iter_image_files([path]):
            if feed_format(file) is None:
                yield IngestItem(source=str(file), path=file)


def _feed_items(feed: Path) -> Iterator[IngestItem]:
    for row in read_feed(feed):
        where = f"{feed}:{row.line}"
        if row.record is None:
            error = row.error.to_dict() if row.error else {"code": "feed_invalid_record"}
            yield IngestItem(source=where, error=error)
            continue
        for position, ref in enumerate(row.record.images):
            try:
                target = resolve_image(ref, feed.parent)
            except FeedError as exc:
                yield IngestItem(source=where, error=exc.to_dict())
                continue
            if isinstance(target, Path):
                yield IngestItem(source=str(target), path=target, post=row.record, position=position)
            else:
                yield IngestItem(source=target, url=target, post=row.record, position=position)
