"""Search as a client sees it: a real `feedlens serve` (SQLite) with real models, then the CLI against the
same data. PostgreSQL storage is covered by tests/services/test_search.py. The server is the e2e shared one
(tests/e2e/conftest.py); the module works in workspaces of its own (`team`).

Team.a's library: the sample photos, generated edits of chelsea (near duplicates), chelsea's left half
(similar), chelsea posted twice (exact: one image, two posts) and coffee captioned "my morning #latte".
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageOps
from sqlalchemy import select

from feedlens.index.store import load_index
from feedlens.services.access import AccessService
from feedlens.storage.database import Database
from feedlens.storage.tables import Image as ImageRow
from tests.conftest import encode
from tests.e2e.server import Server, Team
from tests.support.api import Library, auth, is_problem, store
from tests.support.images import png_with_bad_crc, truncated_jpeg
from tests.support.search_set import CATS, HALF, NEAR, OTHERS, SAMPLES, UNRELATED, chelsea_copies

KINDS = ("visual", "content", "semantic")


@pytest.fixture(scope="module")
def library(client: httpx.Client, keys: dict[str, str], sample_dir: Path, chelsea: Image.Image) -> Library:
    key = keys["write"]
    ids = {name: store(client, key, (sample_dir / name).read_bytes(), name) for name in SAMPLES}
    ids |= {name: store(client, key, data, name) for name, data in chelsea_copies(chelsea).items()}
    cat = (sample_dir / "chelsea.png").read_bytes()
    post1 = {"id": "p1", "platform": "x", "author": "alice", "caption": "lazy sunday #Caturday"}
    assert store(client, key, cat, "repost-1.png", post1) == ids["chelsea.png"]
    post2 = {"id": "p2", "platform": "instagram", "author": "bob"}
    assert store(client, key, cat, "repost-2.png", post2) == ids["chelsea.png"]
    post3 = {"id": "p3", "platform": "instagram", "author": "carol", "caption": "my morning #latte"}
    assert store(client, key, (sample_dir / "coffee.png").read_bytes(), "c.png", post3) == ids["coffee.png"]
    b_ids = {
        name: store(client, keys["other"], (sample_dir / name).read_bytes(), name)
        for name in ("chelsea.png", "coffee.png", "rocket.jpg")
    }
    return Library(ids, b_ids)


def search(client: httpx.Client, key: str, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/search", headers=auth(key), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def similar(client: httpx.Client, key: str, data: bytes | None = None, **params: Any) -> httpx.Response:
    files = {"file": ("query.png", data)} if data is not None else None
    return client.post("/v1/search/similar", headers=auth(key), params=params, files=files)


# -- words -------------------------------------------------------------------------------------------------
def test_words_find_their_photo_first(client: httpx.Client, keys: dict[str, str], library: Library) -> None:
    cat = search(client, keys["read"], q="cat")
    assert set(cat) == {"query", "not", "items", "min_score", "next_offset"}
    assert cat["query"] == "cat" and cat["not"] == [] and 0 < cat["min_score"] < 1
    ranked = library.names(cat)
    assert set(ranked[: len(CATS)]) == set(CATS), ranked
    first = cat["items"][0]
    assert set(first) == {"image_id", "score", "cosine", "image"}
    assert first["image"]["id"] == first["image_id"] and "labels" in first["image"]["results"]
    scores = [i["score"] for i in cat["items"]]
    assert scores == sorted(scores, reverse=True) and all(cat["min_score"] <= s <= 1 for s in scores)
    assert library.names(search(client, keys["read"], q="coffee"))[0] == "coffee.png"
    assert library.names(search(client, keys["read"], q="latte"))[0] == "coffee.png"  # its caption
    caturday = search(client, keys["read"], q="caturday")
    assert library.names(caturday)[0] == "chelsea.png"
    assert {p["post_id"] for p in caturday["items"][0]["image"]["posts"]} == {"p1", "p2"}


def test_an_unrelated_query_returns_nothing(
    client: httpx.Client, keys: dict[str, str], library: Library
) -> None:
    for query in UNRELATED:
        body = search(client, keys["read"], q=query)
        assert body["items"] == [] and body["next_offset"] is None, query
    everything = search(client, keys["read"], q=UNRELATED[0], min_score=0, limit=100)
    assert len(everything["items"]) == len(library.ids)


def test_pages_and_negative_terms(client: httpx.Client, keys: dict[str, str], library: Library) -> None:
    whole = search(client, keys["read"], q="cat", min_score=0, limit=12)
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None and offset < 12:
        page = search(client, keys["read"], q="cat", min_score=0, limit=4, offset=offset)
        seen += [i["image_id"] for i in page["items"]]
        offset = page["next_offset"]
    assert seen == [i["image_id"] for i in whole["items"]]
    last = search(client, keys["read"], q="cat", min_score=0, limit=4, offset=len(library.ids))
    assert last["items"] == [] and last["next_offset"] is None
    pushed = search(client, keys["read"], q="cat", min_score=0, limit=100, **{"not": ["caturday", " "]})
    assert pushed["not"] == ["caturday"]  # blank terms dropped
    order = library.names(pushed)
    assert order.index("chelsea.png") > order.index("cat_q60.jpg")  # the #caturday one pushed back


def test_filters_combine_with_search(client: httpx.Client, keys: dict[str, str], library: Library) -> None:
    key = keys["read"]
    assert library.names(search(client, key, q="cat", hashtag="caturday")) == ["chelsea.png"]
    assert library.names(search(client, key, q="cat", hashtag="#Caturday")) == ["chelsea.png"]
    assert library.names(search(client, key, q="cat", author="bob")) == ["chelsea.png"]
    assert library.names(search(client, key, q="coffee", platform="instagram")) == ["coffee.png"]
    assert search(client, key, q="cat", safety="explicit")["items"] == []
    assert search(client, key, q="cat", safety="explicit", min_score=0)["items"] == []
    assert search(client, key, q="coffee", label="cat")["items"] == []  # the cut-off still applies
    safe = search(client, key, q="cat", safety="safe", limit=100)
    assert set(library.names(safe)) == set(library.names(search(client, key, q="cat", limit=100)))
    response = similar(client, key, image_id=library.ids["chelsea.png"], label="cat", min_score=0, limit=100)
    assert set(library.names(response.json())) <= set(CATS)


def test_search_refuses_bad_parameters(client: httpx.Client, keys: dict[str, str], library: Library) -> None:
    key = keys["read"]
    bad: list[dict[str, Any]] = [
        {},
        {"q": ""},
        {"q": "x" * 501},
        {"q": "cat", "min_score": 1.5},
        {"q": "cat", "min_score": -0.1},
        {"q": "cat", "min_score": "high"},
        {"q": "cat", "limit": 0},
        {"q": "cat", "limit": 101},
        {"q": "cat", "offset": -1},
        {"q": "cat", "offset": 10_001},
        {"q": "cat", "not": [f"t{i}" for i in range(21)]},
        {"q": "cat", "safety": "maybe"},
        {"q": "cat", "label_min_score": 2},
        {"q": "cat", "since": "yesterday"},
    ]
    for params in bad:
        is_problem(client.get("/v1/search", headers=auth(key), params=params), 422, "invalid_request")
    is_problem(client.get("/v1/search?q=c%00t", headers=auth(key)), 422, "invalid_request")
    assert search(client, key, q="x" * 500)["query"] == "x" * 500  # the limit itself is fine
    is_problem(client.get("/v1/search", params={"q": "cat"}), 401, "unauthorized")
    is_problem(client.get("/v1/search", headers=auth("fl_nope"), params={"q": "cat"}), 401, "unauthorized")


# -- example images ----------------------------------------------------------------------------------------
def test_similar_by_stored_image_upload_and_json(
    client: httpx.Client, keys: dict[str, str], library: Library, chelsea: Image.Image, sample_dir: Path
) -> None:
    key = keys["read"]
    by_id = similar(client, key, image_id=library.ids["chelsea.png"], limit=100)
    assert by_id.status_code == 200, by_id.text
    assert set(by_id.json()) == {"items", "min_score", "next_offset"}
    ranked = library.names(by_id.json())
    assert set(ranked[:4]) == set(NEAR) - {"chelsea.png"} and ranked[4] == HALF, ranked
    assert not set(ranked) & {*OTHERS, "chelsea.png"}
    w, h = chelsea.size
    unseen = encode(
        chelsea.crop((int(w * 0.1), int(h * 0.1), int(w * 0.9), int(h * 0.9))), "JPEG", quality=80
    )
    uploaded = similar(client, key, unseen)
    assert uploaded.status_code == 200, uploaded.text
    assert set(library.names(uploaded.json())[: len(CATS)]) == set(CATS)
    as_json = client.post(
        "/v1/search/similar",
        headers=auth(key),
        json={"image": {"content": base64.b64encode(unseen).decode()}},
    )
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["items"] == uploaded.json()["items"]
    again = similar(client, key, (sample_dir / "coffee.png").read_bytes()).json()["items"]
    assert again[0]["image_id"] == library.ids["coffee.png"] and again[0]["cosine"] >= 0.999  # as ingested
    page = similar(client, key, unseen, limit=2, offset=2)
    assert [i["image_id"] for i in page.json()["items"]] == [
        i["image_id"] for i in uploaded.json()["items"][2:4]
    ]


def test_similar_refuses_bad_inputs(
    client: httpx.Client, keys: dict[str, str], library: Library, chelsea: Image.Image
) -> None:
    key = keys["read"]
    is_problem(similar(client, key, image_id="0" * 24), 404, "not_found")
    is_problem(similar(client, key, image_id=library.b_ids["chelsea.png"]), 404, "not_found")
    is_problem(similar(client, keys["other"], image_id=library.ids["chelsea.png"]), 404, "not_found")
    is_problem(similar(client, key, image_id="x" * 65), 422, "invalid_request")
    is_problem(client.post("/v1/search/similar?image_id=ab%00cd", headers=auth(key)), 422, "invalid_request")
    images: list[tuple[bytes, int, str]] = [
        (b"", 422, "empty"),
        (b"just some text, not an image at all", 415, "unsupported_format"),
        (encode(Image.new("RGB", (8, 8)), "PNG"), 422, "too_small"),
        (png_with_bad_crc(chelsea), 422, "corrupt"),
        (truncated_jpeg(chelsea), 422, "truncated"),
    ]
    for data, status, code in images:
        is_problem(similar(client, key, data), status, code)
    good = encode(chelsea, "PNG")
    for params in ({"min_score": 2}, {"min_score": -1}, {"limit": 0}, {"limit": 101}, {"offset": -1}):
        is_problem(similar(client, key, good, **params), 422, "invalid_request")
    is_problem(
        client.post("/v1/search/similar", headers=auth(key), json={"image": {"content": "%%% not base64"}}),
        422,
        "invalid_base64",
    )
    is_problem(
        client.post("/v1/search/similar", headers=auth(key), json={"image": {}}), 422, "invalid_request"
    )
    is_problem(
        client.post("/v1/search/similar", headers=auth(key), files={"other": ("x", b"1")}),
        422,
        "missing_file",
    )
    is_problem(
        client.post("/v1/search/similar", headers={**auth(key), "content-type": "text/plain"}, content=b"x"),
        415,
        "unsupported_media_type",
    )
    by_url = client.post(
        "/v1/search/similar", headers=auth(key), json={"image": {"url": "http://127.0.0.1:9/cat.png"}}
    )
    assert 400 <= by_url.status_code < 500 and by_url.json()["code"] == "fetch_disabled"
    is_problem(client.post("/v1/search/similar", files={"file": ("a.png", good)}), 401, "unauthorized")


# -- duplicates and clusters -------------------------------------------------------------------------------
def test_duplicate_relations(client: httpx.Client, keys: dict[str, str], library: Library) -> None:
    response = client.get("/v1/duplicates", headers=auth(keys["read"]))
    assert response.status_code == 200, response.text
    found = response.json()
    [exact] = found["exact"]
    assert exact["image_id"] == library.ids["chelsea.png"]
    assert sorted((p["platform"], p["post_id"]) for p in exact["posts"]) == [("instagram", "p2"), ("x", "p1")]
    assert [sorted(library.name(i) for i in g["images"]) for g in found["near"]] == [sorted(NEAR)]
    [similar_group] = found["similar"]
    assert {HALF, "chelsea.png"} <= {library.name(i) for i in similar_group["images"]}
    for pair in similar_group["pairs"]:
        assert HALF in (library.name(pair["a"]), library.name(pair["b"]))
        assert set(pair) == {"a", "b", "cosine", "phash_bits"}
    grouped = {library.name(i) for g in found["near"] + found["similar"] for i in g["images"]}
    assert not grouped & set(OTHERS)
    is_problem(client.get("/v1/duplicates"), 401, "unauthorized")


def test_clusters(client: httpx.Client, keys: dict[str, str], library: Library) -> None:
    response = client.get("/v1/clusters", headers=auth(keys["read"]))
    assert response.status_code == 200, response.text
    found = response.json()
    [cats] = [c for c in found["clusters"] if library.ids["chelsea.png"] in c["images"]]
    assert {library.name(i) for i in cats["images"]} >= set(CATS)
    assert not {library.name(i) for i in cats["images"]} & set(OTHERS)
    every = [i for c in found["clusters"] for i in c["images"]] + found["outliers"]
    assert sorted(every) == sorted(library.ids.values())
    for bad in (1, 0, 1001, "many"):
        is_problem(
            client.get("/v1/clusters", headers=auth(keys["read"]), params={"min_size": bad}),
            422,
            "invalid_request",
        )


# -- workspaces --------------------------------------------------------------------------------------------
def test_workspace_isolation(client: httpx.Client, keys: dict[str, str], library: Library) -> None:
    a_ids, b_ids = set(library.ids.values()), set(library.b_ids.values())
    for query in ("cat", "coffee", "latte"):
        b = search(client, keys["other"], q=query, min_score=0, limit=100)
        assert {i["image_id"] for i in b["items"]} == b_ids
        a = search(client, keys["read"], q=query, min_score=0, limit=100)
        assert {i["image_id"] for i in a["items"]} == a_ids
    upload = similar(client, keys["other"], image_id=library.b_ids["chelsea.png"], min_score=0, limit=100)
    assert {i["image_id"] for i in upload.json()["items"]} == b_ids - {library.b_ids["chelsea.png"]}
    duplicates = client.get("/v1/duplicates", headers=auth(keys["other"])).json()
    assert duplicates == {"exact": [], "near": [], "similar": []}
    clusters = client.get("/v1/clusters", headers=auth(keys["other"]), params={"min_size": 2}).json()
    assert {i for c in clusters["clusters"] for i in c["images"]} | set(clusters["outliers"]) == b_ids


# -- index maintenance -------------------------------------------------------------------------------------
def test_rebuild_is_for_admins_and_changes_no_answer(
    client: httpx.Client, keys: dict[str, str], library: Library
) -> None:
    for scope in ("read", "write"):
        is_problem(client.post("/v1/index/rebuild", headers=auth(keys[scope])), 403, "forbidden")
    queries = ("cat", "coffee", "latte", "rocket")
    before = {q: search(client, keys["read"], q=q, min_score=0, limit=100)["items"] for q in queries}
    similar_before = similar(
        client, keys["read"], image_id=library.ids["chelsea.png"], min_score=0, limit=100
    )
    response = client.post("/v1/index/rebuild", headers=auth(keys["admin"]))
    assert response.status_code == 200, response.text
    assert response.json() == {"rebuilt": {kind: len(library.ids) for kind in KINDS}}
    for query, items in before.items():
        after = search(client, keys["read"], q=query, min_score=0, limit=100)["items"]
        assert [i["image_id"] for i in after] == [i["image_id"] for i in items], query
        assert [i["score"] for i in after] == pytest.approx([i["score"] for i in items], abs=1e-4)
    similar_after = similar(client, keys["read"], image_id=library.ids["chelsea.png"], min_score=0, limit=100)
    assert similar_after.json()["items"] == similar_before.json()["items"]


def workspace_id(server: Server, name: str) -> int:
    database = Database(server.database_url)
    try:
        return AccessService(database).workspace_id(name)
    finally:
        database.dispose()


def test_erasure_removes_index_entries(
    server: Server,
    team: Team,
    client: httpx.Client,
    keys: dict[str, str],
    library: Library,
    sample_dir: Path,
    chelsea: Image.Image,
) -> None:
    key = keys["write"]
    grey = store(client, key, encode(ImageOps.grayscale(chelsea).convert("RGB"), "PNG"), "grey.png")
    mirror = encode(ImageOps.mirror(Image.open(sample_dir / "coffee.png").convert("RGB")), "PNG")
    eves = store(
        client, key, mirror, "eve.png", {"id": "e1", "author": "@eve", "caption": "my morning #latte"}
    )

    def found(**params: Any) -> set[str]:
        return {
            i["image_id"] for i in search(client, keys["read"], min_score=0, limit=100, **params)["items"]
        }

    def similar_ids() -> set[str]:
        response = similar(client, keys["read"], image_id=library.ids["chelsea.png"], min_score=0, limit=100)
        return {i["image_id"] for i in response.json()["items"]}

    assert grey in found(q="cat") and grey in similar_ids() and eves in found(q="latte")
    assert client.delete(f"/v1/images/{grey}", headers=auth(key)).status_code == 204
    erased = client.delete("/v1/authors/@eve", headers=auth(keys["admin"]))
    assert erased.status_code == 200 and erased.json()["erased"] == {"posts": 1, "images": 1}
    gone = {grey, eves}
    assert not gone & found(q="cat") and not gone & found(q="latte") and not gone & similar_ids()
    for image_id in gone:
        is_problem(similar(client, keys["read"], image_id=image_id), 404, "not_found")
    duplicates = client.get("/v1/duplicates", headers=auth(keys["read"])).json()
    assert not gone & {i for g in duplicates["near"] + duplicates["similar"] for i in g["images"]}
    # the saved index files no longer hold them (written at once, not at the next periodic save)
    folder = server.data_dir / "index" / str(workspace_id(server, team.a))
    for kind in ("visual", "semantic"):
        assert not gone & set(load_index(folder / f"{kind}.index").ids()), kind
    assert set(found(q="cat")) == set(library.ids.values())  # the rest untouched


# -- the CLI, against the same data while the server runs -------------------------------------------------
@pytest.fixture(scope="module")
def cli_team(team: Team) -> str:
    """The workspace the CLI ingests into."""
    return team.workspace("cli")


@pytest.fixture(scope="module")
def cli_library(
    server: Server,
    cli_team: str,
    sample_dir: Path,
    chelsea: Image.Image,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """cli_team: a folder and a feed export, ingested by `feedlens ingest` in its own process."""
    root = tmp_path_factory.mktemp("cli-search")
    photos = root / "photos"
    photos.mkdir()
    for name in ("chelsea.png", "coffee.png", "rocket.jpg"):
        shutil.copy(sample_dir / name, photos / name)
    (photos / "cat_mirror.png").write_bytes(encode(ImageOps.mirror(chelsea), "PNG"))
    feed = root / "feed.jsonl"
    rows = [
        {"id": "f1", "image": "photos/coffee.png", "caption": "my morning #latte", "author": "dan"},
        {"id": "f2", "image": "photos/chelsea.png", "hashtags": ["caturday"], "author": "erin"},
        {"id": "f3", "image": "photos/chelsea.png", "author": "frank"},
    ]
    feed.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = server.cli("ingest", str(photos), str(feed), "-w", cli_team)
    assert done.returncode == 0, done.stderr
    assert "images: 4 added, 0 already stored, 0 failed; posts: 3 added" in done.stderr
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    w, h = chelsea.size
    (root / "query.jpg").write_bytes(encode(chelsea.crop((int(w * 0.1), 0, w, h)), "JPEG", quality=85))
    return root


def parsed(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def cli_ids(server: Server, cli_team: str) -> dict[str, str]:
    """cli_team's image ids by file name, read in-process from the database."""
    database = Database(server.database_url)
    try:
        workspace = AccessService(database).workspace_id(cli_team)
        with database.session() as session:
            found = session.execute(
                select(ImageRow.id, ImageRow.source).where(ImageRow.workspace_id == workspace)
            )
            return {Path(source).name: image_id for image_id, source in found}
    finally:
        database.dispose()


def test_cli_search_similar_duplicates_clusters_rebuild(
    server: Server, cli_team: str, cli_library: Path
) -> None:
    ws = ("-w", cli_team)
    ids = cli_ids(server, cli_team)
    name = {v: k for k, v in ids.items()}
    cats = {"chelsea.png", "cat_mirror.png"}
    commands = {
        "cat": ("search", "cat", "--json", *ws),
        "unrelated": ("search", UNRELATED[0], *ws),
        "file": ("similar", str(cli_library / "query.jpg"), "--json", *ws),
        "id": ("similar", ids["chelsea.png"], "--json", *ws),
        "duplicates": ("duplicates", "--json", *ws),
        "clusters": ("clusters", "--json", "--min-size", "2", *ws),
        "no_image": ("similar", "not-a-file-or-id", *ws),
    }
    # each run starts Python and loads models (~4 s): a few side by side
    with ThreadPoolExecutor(4) as pool:
        results = dict(
            zip(commands, pool.map(lambda args: server.cli(*args), commands.values()), strict=True)
        )
    ranked = [name[r["image_id"]] for r in parsed(results["cat"])]
    assert set(ranked) == cats, ranked  # the cat photos, and nothing else clears the cut-off
    assert {"image_id", "score", "cosine", "source"} == set(parsed(results["cat"])[0])
    unrelated = results["unrelated"]
    assert unrelated.returncode == 0 and unrelated.stdout.strip() == ""
    assert "no match above the relevance cut-off" in unrelated.stderr
    assert {name[r["image_id"]] for r in parsed(results["file"])} == cats
    assert [name[r["image_id"]] for r in parsed(results["id"])] == ["cat_mirror.png"]  # not itself
    duplicates = parsed(results["duplicates"])
    [exact] = duplicates["exact"]
    assert exact["image_id"] == ids["chelsea.png"] and {p["post_id"] for p in exact["posts"]} == {"f2", "f3"}
    assert [{name[i] for i in g["images"]} for g in duplicates["near"]] == [cats]
    clusters = parsed(results["clusters"])
    assert {i for c in clusters["clusters"] for i in c["images"]} | set(clusters["outliers"]) == set(name)
    no_image = results["no_image"]
    assert no_image.returncode == 2 and "neither a file nor an image id" in no_image.stderr

    rebuilt = server.cli("index", "rebuild", *ws)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout.strip() == "visual: 4, content: 4, semantic: 4"


def test_the_server_finds_what_the_cli_ingested(
    server: Server, client: httpx.Client, cli_team: str, cli_library: Path
) -> None:
    key = server.key(cli_team, "read")
    body = search(client, key, q="latte")
    assert Path(body["items"][0]["image"]["source"]).name == "coffee.png"
    assert {Path(i["image"]["source"]).name for i in search(client, key, q="cat")["items"]} == {
        "chelsea.png",
        "cat_mirror.png",
    }


def test_cli_similar_to_a_bad_file_is_a_clean_error(server: Server, cli_team: str, cli_library: Path) -> None:
    result = server.cli("similar", str(cli_library / "broken.jpg"), "-w", cli_team)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "[corrupt]" in result.stderr or "[truncated]" in result.stderr
