"""Fonts for rendering text in tests: matplotlib's own copy of DejaVu (a pinned dev dependency), so tests do
not depend on a Debian fonts package."""

from __future__ import annotations

from pathlib import Path

import matplotlib

DEJAVU_BOLD = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf")
