"""The endpoints behind the web app over HTTP, on a real `feedlens serve` (the e2e shared one, in this
module's workspaces; tests/e2e/webdemo.py): the session (login, cookie checks, CSRF, revocation, logout)
and the analytics numbers against SQL over the server's database. tests/services/test_analytics.py covers
the numbers on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from feedlens.api import session as sessions
from feedlens.services.access import AccessService, Scope
from feedlens.storage.database import Database
from tests.e2e.webdemo import Demo
from tests.support.api import auth, is_problem


# -- the session behind the app ----------------------------------------------------------------------------
def test_session_tokens_are_signed_and_expire() -> None:
    token, expires = sessions.issue(b"k" * 32, 7, now=1000, ttl=10)
    assert sessions.verify(b"k" * 32, token, now=1009) == (7, expires)
    assert sessions.verify(b"k" * 32, token, now=1010) is None  # expired
    assert sessions.verify(b"x" * 32, token, now=1000) is None  # another server's secret
    signature = token.split(".")[1]
    forged, _ = sessions.issue(b"attacker" * 4, 1, now=1000)
    assert sessions.verify(b"k" * 32, f"{forged.split('.')[0]}.{signature}", now=1000) is None
    assert sessions.verify(b"k" * 32, "garbage", now=1000) is None
    assert sessions.verify(b"k" * 32, f"{token.split('.')[0]}.\u00e9t\u00e9", now=1000) is None  # not a 500


def test_session_bad_inputs(demo: Demo) -> None:
    with httpx.Client(base_url=demo.server.url, timeout=60) as client:
        is_problem(client.post("/v1/session", json={"key": "fl_wrong"}), 401, "unauthorized")
        is_problem(client.post("/v1/session", json={"key": ""}), 422, "invalid_request")
        is_problem(client.post("/v1/session", json={"kee": "x"}), 422, "invalid_request")
        is_problem(client.post("/v1/session", content=b"key=x"), 422, "invalid_request")
        # a cross-site form can post text/plain, not JSON: a login CSRF cannot get through
        plain = {"content-type": "text/plain"}
        sent = client.post("/v1/session", content=f'{{"key": "{demo.keys["read"]}"}}', headers=plain)
        is_problem(sent, 422, "invalid_request")
        assert sessions.COOKIE not in sent.cookies
        is_problem(client.get("/v1/images"), 401, "unauthorized")
        login = client.post("/v1/session", json={"key": demo.keys["write"]})
        assert login.status_code == 200 and login.json()["workspace"] == demo.team.a
        flags = login.headers["set-cookie"].lower()
        assert "httponly" in flags and "samesite=strict" in flags
        token = client.cookies[sessions.COOKIE]
        assert client.get("/v1/images").status_code == 200
        image = demo.ids["chelsea.png"]
        # writes with the cookie need the CSRF header; reads do not
        is_problem(client.post(f"/v1/search/similar?image_id={image}"), 403, "csrf_missing")
        is_problem(client.delete(f"/v1/images/{image}"), 403, "csrf_missing")
        assert client.get(f"/v1/images/{image}").status_code == 200  # still there
        csrf = {sessions.CSRF_HEADER: "1"}
        assert client.post(f"/v1/search/similar?image_id={image}", headers=csrf).status_code == 200
        # forged, tampered and foreign cookies
        body, signature = token.split(".")
        for bad in (f"{body}.{signature[:-2]}AA", f"{body}x.{signature}", "x.y", "nonsense"):
            client.cookies.clear()  # one cookie of that name, not the login's and this one
            client.cookies.set(sessions.COOKIE, bad)
            is_problem(client.get("/v1/images"), 401, "unauthorized")
        client.cookies.clear()
        latin1 = f"{sessions.COOKIE}={body}.\u00e9t\u00e9".encode("latin-1")  # raw bytes a browser won't send
        is_problem(client.get("/v1/images", headers={"cookie": latin1}), 401, "unauthorized")
        client.cookies.clear()
        assert client.post("/v1/session", json={"key": demo.keys["write"]}).status_code == 200
        # a header key wins over the cookie: team-b's key sees team-b
        assert client.get("/v1/session", headers=auth(demo.keys["other"])).json()["workspace"] == demo.team.b
        is_problem(client.delete("/v1/session"), 403, "csrf_missing")
        out = client.delete("/v1/session", headers=csrf)
        assert out.status_code == 204 and sessions.COOKIE not in client.cookies
        is_problem(client.get("/v1/images"), 401, "unauthorized")


def test_revoking_a_key_ends_its_sessions(demo: Demo) -> None:
    database = Database(demo.server.database_url)
    try:
        access = AccessService(database)
        secret, view = access.create_key(demo.team.a, Scope.READ, "short-lived")
        with httpx.Client(base_url=demo.server.url, timeout=60) as client:
            assert client.post("/v1/session", json={"key": secret}).status_code == 200
            assert client.get("/v1/session").status_code == 200
            access.revoke_key(demo.team.a, view["id"])
            is_problem(client.get("/v1/images"), 401, "unauthorized")
    finally:
        database.dispose()


# -- analytics endpoints against the database ---------------------------------------------------------------
DATED = """
    SELECT f.value, f.image_id, date(coalesce(pp.posted, i.created_at)) AS day
    FROM facets f JOIN images i ON i.id = f.image_id JOIN workspaces w ON w.id = i.workspace_id
    LEFT JOIN (SELECT pi.image_id, min(p.created_at) AS posted FROM post_images pi
               JOIN posts p ON p.id = pi.post_pk GROUP BY pi.image_id) pp ON pp.image_id = i.id
    WHERE w.name = ? AND f.analyzer = ? AND f.kind = ?
"""

VERDICTS = """
    SELECT f.value, COUNT(*) FROM facets f JOIN images i ON i.id = f.image_id
    JOIN workspaces w ON w.id = i.workspace_id WHERE w.name = ? AND f.kind = 'safety' GROUP BY f.value
"""
TAGS = """
    SELECT h.tag, COUNT(DISTINCT h.post_pk) FROM hashtags h JOIN posts p ON p.id = h.post_pk
    JOIN workspaces w ON w.id = p.workspace_id WHERE w.name = ? GROUP BY h.tag
"""
LIKES = """
    SELECT c.value, SUM(p.likes) FROM posts p
    JOIN (SELECT DISTINCT pi.post_pk, f.value FROM post_images pi
          JOIN facets f ON f.image_id = pi.image_id WHERE f.kind = 'category') c ON c.post_pk = p.id
    JOIN workspaces w ON w.id = p.workspace_id WHERE w.name = ? GROUP BY c.value
"""


def per_day(demo: Demo, workspace: str, analyzer: str, kind: str) -> set[tuple[str, str, int]]:
    """(day, value, images) computed by SQLite itself (its date() of the stored UTC times)."""
    with demo.db() as db:
        rows = db.execute(
            f"SELECT day, value, COUNT(DISTINCT image_id) FROM ({DATED}) GROUP BY day, value",
            (workspace, analyzer, kind),
        ).fetchall()
    return {(d, v, n) for d, v, n in rows}


def test_analytics_match_the_database(demo: Demo) -> None:
    with httpx.Client(base_url=demo.server.url, timeout=60, headers=auth(demo.keys["read"])) as client:

        def get(path: str, **params: Any) -> list[dict[str, Any]]:
            response = client.get(f"/v1/analytics/{path}", params=params)
            assert response.status_code == 200, response.text
            return list(response.json()["rows"])

        def triples(rows: list[dict[str, Any]], key: str) -> set[tuple[str, str, int]]:
            return {(r["period"], r[key], r["images"]) for r in rows}

        categories = get("categories", top=100)
        assert triples(categories, "category") == per_day(demo, demo.team.a, "categories", "category")
        assert {r["period"] for r in categories} >= {"2026-11-02", "2026-11-03", "2026-11-10"}
        sentiment = get("sentiment")
        assert triples(sentiment, "sentiment") == per_day(demo, demo.team.a, "faces", "sentiment")
        brands = get("brands")
        expected = {(d, "Brewly", n) for d, _, n in per_day(demo, demo.team.a, "brands", "brand")}
        assert triples(brands, "brand") == expected and ("2026-11-02", "Brewly", 1) in expected  # #latte
        with demo.db() as db:
            verdicts = dict(db.execute(VERDICTS, (demo.team.a,)).fetchall())
            tags = dict(db.execute(TAGS, (demo.team.a,)).fetchall())
            likes = dict(db.execute(LIKES, (demo.team.a,)).fetchall())
        safety = get("safety", bucket="week")
        assert sum(r["images"] for r in safety) == sum(verdicts.values()) == len(demo.ids)
        for verdict in ("safe", "suggestive", "explicit"):
            assert sum(r[verdict] for r in safety) == verdicts.get(verdict, 0)
        assert {r["hashtag"]: r["posts"] for r in get("hashtags", limit=200)} == tags
        assert tags["space"] == 2 and "secret" not in tags
        engagement = get("engagement", by="category", top=100)
        assert {r["category"]: r["likes"] for r in engagement} == likes
        assert get("engagement", by="brand") == [
            {"brand": "Brewly", "posts": 1, "likes": 120, "comments": 8, "shares": 3,
             "likes_mean": 120.0, "comments_mean": 8.0, "shares_mean": 3.0}
        ]  # fmt: skip
        week = get("categories", bucket="week", since="2026-11-02", until="2026-11-09T00:00:00Z", top=100)
        assert {r["period"] for r in week} == {"2026-11-02"}  # a Monday: the week's name
        assert sum(r["images"] for r in week) == sum(
            n
            for d, _, n in per_day(demo, demo.team.a, "categories", "category")
            if "2026-11-02" <= d < "2026-11-09"
        )
        csv = client.get("/v1/analytics/categories", params={"format": "csv", "top": 100})
        assert csv.headers["content-type"].startswith("text/csv")
        assert "attachment" in csv.headers["content-disposition"]
        lines = csv.text.splitlines()
        assert lines[0] == "period,category,images" and len(lines) == len(categories) + 1
        # team-b sees its own image only
        other = client.get("/v1/analytics/categories", headers=auth(demo.keys["other"])).json()["rows"]
        assert triples(other, "category") == per_day(demo, demo.team.b, "categories", "category")
        assert sum(r["images"] for r in other) >= 1
        hashtags = client.get("/v1/analytics/hashtags", headers=auth(demo.keys["other"])).json()["rows"]
        assert [r["hashtag"] for r in hashtags] == ["secret"]


@pytest.mark.parametrize(
    "path",
    [
        "categories?bucket=month",
        "categories?since=yesterday",
        "categories?since=2026-11-10&until=2026-11-02",
        "categories?since=2026-11-02&until=2026-11-02",
        "categories?format=xml",
        "categories?top=0",
        "labels?kind=colour",
        "labels?min_score=2",
        "engagement?by=author",
        "hashtags?limit=100000",
    ],
)
def test_analytics_bad_inputs(demo: Demo, path: str) -> None:
    response = httpx.get(f"{demo.server.url}/v1/analytics/{path}", headers=auth(demo.keys["read"]))
    is_problem(response, 422, "invalid_request")


def test_analytics_needs_a_key(demo: Demo) -> None:
    is_problem(httpx.get(f"{demo.server.url}/v1/analytics/categories"), 401, "unauthorized")
