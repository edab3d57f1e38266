"""The library the web app's tests run against: a real `feedlens serve` with the sample photos, some with
posts, a near duplicate, a meme with text and a photo showing a registered brand's logo."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL.Image import Image as PILImage

from tests.e2e.server import RELAXED_LIMITS, Server, team_keys
from tests.e2e.test_api import auth
from tests.services.test_categories import meme
from tests.services.test_search import chelsea_copies
from tests.support.logos import composite, logo, png

MIRROR = "cat_mirror.png"
MEME = "meme.png"  # black words on white: OCR text lines
LOGO = "composite.jpg"  # chelsea with the brand's logo pasted on, turned

# sample -> its post (the rest of the samples are ingested without one, as from a folder)
POSTS: dict[str, dict[str, Any]] = {
    "coffee.png": {"id": "c1", "platform": "instagram", "author": "alice", "caption": "my morning #latte",
                   "created_at": "2026-11-02T08:00:00Z", "likes": 120, "comments": 8, "shares": 3},
    "chelsea.png": {"id": "c2", "platform": "instagram", "author": "bob", "caption": "#caturday",
                    "created_at": "2026-11-02T18:00:00Z", "likes": 300, "comments": 20},
    "astronaut.png": {"id": "x1", "platform": "x", "author": "nasa", "caption": "suited up #space",
                      "created_at": "2026-11-03T12:00:00Z", "likes": 50, "shares": 10},
    "rocket.jpg": {"id": "x2", "platform": "x", "author": "nasa", "caption": "#space #launch",
                   "created_at": "2026-11-10T12:00:00Z", "likes": 80},
    "grace_hopper.jpg": {"id": "c3", "platform": "instagram", "author": "alice", "caption": "#history",
                         "created_at": "2026-11-10T09:00:00Z", "likes": 40, "comments": 2},
}  # fmt: skip


@dataclass
class Demo:
    server: Server
    keys: dict[str, str]
    ids: dict[str, str]  # team-a: sample name -> image id
    foreign: str  # team-b's image id

    @contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.server.data_dir / "feedlens.db")
        try:
            yield connection
        finally:
            connection.close()


def start_demo(
    data_dir: Path, sample_dir: Path, chelsea: PILImage, env: dict[str, str] | None = None
) -> Iterator[Demo]:
    """Team-a: a brand with a logo; the sample photos (some with posts), a mirrored chelsea (a near
    duplicate), a meme (text) and a photo showing the logo. Team-b: one image and post. `env`: more
    FEEDLENS_* settings for the server."""
    server = Server(data_dir, {**RELAXED_LIMITS, **(env or {})}).start()
    try:
        keys = team_keys(server)
        with httpx.Client(base_url=server.url, timeout=300) as client:
            r = client.post(
                "/v1/brands",
                headers=auth(keys["write"]),
                data={"name": "Brewly", "hashtags": ["latte"]},
                files=[("logos", ("brewly.png", png(logo()), "image/png"))],
                params={"rescan": "false"},
            )
            assert r.status_code == 200, r.text

            uploads = {p.name: p.read_bytes() for p in sample_dir.iterdir() if p.is_file()}
            uploads[MIRROR] = chelsea_copies(chelsea)[MIRROR]
            uploads[MEME] = meme()
            uploads[LOGO] = composite(sample_dir / "chelsea.png", logo())

            def store(name: str, key: str, post: dict[str, Any] | None) -> str:
                form = {"post": json.dumps(post)} if post else None
                files = {"file": (name, uploads[name])}
                response = client.post("/v1/images", headers=auth(key), files=files, data=form)
                assert response.status_code in (200, 201), response.text
                return str(response.json()["id"])

            names = sorted(uploads)
            with ThreadPoolExecutor(4) as pool:  # concurrent uploads share forward passes
                ids = dict(
                    zip(names, pool.map(lambda n: store(n, keys["write"], POSTS.get(n)), names), strict=True)
                )
            foreign = store(
                "coffee.png", keys["other"], {"id": "b1", "author": "mallory", "caption": "#secret"}
            )
        yield Demo(server, keys, ids, foreign)
    finally:
        server.stop()
