"""Audience insights end to end: a real feed export (JSONL and CSV) over real photos is ingested by
`feedlens ingest` with the real analyzers, then the brand team's questions are asked of the CLI
(`feedlens insights ...`) and of the HTTP API (the app in-process, with its real lifespan, auth and
problem+json answers): how do people feel about us, who drives it, where, and what to show next.

The app includes the insights router itself when api/app.py does not list it yet, and the CLI group is
called through its own Typer app, so this module runs before and after both are registered."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from feedlens.api.app import create_app
from feedlens.api.routers import insights as insights_router
from feedlens.cli.insights import app as insights_cli
from feedlens.config import InsightsSettings, MetadataPolicy
from feedlens.core.access import Scope
from feedlens.services.factory import Services
from tests.support.api import auth, is_problem
from tests.support.cli import Cli, in_process_cli
from tests.support.images import meme

TEAM, OTHER = "insights-a", "insights-b"
NOW = datetime.now(UTC).replace(microsecond=0)
# (image, author, days ago, caption, likes, comments, shares): an invented week around a café brand
POSTS = [
    ("coffee.png", "latte_lena", 13, "Best flat white in town at Brewly ☕😍 #brewly #coffee", 2400, 130, 45),
    ("chelsea.png", "catmom", 12, "Miso approves of Brewly's new cushions 😺 #brewly #cats", 900, 40, 12),
    ("astronaut.png", "spacefan", 11, "suited up for the Brewly launch party, so happy! #brewly", 600, 30, 8),
    (
        "geotagged.jpg",
        "nomad.nik",
        10,
        "Found a Brewly in Lisbon! Not bad at all 👍 #travel #brewly",
        540,
        22,
        8,
    ),
    ("meme.png", "sam_k", 4, "Brewly app lost my order again. Furious. #brewly", 40, 15, 6),
    (
        "rocket.jpg",
        "spacefan",
        4,
        "Brewly's new blend tastes burnt and bitter. Disappointed. #brewly",
        300,
        60,
        30,
    ),
    (
        "grace_hopper.jpg",
        "historybits",
        3,
        "Brewly raised prices and the coffee is awful now #brewly",
        150,
        20,
        9,
    ),
    ("flower.jpg", "nomad.nik", 3, "Spring in Porto, what a view! #travel #flowers", 880, 22, 30),
    ("china.jpg", "nomad.nik", 2, "Temple at dawn, simply beautiful #travel", 1320, 60, 75),
    ("hubble_deep_field.jpg", "spacefan", 2, "thousands of galaxies in one frame #space", 6900, 380, 1500),
]


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:  # the handler's protocol names it
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def hook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alerts"
    server.shutdown()
    server.server_close()


def geotagged(source: Path) -> bytes:
    """A phone photo: JPEG with EXIF GPS 38°43'20.28" N, 9°8'21.48" W (Lisbon)."""
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (38.0, 43.0, 20.28), 3: "W", 4: (9.0, 8.0, 21.48)}
    out = io.BytesIO()
    Image.open(source).convert("RGB").save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def write_export(folder: Path, sample_dir: Path) -> list[Path]:
    """The posts as the platform exports them: the first six as JSONL, the rest as CSV."""
    photos = folder / "photos"
    photos.mkdir(parents=True)
    for name in {p[0] for p in POSTS}:
        if name == "geotagged.jpg":
            data = geotagged(sample_dir / "chelsea.png")
        elif name == "meme.png":
            data = meme(("SOMETHING WENT WRONG", "PLEASE TRY AGAIN"))
        else:
            data = (sample_dir / name).read_bytes()
        (photos / name).write_bytes(data)
    rows = []
    for n, (image, author, days, caption, likes, comments, shares) in enumerate(POSTS):
        posted = (NOW - timedelta(days=days)).isoformat()
        rows.append({"id": f"post-{n}", "platform": "instagram", "image": f"photos/{image}", "author": author}
                    | {"caption": caption, "created_at": posted, "likes": likes, "comments": comments}
                    | {"shares": shares})  # fmt: skip
    rows[7]["location"] = "Porto, Portugal"  # a tagged place without coordinates
    jsonl = folder / "feed.jsonl"
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:6]))
    csv_path = folder / "feed.csv"
    header = ["id", "platform", "image", "author", "caption", "created_at", "likes", "comments", "shares"]
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows[6:])
    (folder / "places.jsonl").write_text(json.dumps({"id": "post-7", "platform": "instagram"} | {
        "location": "Porto, Portugal"}) + "\n")  # fmt: skip
    return [jsonl, csv_path]


@pytest.fixture(scope="module")
def wired(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Services:
    """Services over a fresh data folder that keeps locations (FEEDLENS_STORE_METADATA=all) and allows
    webhooks to loopback, with the analyzers insights read (the rest are off to keep the module short)."""
    settings = services.settings.model_copy(
        update={
            "data_dir": tmp_path_factory.mktemp("insights"),
            "database_url": None,
            "store_metadata": MetadataPolicy.ALL,
            "insights": InsightsSettings(webhooks=True, webhook_allowed_networks=("127.0.0.1/32",)),
            "analyzers": ("labels", "faces", "text", "embedding"),
            "jobs_worker": False,
        }
    )
    return services.with_settings(settings)


@pytest.fixture(scope="module")
def library(wired: Services, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    feeds = write_export(folder, sample_dir)
    feedlens: Cli = in_process_cli(wired)
    added = feedlens("brands", "add", "Brewly", "--hashtag", "brewly", "--no-rescan", "-w", TEAM)
    assert added.code == 0, added.stderr
    for workspace, export in ((TEAM, feeds), (OTHER, feeds[1:])):  # the other team: the CSV part only
        ingested = feedlens("ingest", *export, "-w", workspace)
        assert ingested.code == 0, ingested.stderr
    return folder


def problem(response: Any, status: int, code: str) -> None:
    """`is_problem` for the in-process client's answers (httpx2 responses, the same shape)."""
    is_problem(response, status, code)


def insights(wired: Services, *args: str) -> Any:
    """`feedlens insights ARGS` (through the group's own Typer app); its JSON output."""
    result = CliRunner().invoke(insights_cli, [*args], obj=wired, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else result.stdout


def test_the_cli_answers_the_brand_teams_questions(wired: Services, library: Path) -> None:
    assert insights(wired, "refresh", "-w", TEAM).startswith("images ")
    negative = insights(wired, "sentiment", "--posts", "--mood", "negative", "--brand", "brewly",
                        "--json", "-w", TEAM)  # fmt: skip
    ids = {p["post_id"] for p in negative["items"]}
    assert {"post-4", "post-5", "post-6"} <= ids  # the lost order, the burnt blend, the price rise
    lost = next(p for p in negative["items"] if p["post_id"] == "post-4")
    assert lost["parts"]["image_text"] is not None  # the screenshot's text was read and scored
    monitor = insights(wired, "monitor", "--kind", "brand", "--value", "Brewly", "--json", "-w", TEAM)
    assert sum(r["posts"] for r in monitor["rows"]) == 7 and {r["brand"] for r in monitor["rows"]} == {
        "Brewly"
    }
    top = insights(wired, "influencers", "--kind", "brand", "--value", "brewly", "--json", "-w", TEAM)
    assert top["rows"][0]["author"] == "latte_lena" and top["rows"][0]["engagement"] == 2575
    page = insights(wired, "author", "nomad.nik", "-w", TEAM)
    assert page["summary"]["posts"] == 3 and page["summary"]["engagement"] == 570 + 932 + 1455
    placed = CliRunner().invoke(
        insights_cli, ["places", "--import", str(library / "places.jsonl"), "-w", TEAM], obj=wired
    )
    assert placed.exit_code == 0 and "1 posts (1 images) located" in placed.output
    places = insights(wired, "places", "--json", "-w", TEAM)
    names = {p["place"]: p for p in places["places"]}
    assert names["38.7°N 9.1°W"]["sources"] == ["exif"]  # read from the stored copy's GPS
    assert names["Porto, Portugal"]["lat"] is None
    first = insights(wired, "evaluate", "--source", "authors", "--seed", "5", "-w", TEAM)
    assert insights(wired, "evaluate", "--source", "authors", "--seed", "5", "-w", TEAM) == first


@pytest.fixture(scope="module")
def client(wired: Services, library: Path) -> Iterator[TestClient]:
    app = create_app(wired.settings, wired)
    if not any(getattr(r, "path", "").startswith("/v1/insights") for r in app.routes):
        app.include_router(insights_router.router)  # until api/app.py lists it
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def keys(wired: Services, library: Path) -> dict[str, str]:
    access = wired.access
    return {
        "read": access.create_key(TEAM, Scope.READ, "insights test")[0],
        "write": access.create_key(TEAM, Scope.WRITE, "insights test")[0],
        "other": access.create_key(OTHER, Scope.WRITE, "insights test")[0],
    }


def test_how_people_feel_and_who_drives_it(client: TestClient, keys: dict[str, str]) -> None:
    read = auth(keys["read"])
    posts = client.get("/v1/insights/sentiment/posts", params={"brand": "brewly", "limit": 100}, headers=read)
    assert posts.status_code == 200, posts.text
    body = posts.json()
    assert body["total"] == 7 and body["items"][0]["label"] == "negative"  # most negative first
    happy = next(p for p in body["items"] if p["post_id"] == "post-2")
    assert happy["label"] == "positive" and happy["parts"]["faces"] is not None  # the astronaut smiles
    unhappy = client.get(
        "/v1/insights/sentiment/posts", params={"brand": "brewly", "mood": "negative"}, headers=read
    )
    assert {"post-4", "post-5", "post-6"} <= {p["post_id"] for p in unhappy.json()["items"]}
    image = client.get(f"/v1/insights/sentiment/images/{happy['images'][0]}", headers=read).json()
    assert image["parts"]["faces"] == happy["parts"]["faces"]
    weekly = client.get("/v1/insights/monitor", params={"kind": "brand", "bucket": "day"}, headers=read)
    assert sum(r["posts"] for r in weekly.json()["rows"]) == 7 and weekly.json()["bucket"] == "day"
    csv = client.get("/v1/insights/monitor", params={"kind": "hashtag", "format": "csv"}, headers=read)
    assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("period,hashtag,posts")
    ranked = client.get(
        "/v1/insights/influencers",
        params={"kind": "brand", "value": "Brewly", "order": "posts"},
        headers=read,
    ).json()["rows"]
    assert ranked[0]["author"] == "spacefan" and ranked[0]["posts_about"] == 2
    author = client.get("/v1/insights/authors/latte_lena", headers=read).json()
    assert author["brands"][0]["name"] == "Brewly" and author["posts"][0]["post_id"] == "post-0"
    problem(client.get("/v1/insights/authors/nobody", headers=read), 404, "not_found")
    problem(
        client.get("/v1/insights/influencers", params={"kind": "brand"}, headers=read), 422, "invalid_request"
    )
    problem(client.get("/v1/insights/monitor"), 401, "unauthorized")
    # another team sees only its own copy of the export
    other = client.get("/v1/insights/sentiment/posts", params={"limit": 100}, headers=auth(keys["other"]))
    assert other.json()["total"] == 4 and not set(other.json()["items"][0]["images"]) & set(happy["images"])


def test_where_and_the_alerts(client: TestClient, keys: dict[str, str], hook: str) -> None:
    read, write = auth(keys["read"]), auth(keys["write"])
    places = client.get("/v1/insights/places", headers=read).json()
    assert places["kept"] is True and any(
        p["sources"] == ["exif"] and p["lat"] == 38.7 for p in places["places"]
    )
    cell = client.get("/v1/insights/places/images", params={"lat": 38.72, "lon": -9.14}, headers=read).json()
    assert len(cell["items"]) == 1
    added = client.post("/v1/insights/places", json={"places": [{"post_id": "post-8", "platform": "instagram",
                        "name": "Beijing", "lat": 39.9, "lon": 116.4}]}, headers=write)  # fmt: skip
    assert added.json() == {"posts": 1, "unknown_posts": 0, "images": 1}
    problem(client.post("/v1/insights/places", json={"places": []}, headers=read), 403, "forbidden")
    rule: dict[str, Any] = {"name": "Brewly complaints", "kind": "brand", "value": "Brewly", "bucket": "week"}
    rule |= {"threshold": 0.5, "min_rise": 0.2, "min_posts": 2, "webhook_url": hook}
    made = client.post("/v1/insights/alerts/rules", json=rule, headers=write)
    assert made.status_code == 201, made.text
    refused = client.post(
        "/v1/insights/alerts/rules", json=rule | {"webhook_url": "http://10.0.0.1/x"}, headers=write
    )
    problem(refused, 400, "address_refused")
    fired = client.post("/v1/insights/alerts/check", headers=write).json()["alerts"]
    assert fired  # the week of the lost order, the burnt blend and the price rise
    assert client.post("/v1/insights/alerts/check", headers=write).json()["alerts"] == []  # once
    listed = client.get("/v1/insights/alerts", headers=read).json()["alerts"]
    assert [a["id"] for a in listed] == [a["id"] for a in fired]
    sent = [a for a in fired if a["webhook"]["status"] == "sent"]
    assert len(Hook.received) == len(sent)  # webhooks only for jumps in periods the rule was there for
    assert all(a["negative_share"] >= 0.5 for a in fired)
    assert client.delete(f"/v1/insights/alerts/rules/{made.json()['id']}", headers=write).status_code == 204
    problem(client.delete("/v1/insights/alerts/rules/999", headers=write), 404, "rule_not_found")


def test_what_to_show_next(client: TestClient, keys: dict[str, str]) -> None:
    read, write = auth(keys["read"]), auth(keys["write"])
    liked = [{"follower": "miso_fan", "platform": "instagram", "post_id": "post-1", "kind": "like"},
             {"follower": "miso_fan", "platform": "instagram", "post_id": "post-3", "kind": "share"},
             {"follower": "miso_fan", "platform": "instagram", "post_id": "gone"}]  # fmt: skip
    stored = client.post("/v1/insights/engagements", json={"engagements": liked}, headers=write)
    assert stored.json() == {"engagements": 2, "unknown": 1}
    shown = client.get("/v1/insights/recommendations", params={"follower": "miso_fan", "k": 5}, headers=read)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["for"] == {"follower": "miso_fan"} and body["engaged"] == 2 and len(body["items"]) == 5
    assert all(0 <= i["relevance"] <= 1 for i in body["items"])
    for_author = client.get(
        "/v1/insights/recommendations", params={"author": "spacefan"}, headers=read
    ).json()
    # seven unseen images, but chelsea is there twice (the PNG and the geotagged JPEG): shown once
    assert for_author["engaged"] == 3 and len(for_author["items"]) == 6
    problem(
        client.get("/v1/insights/recommendations", params={"follower": "x"}, headers=read), 404, "no_history"
    )
    evaluation = [
        client.get(
            "/v1/insights/recommendations/evaluation", params={"source": "authors", "seed": 3}, headers=read
        )
        for _ in range(2)
    ]
    assert evaluation[0].json() == evaluation[1].json() and evaluation[0].json()["followers"] == 2


@pytest.mark.parametrize(
    ("method", "path", "params", "status", "code"),
    [
        ("get", "/v1/insights/monitor", {"kind": "brand", "value": "Brewlyy"}, 404, "unknown_brand"),
        ("get", "/v1/insights/influencers", {"kind": "brand", "value": "nope"}, 404, "unknown_brand"),
        ("get", "/v1/insights/monitor", {"since": "2026-13-01"}, 422, "invalid_request"),
        (
            "get",
            "/v1/insights/monitor",
            {"since": "2026-03-02", "until": "2026-03-01"},
            422,
            "invalid_request",
        ),
        ("get", "/v1/insights/monitor", {"kind": "person"}, 422, "invalid_request"),
        ("get", "/v1/insights/monitor", {"bucket": "year"}, 422, "invalid_request"),
        ("get", "/v1/insights/sentiment/posts", {"mood": "angry"}, 422, "invalid_request"),
        ("get", "/v1/insights/sentiment/images", {"min_score": 2}, 422, "invalid_request"),
        ("get", "/v1/insights/sentiment/images/not-an-image", {}, 404, "not_found"),
        ("get", "/v1/insights/places/images", {"lat": 38.7}, 422, "invalid_request"),
        ("get", "/v1/insights/places/images", {"lat": 91, "lon": 0}, 422, "invalid_request"),
        ("get", "/v1/insights/recommendations", {}, 422, "invalid_request"),
        ("get", "/v1/insights/recommendations", {"follower": "a", "author": "b"}, 422, "invalid_request"),
        ("get", "/v1/insights/recommendations/evaluation", {"holdout": 1}, 422, "invalid_request"),
        ("post", "/v1/insights/alerts/check", {}, 403, "forbidden"),  # a read key cannot
    ],
)
def test_bad_requests_are_refused_plainly(
    client: TestClient,
    keys: dict[str, str],
    method: str,
    path: str,
    params: dict[str, Any],
    status: int,
    code: str,
) -> None:
    problem(client.request(method, path, params=params, headers=auth(keys["read"])), status, code)


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"value": "Brewlee"}, 404, "unknown_brand"),  # a typo would watch nothing for ever
        ({"kind": "person"}, 422, "invalid_request"),
        ({"threshold": 0}, 422, "invalid_request"),
        ({"min_rise": 1.5}, 422, "invalid_request"),
        ({"extra": 1}, 422, "invalid_request"),
        (
            {"webhook_url": "http://169.254.169.254/latest/meta-data"},
            400,
            "address_refused",
        ),  # cloud metadata
        ({"webhook_url": "http://192.168.1.5:8080/hook"}, 400, "address_refused"),
        ({"webhook_url": "http://[::1]/hook"}, 400, "address_refused"),  # only 127.0.0.1 is allowed here
        ({"webhook_url": "file:///etc/passwd"}, 400, "url_scheme_refused"),
        ({"webhook_url": "http://user:secret@example.com/hook"}, 400, "url_invalid"),
        ({"webhook_url": "not a url"}, 400, "url_invalid"),
    ],
)
def test_bad_alert_rules_are_refused(
    client: TestClient, keys: dict[str, str], change: dict[str, Any], status: int, code: str
) -> None:
    rule = {"name": "complaints", "kind": "brand", "value": "Brewly"} | change
    problem(client.post("/v1/insights/alerts/rules", json=rule, headers=auth(keys["write"])), status, code)


def test_the_cli_refuses_bad_input_in_one_line(wired: Services, library: Path) -> None:
    feedlens = in_process_cli(wired)
    cases = [
        (("monitor", "--kind", "brand", "--value", "Brewlyy"), "no brand 'Brewlyy'"),
        (("monitor", "--since", "2026-13-01"), "not a date"),
        (("monitor", "--since", "2026-03-02", "--until", "2026-03-01"), "before --until"),
        (("monitor", "--kind", "person"), "brand, hashtag or category"),
        (("sentiment", "--mood", "angry"), "--mood"),
        (("influencers", "--kind", "brand"), "together"),
        (("author", "nobody"), "no post by 'nobody'"),
        (("recommend", "--follower", "nobody"), "no engaged or posted images"),
        (
            ("alerts", "add", "x", "--kind", "brand", "--value", "Brewly", "--webhook", "http://10.1.2.3/"),
            "10.1.2.3",
        ),
        (("alerts", "add", "x", "--kind", "brand", "--value", "Brewly", "--threshold", "2"), "threshold"),
        (("alerts", "remove", "999"), "no alert rule 999"),
    ]
    for args, says in cases:
        run = feedlens("insights", *args, "-w", TEAM)
        assert run.code != 0 and says in " ".join(run.stderr.split()), (args, run.code, run.stderr)
        assert "Traceback" not in run.stderr
