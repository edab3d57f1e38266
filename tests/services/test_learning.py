"""Active learning for a workspace on real stamps and the real backbone: the labelling queue (uncertain,
diverse, only unlabelled images, a cold start) and the retraining loop (first candidate promoted, an equal
one not, history and curve, when the next automatic cycle is due)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from feedlens.services.factory import Services
from feedlens.services.feedback.learning import ActiveLearning, LearningError, decide
from feedlens.services.ingest import IngestItem
from feedlens.services.training import ActiveLearningError, TrainingService, TrainOptions
from tests.support.category_stack import TRAINING_ANALYZERS, Stack, build_stack
from tests.support.tuxpaint import (
    ANIMALS,
    FOOD,
    TEXT,
    VEHICLES,
    pick,
    render,
    to_jpeg_bytes,
)

CLASSES = (ANIMALS, FOOD, VEHICLES, TEXT)


@dataclass
class Loop:
    stack: Stack
    learning: ActiveLearning
    truth: dict[str, str]  # every ingested image id -> its category
    labelled: set[str]


@pytest.fixture(scope="module")
def loop(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    chosen, _ = pick(CLASSES, 12, 0)
    data = tmp_path_factory.mktemp("learning")
    stack = build_stack(services, data, f"sqlite:///{data / 'feedlens.db'}", TRAINING_ANALYZERS)
    settings = stack.services.settings.model_copy(
        update={"learning": stack.services.settings.learning.model_copy(update={"retrain_after": 10})}
    )
    training = TrainingService(
        stack.services.database,
        stack.services.blobs,
        stack.services.decoder,
        stack.services.store,
        settings,
        stack.categories,
    )
    ids = stack.ingest([IngestItem(source=s.key, data=to_jpeg_bytes(render(s, 320))) for s in chosen])
    truth = {ids[s.key]: s.category for s in chosen}
    yield Loop(stack, ActiveLearning(stack.services.database, training, settings), truth, set())
    stack.fetcher.close()
    stack.services.database.dispose()


def label(loop: Loop, image_ids: list[str]) -> None:
    for image_id in image_ids:
        loop.stack.categories.label(loop.stack.workspace, image_id, [loop.truth[image_id]], source="test")
        loop.labelled.add(image_id)


def test_cold_start_is_a_spread_random_sample(loop: Loop) -> None:
    ws = loop.stack.workspace
    first = next(i for i, c in loop.truth.items() if c == ANIMALS)
    label(loop, [first])  # one category labelled: nothing to be uncertain about yet
    queue = loop.learning.next(ws, 6)
    assert queue["cold_start"] and queue["strategy"] == "random" and queue["requested_strategy"] == "margin"
    picks = [p["image_id"] for p in queue["picks"]]
    assert len(picks) == 6 == len(set(picks)) and first not in picks
    assert queue["progress"] == {
        "labelled": 1,
        "unlabelled": len(loop.truth) - 1,
        "per_category": {ANIMALS: 1},
    }


def test_queue_picks_unlabelled_uncertain_images_spread_over_clusters(loop: Loop) -> None:
    ws = loop.stack.workspace
    by_class = {c: [i for i, k in loop.truth.items() if k == c and i not in loop.labelled] for c in CLASSES}
    label(loop, [i for c in CLASSES for i in by_class[c][:2]])
    plain = loop.learning.next(ws, 8, "margin", diversity=False)
    assert not plain["cold_start"] and plain["strategy"] == "margin"
    picked = [p["image_id"] for p in plain["picks"]]
    assert not set(picked) & loop.labelled and len(set(picked)) == 8
    u = [p["uncertainty"] for p in plain["picks"]]
    assert u == sorted(u, reverse=True) and all(0 <= x <= 1 for x in u)
    # every unpicked image is at most as uncertain as the last pick: these are the 8 most uncertain
    everything = loop.learning.next(ws, 200, "margin", diversity=False)
    assert [p["image_id"] for p in everything["picks"][:8]] == picked
    assert len(everything["picks"]) == len(loop.truth) - len(loop.labelled)
    spread = loop.learning.next(ws, 8, "margin", diversity=True)
    clusters = [p["cluster"] for p in spread["picks"]]
    assert spread["diversity"] and len(set(clusters)) >= 4, clusters
    assert spread["picks"][0]["image_id"] == picked[0]  # the most uncertain image leads either way
    probs = spread["picks"][0]["predicted"]
    assert probs[0]["category"] in CLASSES and probs[0]["probability"] >= probs[1]["probability"]
    assert loop.learning.next(ws, 8, "entropy", seed=3)["strategy"] == "entropy"


def test_retraining_cycles_promote_only_improvements(loop: Loop) -> None:
    ws, learning = loop.stack.workspace, loop.learning
    rest = [i for i in loop.truth if i not in loop.labelled]
    label(loop, rest[: len(rest) // 2])
    assert learning.due(ws)  # >= 10 labelled images and no cycle yet
    first = learning.cycle(ws, TrainOptions(mode="probe", int8=False), created_by="test")
    assert first["promoted"] and first["production_version"] is None and first["holdout"] > 0
    assert first["candidate_score"] is not None and first["labels"] == len(loop.labelled)
    production = learning.training.registry.deployment(ws, "categories").production_id
    assert production is not None and not learning.due(ws)
    # the same labels again: the candidate is no better, so it is not promoted
    same = learning.cycle(ws, TrainOptions(mode="probe", int8=False), created_by="test")
    assert not same["promoted"] and same["production_version"] == first["candidate_version"]
    assert same["candidate_score"] == pytest.approx(same["production_score"])
    assert "not better by the margin" in same["reason"]
    assert learning.training.registry.deployment(ws, "categories").production_id == production
    # more labels: the curve gains a point; the next automatic cycle is 10 labels later
    label(loop, [i for i in loop.truth if i not in loop.labelled])
    third = learning.cycle(ws, TrainOptions(mode="probe", int8=False), margin=0.0)
    status = learning.status(ws)
    assert [c["labels"] for c in status["curve"]] == [first["labels"], first["labels"], len(loop.truth)]
    assert (
        status["next_cycle_at"] == len(loop.truth) + 10
        and status["cycles"][-1]["promoted"] == third["promoted"]
    )
    # the holdout is the stable split's test part less anything either model trained on (a class with no
    # training item borrows a test item: the first model, trained on half the labels, may have seen one)
    registry = learning.training.registry
    seen = set(registry.rows(ws, "categories", [production])[production].training["seen_keys"])
    candidate = registry.artifact(ws, "categories", third["candidate_version"], "torch")[1]
    seen |= set(candidate.training["seen_keys"])
    test_part = set(_holdout_keys(learning, ws))
    assert third["holdout"] == len(test_part - seen) > 0


def _holdout_keys(learning: ActiveLearning, workspace: int) -> list[str]:
    from feedlens.training.splits import stable_split

    data, _ = learning.training.workspace_dataset(workspace)
    return [i.key for i in stable_split(data, 0.15, 0.15, 0).test]


def test_decision_rule() -> None:
    assert decide(0.80, None, 0.01) == (True, "no production model to compare with")
    assert decide(0.81, 0.80, 0.01)[0] and not decide(0.805, 0.80, 0.01)[0]
    assert not decide(0.70, 0.80, 0.0)[0]  # worse is never promoted
    assert not decide(None, 0.80, 0.0)[0]
    assert decide(None, None, 0.01)[0]  # the first model, even when the holdout is still empty


def test_bad_requests(loop: Loop) -> None:
    ws = loop.stack.workspace
    with pytest.raises(LearningError):
        loop.learning.next(ws, 0)
    with pytest.raises(ActiveLearningError) as unknown:
        loop.learning.next(ws, 5, "bogus")
    assert unknown.value.code == "unknown_strategy"
    with pytest.raises(LearningError):
        loop.learning.cycle(ws, metric="f2")
    assert np.isfinite(len(loop.learning.status(ws)["cycles"]))
