"""Recommendations: relevance from visual vectors and categories, no near-duplicates in a list, the seeded
held-out evaluation (the same seed gives the same numbers), and followers' engagements stored through the
service over the coffee team's feed (tests/services/test_insights.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from feedlens.core.errors import CodedError
from feedlens.services.insights.followers import EngagementIn, NoHistoryError
from feedlens.services.insights.recommend import Catalog, Params, evaluate, recommend, split
from feedlens.storage import embeddings
from tests.support.insights_feed import build

DIM = 64


def topics(seed: int = 0, per_topic: int = 30, duplicates: int = 10) -> tuple[Catalog, dict[str, str]]:
    """Three topics of images around their own direction, and `duplicates` near-copies of one 'a' image
    (a reposted meme) that sits at the heart of its topic, so it is what a plain ranking would put first:
    (catalog, image id -> topic)."""
    rng = np.random.default_rng(seed)
    centres = {t: rng.normal(size=DIM) for t in "abc"}
    vectors, topic_of, cats = {}, {}, {}
    for topic, centre in centres.items():
        for n in range(per_topic):
            image_id = f"{topic}{n:02d}"
            vectors[image_id] = centre + 1.2 * rng.normal(size=DIM)
            topic_of[image_id] = topic
            cats[image_id] = {f"category {topic}": 0.8}
    meme = centres["a"] + 0.3 * rng.normal(size=DIM)
    vectors["a00"] = meme
    for n in range(duplicates):
        image_id = f"a-copy{n}"
        vectors[image_id] = meme + 0.02 * rng.normal(size=DIM)
        topic_of[image_id] = "a"
        cats[image_id] = {"category a": 0.8}
    return Catalog.build(vectors, cats), topic_of


def test_recommends_the_followers_topic_without_duplicates() -> None:
    catalog, topic_of = topics()
    index = catalog.index()
    seeds = {index[f"a{n:02d}"]: 1.0 for n in range(1, 6)}
    picks = recommend(catalog, seeds, 10, Params())
    assert len(picks) == 10
    assert sum(topic_of[p.image_id] == "a" for p in picks) >= 9
    assert not {p.image_id for p in picks} & {catalog.ids[i] for i in seeds}  # nothing already engaged with
    copies = [p.image_id for p in picks if p.image_id == "a00" or p.image_id.startswith("a-copy")]
    assert len(copies) <= 1  # eleven copies of one picture: at most one is shown
    vectors = catalog.visual[[index[p.image_id] for p in picks]]
    cosines = vectors @ vectors.T
    assert (cosines[np.triu_indices(10, 1)] < 0.93).all()
    assert all(p.because in {catalog.ids[i] for i in seeds} for p in picks)
    no_diversity = recommend(catalog, seeds, 10, Params(diversity=0.0, duplicate_cosine=1.01))
    assert (
        sum(p.image_id.startswith("a-copy") or p.image_id == "a00" for p in no_diversity) > 1
    )  # what it stops
    assert recommend(catalog, {}, 10, Params()) == []


def test_a_near_copy_of_an_engaged_image_is_not_new() -> None:
    catalog, _ = topics()
    index = catalog.index()
    picks = recommend(catalog, {index["a00"]: 1.0}, 10, Params())
    assert not [p for p in picks if p.image_id.startswith("a-copy")]


def test_categories_count_where_pictures_differ() -> None:
    vectors = {"seed": np.array([1.0, 0.0, 0.0]), "same-category": np.array([0.0, 1.0, 0.0]),
               "other": np.array([0.0, 0.0, 1.0])}  # fmt: skip
    cats = {"seed": {"pets": 0.9}, "same-category": {"pets": 0.9}, "other": {"travel": 0.9}}
    catalog = Catalog.build(vectors, cats)
    picks = recommend(catalog, {catalog.index()["seed"]: 1.0}, 2, Params())
    assert [p.image_id for p in picks] == ["same-category", "other"]
    assert picks[0].categories == pytest.approx(0.81) and picks[1].categories == 0.0


def _histories(catalog: Catalog, topic_of: dict[str, str], seed: int) -> dict[str, dict[int, float]]:
    rng = np.random.default_rng(seed)
    index = catalog.index()
    by_topic = {t: [i for i, x in topic_of.items() if x == t and not i.startswith("a-copy")] for t in "abc"}
    out = {}
    for n in range(40):
        liked = rng.choice(by_topic["abc"[n % 3]], size=8, replace=False)
        out[f"follower{n}"] = {index[str(i)]: 1.0 for i in liked}
    return out


def test_evaluation_is_reproducible_with_a_seed() -> None:
    catalog, topic_of = topics()
    histories = _histories(catalog, topic_of, 1)
    first = evaluate(catalog, histories, k=10, holdout=0.25, seed=7)
    assert evaluate(catalog, histories, k=10, holdout=0.25, seed=7) == first
    assert evaluate(catalog, histories, k=10, holdout=0.25, seed=8) != first
    assert (first["followers"], first["held_out"], first["k"]) == (40, 80, 10)
    assert split(histories, 0.25, 7).held == split(histories, 0.25, 7).held
    hits = first["hit_rate"]
    assert hits["feedlens"] > hits["random"] and hits["feedlens"] > hits["popularity"]
    assert set(first["recall"]) == {"feedlens", "popularity", "random"}


def test_engagements_and_recommendations_in_a_workspace(tmp_path: Path) -> None:
    lib = build(f"sqlite:///{tmp_path / 'feedlens.db'}", tmp_path)
    ws, ids = lib.workspace, lib.ids
    rng = np.random.default_rng(3)
    centres = {"coffee": rng.normal(size=DIM), "cats": rng.normal(size=DIM), "travel": rng.normal(size=DIM)}
    topic = {
        p: "cats" if p in ("p9", "p15", "p21", "p23") else "travel" if p in ("p4", "p14", "p22") else "coffee"
        for p in ids
    }
    with lib.database.session() as session:
        for post, images in ids.items():
            for image_id in images:
                vector = centres[topic[post]] + 0.8 * rng.normal(size=DIM)
                embeddings.put(session, image_id, "visual", "test", vector / np.linalg.norm(vector))
    service = lib.service.recommendations
    added = service.add(ws, [
        EngagementIn("@miso_fan", "like", image_id=ids["p21"][0]),
        EngagementIn("miso_fan", "share", platform="instagram", post_id="p23"),
        EngagementIn("miso_fan", "like", platform="instagram", post_id="gone"),
        EngagementIn("miso_fan", "like", image_id="not-an-image"),
    ])  # fmt: skip
    assert added == {"engagements": 2, "unknown": 2}
    assert service.add(ws, [EngagementIn("miso_fan", "like", image_id=ids["p21"][0])])["engagements"] == 1
    assert service.histories(ws)["miso_fan"] == {ids["p21"][0]: 1.0, ids["p23"][0]: 3.0}  # a share weighs 3
    found = service.recommend(ws, follower="Miso_Fan", k=2)
    assert found["engaged"] == 2 and {i["id"] for i in found["items"]} == {ids["p9"][0], ids["p15"][0]}
    by_author = service.recommend(ws, author="nomad.nik", k=3)
    assert by_author["items"] and ids["p4"][0] not in {i["id"] for i in by_author["items"]}
    with pytest.raises(NoHistoryError):
        service.recommend(ws, follower="nobody")
    with pytest.raises(CodedError):
        service.add(ws, [EngagementIn("x", "poke", image_id=ids["p1"][0])])
    report = service.evaluate(ws, source="authors", seed=3)
    assert report["source"] == "authors" and report["followers"] == 6  # every author has 2+ images
    feed = tmp_path / "engagements.jsonl"
    feed.write_text(
        json.dumps({"user": "bean_bob", "post_id": "p2", "platform": "instagram", "kind": "comment"}) + "\n"
        + json.dumps({"follower": "bean_bob", "image_id": ids["p3"][0], "at": "2026-03-05T10:00:00"}) + "\n"
        + "not json\n"
    )  # fmt: skip
    imported = service.import_file(ws, feed)
    assert (imported["engagements"], imported["error_count"]) == (2, 1)
    lib.database.dispose()
