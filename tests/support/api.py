"""What an HTTP client of the end-to-end tests needs over and over: the bearer header, the problem+json
check, storing one image, and the name <-> id map of a stored library."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

PROBLEM = "application/problem+json"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def is_problem(response: httpx.Response, status: int, code: str) -> None:
    """An RFC 9457 problem answer with this status and feedlens error code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["detail"]


def store(client: httpx.Client, key: str, data: bytes, name: str, post: dict[str, Any] | None = None) -> str:
    """POST /v1/images (with the post's metadata when given); the stored or already stored image's id."""
    form = {"post": json.dumps(post)} if post else None
    response = client.post("/v1/images", headers=auth(key), files={"file": (name, data)}, data=form)
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


@dataclass
class Library:
    """A module's stored images: file name -> image id in its first workspace (`ids`) and its second."""

    ids: dict[str, str]
    b_ids: dict[str, str]

    def name(self, image_id: str) -> str:
        found = {v: k for k, v in self.ids.items()} | {v: f"b:{k}" for k, v in self.b_ids.items()}
        return found.get(image_id, image_id)

    def names(self, body: dict[str, Any]) -> list[str]:
        return [self.name(item["image_id"]) for item in body["items"]]
