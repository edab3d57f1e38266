"""The feedback loop's corrections and moderation review queue.

The queue and calibration run on SQLite and PostgreSQL over image rows whose `safety` results carry chosen
scores (written through the same repository call the pipeline's results go through): the sample photos
are all safe, and scores picked by hand make the ordering and the calibration checkable. Corrections run
on the real stack (real models, sample photos, SQLite): they change the labels training reads and the A/B
live accuracy of recorded predictions; hidden-until-reviewed images leave listings and word search.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score

from feedlens.config import ReviewSettings, Settings
from feedlens.core.filters import ImageFilter
from feedlens.core.results.safety import SafetyResult
from feedlens.services.categories import CategoryError
from feedlens.services.factory import Services
from feedlens.services.feedback import CorrectionError, CorrectionService, ReviewError, ReviewService, assess
from feedlens.services.ingest import IngestItem, chain_hooks
from feedlens.services.training import ModelRegistry, TrainingService
from feedlens.services.training.serving import Prediction
from feedlens.storage import categories as cats
from feedlens.storage import repositories as repo
from feedlens.storage.database import Database
from feedlens.storage.tables import Image
from tests.support.category_stack import FOOD, PEOPLE, PETS, Stack, build_stack
from tests.support.safety import put_safety, safety_result

SAMPLES = ("chelsea.png", "coffee.png", "astronaut.png", "motorcycle.png")
# name -> (explicit_nudity, suggestive, verdict) with the default thresholds (explicit 0.5, suggestive 0.6)
CHOSEN = {
    "explicit": (0.95, 0.20, "explicit"),  # risk 0.95, far from both thresholds
    "borderline": (0.00, 0.58, "safe"),  # safe, 0.02 under the suggestive threshold: uncertain
    "suggestive": (0.00, 0.75, "suggestive"),  # flagged, 0.15 from the threshold: certain
    "barely": (0.52, 0.00, "explicit"),  # flagged, 0.02 over the explicit threshold
    "safe": (0.05, 0.10, "safe"),  # nothing to review
}


def add_images(database: Database, workspace_name: str, names: list[str]) -> tuple[int, dict[str, str]]:
    with database.session() as session:
        workspace = repo.ensure_workspace(session, workspace_name)
        ids = {}
        for name in names:
            sha = hashlib.sha256(f"{workspace_name}/{name}".encode()).hexdigest()
            image = Image(
                workspace_id=workspace, sha256=sha, blob=sha, format="png", width=64, height=64, size_bytes=1
            )
            session.add(image)
            session.flush()
            ids[name] = image.id
    return workspace, ids


def visible(database: Database, workspace: int) -> set[str]:
    with database.session() as session:
        page, _ = repo.list_images(session, workspace, ImageFilter(hide_unreviewed=True), 200)
        return {i.id for i in page}


# -- the queue, decisions and hiding (SQLite and PostgreSQL) ------------------------------------------------
def test_queue_orders_by_risk_and_uncertainty_and_records_decisions(db: Database, settings: Settings) -> None:
    workspace, ids = add_images(db, "team", list(CHOSEN))
    other, other_ids = add_images(db, "elsewhere", ["explicit"])
    for name, scores in CHOSEN.items():
        put_safety(db, ids[name], *scores)
    put_safety(db, other_ids["explicit"], *CHOSEN["explicit"])
    review = ReviewService(db, settings)
    review.after_ingest(workspace, list(ids.values()))  # the ingest hook: flagged or uncertain are queued
    queue = review.queue(workspace, limit=10)
    # priority = risk + 0.25 x uncertainty, uncertainty = 1 - distance to the nearest threshold / 0.1
    expected = {"explicit": 0.95, "borderline": 0.58 + 0.25 * 0.8, "suggestive": 0.75, "barely": 0.52 + 0.2}
    assert [i["image_id"] for i in queue] == [
        ids[n] for n in ("explicit", "borderline", "suggestive", "barely")
    ]
    for item in queue:
        name = next(n for n, i in ids.items() if i == item["image_id"])
        assert item["priority"] == pytest.approx(expected[name]) and item["state"] == "pending"
    assert review.queue(workspace, limit=2) == queue[:2]
    assert [i["image_id"] for i in review.queue(other)] == []  # the other workspace's image: not queued here
    assert review.scan(other)["pending"] == 1

    # hidden until reviewed: every queued image is out of the listing; the safe one never entered
    assert visible(db, workspace) == {ids["safe"]}
    with db.session() as session:  # without the flag nothing is hidden
        assert repo.count_images(session, workspace, ImageFilter()) == len(CHOSEN)

    approved = review.decide(workspace, ids["borderline"], "approve", "a beach photo", by="key:1")
    assert approved is not None and approved["state"] == "approved" and approved["verdict_before"] == "safe"
    assert approved["risk"] == pytest.approx(0.58) and approved["created_by"] == "key:1"
    review.decide(workspace, ids["explicit"], "reject", "nudity", by="key:1")
    review.decide(workspace, ids["suggestive"], "escalate", "ask legal", by="key:1")
    assert [i["image_id"] for i in review.queue(workspace)] == [ids["barely"]]
    assert [i["image_id"] for i in review.queue(workspace, state="escalated")] == [ids["suggestive"]]
    assert visible(db, workspace) == {ids["safe"], ids["borderline"]}  # rejected and escalated stay hidden
    review.decide(
        workspace, ids["suggestive"], "approve", "legal says fine"
    )  # an escalation is decided later
    status = review.status(workspace, ids["suggestive"])
    assert status is not None and status["state"] == "approved"
    assert [d["decision"] for d in status["decisions"]] == ["approve", "escalate"]

    for image_id, decision, code in (
        (ids["safe"], "approve", "not_in_review"),  # never queued
        (ids["borderline"], "reject", "not_in_review"),  # already decided: a correction changes it
        (ids["barely"], "delete", "invalid_decision"),
    ):
        with pytest.raises(ReviewError) as info:
            review.decide(workspace, image_id, decision)
        assert info.value.code == code
    assert review.decide(workspace, "no-such-image", "approve") is None
    assert review.decide(other, ids["barely"], "approve") is None  # another workspace's image is not found

    # a rescan keeps decisions; a pending image whose newest result is safe leaves the queue
    put_safety(db, ids["barely"], 0.1, 0.0, "safe")
    found = review.scan(workspace)
    assert found == {"scanned": 5, "queued": 3, "removed": 1, "pending": 0}
    assert review.status(workspace, ids["explicit"])["state"] == "rejected"  # type: ignore[index]
    assert review.status(workspace, ids["barely"])["state"] == "none"  # type: ignore[index]


def test_calibration_matches_scikit_learn(db: Database, settings: Settings) -> None:
    rng = np.random.default_rng(8)
    names = [f"img{i}" for i in range(40)]
    workspace, ids = add_images(db, "team", names)
    review = ReviewService(db, settings)
    risks = rng.uniform(0.0, 1.0, len(names))
    truth = (risks + rng.normal(0.0, 0.2, len(names))) > 0.55  # people mostly, not always, agree
    for name, risk, unsafe in zip(names, risks, truth, strict=True):
        verdict = "explicit" if risk >= 0.5 else "safe"
        put_safety(db, ids[name], float(risk), float(risk) * 0.5, verdict)
        # first a wrong decision, then the right one: the newest wins
        review.record_verdict(workspace, ids[name], "safe" if unsafe else "explicit")
        review.record_verdict(workspace, ids[name], "explicit" if unsafe else "safe")
    # an escalation says nothing about the truth: not counted
    _, extra_ids = add_images(db, "team", ["escalated"])
    put_safety(db, extra_ids["escalated"], 0.9, 0.0, "explicit")
    review.scan(workspace)
    review.decide(workspace, extra_ids["escalated"], "escalate")
    found = review.calibration(workspace, target_precision=0.8)
    assert found["decisions"] == len(names) and found["unsafe"] == int(truth.sum())
    for point in found["grid"]:
        predicted = risks >= point["threshold"]
        if predicted.any():
            assert point["precision"] == pytest.approx(precision_score(truth, predicted))
        else:
            assert point["precision"] is None
        assert point["recall"] == pytest.approx(recall_score(truth, predicted))
        assert point["flagged"] == int(predicted.sum())
    current = risks >= settings.safety_suggestive_threshold
    assert found["current"]["threshold"] == settings.safety_suggestive_threshold
    assert found["current"]["precision"] == pytest.approx(precision_score(truth, current))
    flagged = risks >= settings.safety_explicit_threshold  # the verdicts given above
    assert found["current_verdicts"]["recall"] == pytest.approx(recall_score(truth, flagged))
    reaching = [
        t
        for t in (p["threshold"] for p in found["grid"])
        if (risks >= t).any() and precision_score(truth, risks >= t) >= 0.8
    ]
    assert found["suggested"]["threshold"] == min(reaching)
    empty = review.calibration(add_images(db, "new", [])[0])
    assert empty["decisions"] == 0 and empty["suggested"] is None and empty["current"]["precision"] is None


def test_assessment_follows_the_settings(settings: Settings) -> None:
    wide = settings.model_copy(update={"review": ReviewSettings(margin=0.3, uncertainty_weight=1.0)})
    result = SafetyResult.from_dict(safety_result(0.0, 0.4, "safe"))
    assert not assess(result, settings).queued  # 0.2 under the threshold: certain with margin 0.1
    found = assess(result, wide)
    assert found.queued and found.uncertainty == pytest.approx(1 - 0.2 / 0.3)
    assert found.priority == pytest.approx(0.4 + found.uncertainty)
    assert assess(SafetyResult.empty(), settings).risk == 0.0


# -- corrections on the real stack -------------------------------------------------------------------------
@dataclasses.dataclass
class World:
    stack: Stack
    review: ReviewService
    corrections: CorrectionService
    training: TrainingService
    ids: dict[str, str]


@pytest.fixture(scope="module")
def world(services: Services, sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("feedback")
    stack = build_stack(services, data, f"sqlite:///{data / 'feedlens.db'}")
    database, settings = stack.services.database, stack.services.settings
    review = ReviewService(database, settings)
    stack.ingestor.after_commit = chain_hooks(stack.ingestor.after_commit, review.after_ingest)
    ids = stack.ingest([IngestItem(source=n, path=sample_dir / n) for n in SAMPLES])
    training = TrainingService(
        database,
        stack.services.blobs,
        stack.services.decoder,
        stack.services.store,
        settings,
        stack.categories,
    )
    yield World(stack, review, CorrectionService(database, stack.categories, review), training, ids)
    stack.fetcher.close()
    database.dispose()


def labels(world: World) -> dict[str, tuple[set[str], set[str]]]:
    with world.stack.services.database.session() as session:
        return cats.workspace_labels(session, world.stack.workspace)


def training_labels(world: World, image_id: str) -> list[str]:
    data, _ = world.training.workspace_dataset(world.stack.workspace)
    return [item.label for item in data.items if item.key == image_id]


def test_sample_photos_are_safe_and_not_queued(world: World) -> None:
    assert world.review.queue(world.stack.workspace) == []
    for image_id in world.ids.values():
        assert world.review.status(world.stack.workspace, image_id)["state"] == "none"  # type: ignore[index]


def test_corrections_become_training_labels_and_live_accuracy(world: World) -> None:
    ws, ids, corrections = world.stack.workspace, world.ids, world.corrections
    registry: ModelRegistry = world.training.registry
    # a production model whose predictions were recorded for the photos (as serving records them)
    model = registry.register(
        ws,
        "categories",
        mode="probe",
        dataset_hash="0" * 64,
        provenance="test",
        classes=[FOOD, PETS],
        params={},
        metrics={},
        training={},
        artifacts={},
        runtime="fp32",
        created_by="test",
    )
    registry.promote(ws, "categories", model["version"])
    model_id = registry.deployment(ws, "categories").production_id
    assert model_id is not None
    said = {"chelsea.png": PETS, "coffee.png": PETS, "astronaut.png": FOOD}  # coffee and astronaut: wrong
    world.training.server.record(
        ws,
        "categories",
        [ids[n] for n in said],
        [
            [
                Prediction(
                    model_id, model["version"], "production", True, {c: float(c == p) for c in (FOOD, PETS)}
                )
            ]
            for p in said.values()
        ],
    )
    assert registry.ab_status(ws, "categories")["production"]["labelled"] == 0

    # confirm the cat's categories: its assigned categories become labels, the served prediction is recorded
    cat = world.stack.result(ids["chelsea.png"])
    done = corrections.correct(ws, ids["chelsea.png"], confirm=True, by="key:7")
    assert done is not None
    (record,) = done["corrections"]
    assert record["previous"]["assigned"] == cat["assigned"] and PETS in cat["assigned"]
    assert record["previous"]["trained"] == {
        "version": 1,
        "arm": "production",
        "label": PETS,
        "confidence": 1.0,
    }
    assert record["model_version"].startswith("social-media@1/zero-shot") and record["created_by"] == "key:7"
    assert labels(world)[ids["chelsea.png"]][0] == set(cat["assigned"])
    # correct the coffee: food, not pets
    corrections.correct(ws, ids["coffee.png"], categories=["Food & Drink"], not_=[PETS], by="key:7")
    assert labels(world)[ids["coffee.png"]] == ({FOOD}, {PETS})
    status = registry.ab_status(ws, "categories")["production"]
    assert (status["labelled"], status["accuracy"]) == (2, 0.5)  # right on the cat, wrong on the coffee
    corrections.correct(ws, ids["astronaut.png"], categories=[PEOPLE], by="key:7")
    status = registry.ab_status(ws, "categories")["production"]
    assert (status["labelled"], status["accuracy"]) == (3, pytest.approx(1 / 3))  # food: wrong
    # the training set is what the corrections said, and the newest correction wins
    assert training_labels(world, ids["coffee.png"]) == [FOOD]
    corrections.correct(ws, ids["coffee.png"], categories=[PETS], not_=[FOOD], by="key:8")
    assert training_labels(world, ids["coffee.png"]) == [PETS]
    assert registry.ab_status(ws, "categories")["production"]["accuracy"] == pytest.approx(2 / 3)
    history = corrections.history(ws, ids["coffee.png"])
    assert history is not None and [h["created_by"] for h in history] == ["key:8", "key:7"]
    assert history[0]["value"] == {"categories": [PETS], "not": [FOOD], "confirm": False}

    # confirming `other` says the image shows none of the categories (a result that assigned nothing)
    with world.stack.services.database.session() as session:
        nothing = {"assigned": ["other"], "categories": [], "taxonomy": "social-media", "taxonomy_version": 1}
        repo.add_analyses(session, ids["motorcycle.png"], {"categories": nothing}, {"categories": "test"})
    (record,) = corrections.correct(ws, ids["motorcycle.png"], confirm=True)["corrections"]  # type: ignore[index]
    pos, neg = labels(world)[ids["motorcycle.png"]]
    assert not pos and neg == set(world.stack.categories.taxonomy(ws)[0].names)
    assert record["previous"]["assigned"] == ["other"] and record["previous"]["trained"] is None


def test_safety_corrections_become_decisions(world: World) -> None:
    ws, ids = world.stack.workspace, world.ids
    done = world.corrections.correct(
        ws, ids["astronaut.png"], safety="suggestive", reason="swimsuit", by="cli"
    )
    assert done is not None and done["decision"]["decision"] == "reject"
    (record,) = done["corrections"]
    assert record["kind"] == "safety" and record["previous"]["verdict"] == "safe"
    assert record["value"] == {"verdict": "suggestive", "confirmed": False, "reason": "swimsuit"}
    assert record["model_version"].startswith("safety")
    assert ids["astronaut.png"] not in visible(world.stack.services.database, ws)
    confirmed = world.corrections.correct(ws, ids["astronaut.png"], safety="safe", by="cli")
    assert confirmed is not None and confirmed["decision"]["state"] == "approved"
    assert world.review.calibration(ws)["decisions"] == 1  # one image, its newest decision


def test_bad_corrections_change_nothing(world: World) -> None:
    ws, ids = world.stack.workspace, world.ids
    before = labels(world)
    history = world.corrections.history(ws, ids["coffee.png"])
    for call, code in (
        (
            lambda: world.corrections.correct(ws, ids["coffee.png"], categories=["unicorns"]),
            "unknown_category",
        ),
        (
            lambda: world.corrections.correct(ws, ids["coffee.png"], categories=[FOOD], not_=[FOOD]),
            "label_conflict",
        ),
        (lambda: world.corrections.correct(ws, ids["coffee.png"]), "empty_correction"),
        (
            lambda: world.corrections.correct(ws, ids["coffee.png"], categories=[FOOD], safety="nsfw"),
            "invalid_verdict",
        ),
    ):
        with pytest.raises((CategoryError, CorrectionError, ReviewError)) as info:
            call()
        assert info.value.code == code  # type: ignore[union-attr]
    assert labels(world) == before and world.corrections.history(ws, ids["coffee.png"]) == history
    assert world.corrections.correct(ws, "nope", confirm=True) is None
    assert world.corrections.history(ws, "nope") is None


def test_hidden_until_reviewed_leaves_search(world: World) -> None:
    ws, ids = world.stack.workspace, world.ids
    hiding = world.stack.services.settings.model_copy(update={"review": ReviewSettings(hide_unreviewed=True)})
    search = world.stack.services.with_settings(hiding).search
    found = {h.image_id for h in search.text(ws, "a cat", min_score=0.0, limit=10)}
    assert ids["chelsea.png"] in found
    database = world.stack.services.database
    put_safety(database, ids["chelsea.png"], 0.0, 0.9, "suggestive")
    world.review.scan(ws)
    assert ids["chelsea.png"] not in {h.image_id for h in search.text(ws, "a cat", min_score=0.0, limit=10)}
    with_filter = search.text(ws, "a cat", filters=ImageFilter(label="cat"), min_score=0.0)
    assert ids["chelsea.png"] not in {h.image_id for h in with_filter}
    assert ids["chelsea.png"] not in visible(database, ws)
    # without the setting, search shows it
    shown = world.stack.services.with_settings().search.text(ws, "a cat", min_score=0.0, limit=10)
    assert ids["chelsea.png"] in {h.image_id for h in shown}
    world.review.decide(ws, ids["chelsea.png"], "approve", "a cat")
    assert ids["chelsea.png"] in {h.image_id for h in search.text(ws, "a cat", min_score=0.0, limit=10)}
