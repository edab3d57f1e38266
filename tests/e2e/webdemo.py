"""The library the web app's tests run against, stored in a module's workspaces on a real `feedlens serve`
(tests/e2e/conftest.py `demo`): the sample photos, some with posts, a near duplicate, a meme with text and
a photo showing a registered brand's logo."""

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

from tests.e2e.server import Server, Team
from tests.support.api import auth
from tests.support.images import meme
from tests.support.logos import composite, logo, png
from tests.support.search_set import chelsea_copies

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
    team: Team  # team.a holds the library, team.b one image and post
    keys: dict[str, str]
    ids: dict[str, str]  # team.a: sample name -> image id
    foreign: str  # team.b's image id

    @contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.server.data_dir / "feedlens.db")
        try:
            yield connection
        finally:
            connection.close()


def load_demo(server: Server, keys: dict[str, str], team: Team, sample_dir: Path, chelsea: PILImage) -> Demo:
    """Team.a: a brand with a logo; the sample photos (some with posts), a mirrored chelsea (a near
    duplicate), a meme (text) and a photo showing the logo. Team.b: one image and post. `keys`: the
    team's (tests/e2e/server.py team_keys)."""
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
        foreign = store("coffee.png", keys["other"], {"id": "b1", "author": "mallory", "caption": "#secret"})
    return Demo(server, team, keys, ids, foreign)
