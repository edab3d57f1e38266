"""One model system: `categories train` trains through the model registry's recipe and registers a
production version; the production model (whichever way it got there) drives the workspace's categories;
fine-tuning with few labels and training without usable labels are refused with `not_enough_labels`; older
`category_models` rows stay readable and categorise until a registry model is in production."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from feedlens.services.access import AccessService
from feedlens.services.categories import CategoryError
from feedlens.services.categories.heads import CategoryHead
from feedlens.services.factory import Services
from feedlens.services.ingest import IngestItem
from feedlens.services.training import WORKSPACE, RegistryError, TrainOptions
from feedlens.services.training.categorising import KIND, tag
from feedlens.storage import categories as cats
from feedlens.storage import embeddings as vectors
from feedlens.training.crossval import FINETUNE_MIN_LABELS
from tests.support.category_stack import Stack, build_stack
from tests.support.tuxpaint import ANIMALS, FOOD, VEHICLES, pick, render, to_jpeg_bytes

CLASSES = (ANIMALS, FOOD, VEHICLES)
PER_CLASS = 4


@dataclass
class World:
    stack: Stack
    ids: dict[str, str]  # stamp key -> image id
    later: list[IngestItem]  # held-out stamps, ingested by a test


@pytest.fixture(scope="module")
def world(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    chosen, held = pick(CLASSES, PER_CLASS, 1)
    data = tmp_path_factory.mktemp("one-route")
    stack = build_stack(services, data, f"sqlite:///{data / 'feedlens.db'}")
    ids = stack.ingest([IngestItem(source=s.key, data=to_jpeg_bytes(render(s, 320))) for s in chosen])
    for stamp in chosen:
        stack.categories.label(stack.workspace, ids[stamp.key], [stamp.category], source="test")
    later = [IngestItem(source=s.key, data=to_jpeg_bytes(render(s, 320))) for s in held]
    yield World(stack, ids, later)
    stack.fetcher.close()
    stack.services.database.dispose()


def result(stack: Stack, image_id: str) -> dict[str, Any]:
    """An image's stored categories result (a plain dict)."""
    found = stack.result(image_id)
    assert isinstance(found, dict)
    return found


def model_versions(stack: Stack, image_ids: list[str]) -> set[int | None]:
    return {result(stack, i)["model_version"] for i in image_ids}


def test_bad_inputs_are_refused_before_training(world: World) -> None:
    stack = world.stack
    access = AccessService(stack.services.database)
    with pytest.raises(CategoryError) as none:
        stack.categories.train(access.create_workspace("no-labels"))
    assert none.value.code == "not_enough_labels" and "no images labelled" in none.value.message
    lonely = access.create_workspace("one-category")
    image = stack.ingest([world.later[0]], workspace=lonely)[world.later[0].source]
    stack.categories.label(lonely, image, [FOOD])
    with pytest.raises(CategoryError) as one:
        stack.categories.train(lonely)
    assert one.value.code == "not_enough_labels" and "at least two categories" in one.value.message
    with pytest.raises(CategoryError) as unknown:
        stack.categories.label(stack.workspace, next(iter(world.ids.values())), ["breakfast"])
    assert unknown.value.code == "unknown_category"
    with pytest.raises(CategoryError) as mode:
        stack.categories.train(stack.workspace, "deep")
    assert mode.value.code == "invalid_mode"
    assert stack.services.training.registry.versions(stack.workspace, "categories") == []


def test_finetune_is_refused_with_few_labels(world: World) -> None:
    stack = world.stack
    with pytest.raises(CategoryError) as refused:
        stack.categories.train(stack.workspace, "finetune")
    message = refused.value.message
    assert refused.value.code == "not_enough_labels"
    assert f"at least {FINETUNE_MIN_LABELS} labelled images in every category" in message
    assert f"{FOOD!r} has {PER_CLASS} ({FINETUNE_MIN_LABELS - PER_CLASS} more)" in message
    with pytest.raises(RegistryError) as direct:  # `feedlens train --mode finetune` says the same
        stack.services.training.train(stack.workspace, WORKSPACE, TrainOptions(mode="finetune"))
    assert direct.value.code == "not_enough_labels"
    assert stack.services.training.registry.versions(stack.workspace, "categories") == []


def test_older_category_models_stay_readable(world: World) -> None:
    """A model of the `category_models` table (the route before the merge) categorises while nothing is
    in production and is listed after the registry's versions."""
    stack, ws = world.stack, world.stack.workspace
    names = stack.categories.taxonomy(ws)[0].names
    head = CategoryHead(
        (FOOD,), np.zeros((1, 1280 + 2 * 384)), np.array([3.0]), np.array([PER_CLASS], dtype=np.int64)
    )
    with stack.services.database.session() as session:
        cats.add_model(
            session, ws, 1, head.to_bytes(), params={"kind": "linear-probe"}, metrics={"images": 4}
        )
    stack.categories.recategorize(ws)
    first = next(iter(world.ids.values()))
    food = next(c for c in result(stack, first)["categories"] if c["name"] == FOOD)
    assert result(stack, first)["model_version"] == 1 and food["trained"] == pytest.approx(0.952574, abs=1e-5)
    listed = stack.categories.models(ws)
    assert [(m["source"], m["current"]) for m in listed] == [("category_models", True)]
    assert len(names) > 1


def test_categories_train_registers_a_production_version(world: World) -> None:
    stack, ws = world.stack, world.stack.workspace
    report = stack.categories.train(ws, created_by="test")
    assert report.version == 1 and report.mode == "probe" and report.source == "registry"
    assert report.positives == dict.fromkeys(CLASSES, PER_CLASS) and report.images == 3 * PER_CLASS
    assert report.metrics["evaluated_on"] == "cross-validation"  # few labels: all train, none held back
    assert report.recategorized == len(world.ids) and any("few labels" in w for w in report.warnings)
    registry = stack.services.training.registry
    version = registry.get(ws, "categories", 1)
    assert version["aliases"] == ["production"] and version["created_by"] == "test"
    assert {"torch", "onnx", "metrics", "report"} <= set(version["artifacts"])
    assert model_versions(stack, list(world.ids.values())) == {1}  # the registry model, not the old one
    listed = stack.categories.models(ws)
    assert [(m["version"], m["source"], m["current"]) for m in listed] == [
        (1, "registry", True),
        (1, "category_models", False),
    ]
    # its probabilities are stored per model version: recategorising does not decode the images again
    with stack.services.database.session() as session:
        model_id = registry.rows(ws, "categories", [registry.deployment(ws, "categories").production_id])
        stored = vectors.get(session, list(world.ids.values()), KIND, tag(next(iter(model_id))))
    assert len(stored) == len(world.ids) and all(len(v) == len(CLASSES) for v in stored.values())


def test_the_production_model_drives_the_categories(world: World, tmp_path: Path) -> None:
    """A version trained with `feedlens train` (not promoted) changes nothing; promoting it does, for new
    images at once and for the stored ones when the workspace is recategorised (CLI and API do it)."""
    stack, ws = world.stack, world.stack.workspace
    training = stack.services.training
    v2 = training.train(ws, WORKSPACE, TrainOptions(mode="probe", seed=1, int8=False))
    assert v2["version"] == 2 and v2["aliases"] == []
    stack.categories.recategorize(ws)
    assert model_versions(stack, list(world.ids.values())) == {1}
    training.registry.promote(ws, "categories", 2)
    new = stack.ingest(world.later[1:])
    assert model_versions(stack, list(new.values())) == {2}
    assert stack.categories.recategorize(ws) == len(world.ids) + len(new)
    assert model_versions(stack, list(world.ids.values())) == {2}
    with stack.services.database.session() as session:
        assert cats.current_model(session, ws) is not None  # the older model is still there, unused
    training.registry.rollback(ws, "categories")
    stack.categories.recategorize(ws)
    assert model_versions(stack, [*world.ids.values(), *new.values()]) == {1}
