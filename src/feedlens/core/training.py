"""Names shared by the training service, the API and the CLI (pure values: no torch, no sklearn)."""

from __future__ import annotations

WORKSPACE = "workspace"  # the dataset source meaning "this workspace's labels"
