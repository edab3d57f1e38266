"""What an ingest did, in words: images and posts counted apart, and the failures named.

An ingest item is one image reference: a file of a folder, or an image of a post. The same photo is often
both (a folder and the feed that posts it), so items are not images: images are counted once each, by the
id they are stored under, and "already stored" means stored before this run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from feedlens.services.ingest import ItemOutcome

NAMED_FAILURES = 5  # failures named in the summary line; the rest are counted


@dataclass
class IngestTally:
    items: int = 0
    added: dict[str, None] = field(default_factory=dict)  # image ids stored by this run (ordered set)
    known: dict[str, None] = field(default_factory=dict)  # image ids that were stored before it
    image_failures: list[ItemOutcome] = field(default_factory=list)
    posts: dict[tuple[str, str], str] = field(default_factory=dict)  # (platform, id) -> added | updated
    post_failures: list[ItemOutcome] = field(default_factory=list)  # feed rows that name no usable post
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, outcome: ItemOutcome) -> None:
        with self._lock:  # counted by the worker, read by Ctrl-C's message on the main thread
            self.items += 1
            item = outcome.item
            if outcome.status == "failed":
                is_row = item.path is None and item.url is None and item.data is None
                (self.post_failures if is_row else self.image_failures).append(outcome)
            elif outcome.image_id is not None:
                if outcome.status == "added":
                    self.added[outcome.image_id] = None
                elif outcome.image_id not in self.added:
                    self.known[outcome.image_id] = None
            if item.post is not None and outcome.post is not None:
                key = (item.post.platform, item.post.id)
                if self.posts.get(key) != "added":  # a post of several images is added once
                    self.posts[key] = outcome.post

    @property
    def failures(self) -> list[ItemOutcome]:
        return [*self.image_failures, *self.post_failures]

    def summary(self) -> str:
        """`images: 10 added, 0 already stored, 2 failed (x.jpg: truncated, ...); posts: 11 added`."""
        with self._lock:
            images = (
                f"images: {len(self.added)} added, {len(self.known)} already stored, "
                f"{len(self.image_failures)} failed{_named(self.image_failures)}"
            )
            if not self.posts and not self.post_failures:
                return images
            new = sum(status == "added" for status in self.posts.values())
            posts = f"posts: {new} added, {len(self.posts) - new} already stored"
            if self.post_failures:
                posts += f", {len(self.post_failures)} failed{_named(self.post_failures)}"
            return f"{images}; {posts}"


def _named(failures: list[ItemOutcome]) -> str:
    """` (x.jpg: truncated, feed.jsonl:4: feed_invalid_json and 3 more)`, or nothing."""
    if not failures:
        return ""
    named = [
        f"{Path(f.item.source).name or f.item.source}: {(f.error or {}).get('code', 'failed')}"
        for f in failures[:NAMED_FAILURES]
    ]
    more = len(failures) - NAMED_FAILURES
    return f" ({', '.join(named)}{f' and {more} more' if more > 0 else ''})"
