"""Social-feed exports (JSONL or CSV): the post schema (`records`) and the streaming readers (`readers`).

Documented in docs/feeds.md.
"""

from feedlens.services.feeds.readers import FeedRow, feed_format, read_feed, resolve_image
from feedlens.services.feeds.records import (
    FIELD_KEYS,
    FeedError,
    FeedErrorCode,
    FeedFormat,
    FeedRowError,
    PostRecord,
    caption_hashtags,
    check_image_ref,
)

__all__ = [
    "FIELD_KEYS",
    "FeedError",
    "FeedErrorCode",
    "FeedFormat",
    "FeedRow",
    "FeedRowError",
    "PostRecord",
    "caption_hashtags",
    "check_image_ref",
    "feed_format",
    "read_feed",
    "resolve_image",
]
