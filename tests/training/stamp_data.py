"""A small real labelled image set for the training tests: Tux Paint stamps of four well separated categories.

Animals, food, vehicles and text (letters and emoji faces) look nothing alike, so a few images per class
are enough to train on. Per class: 7 training and 3 validation images from the development half of
tests/support/tuxpaint.py's split, 6 test images from its test half, each chosen by a hash of the stamp's
path (not its folder order, which would give only birds). Rendered once per process, 256 px.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from feedlens.training.inputs import LabelledImages
from tests.support.tuxpaint import (
    ANIMALS,
    FOOD,
    TEXT,
    VEHICLES,
    Stamp,
    load_stamps,
    render,
    split,
    stamps_or_skip,
)

CLASSES = (ANIMALS, FOOD, VEHICLES, TEXT)
TRAIN, VAL, TEST = 7, 3, 6


@dataclass(frozen=True)
class StampSet:
    classes: tuple[str, ...]
    train: LabelledImages
    val: LabelledImages
    test: LabelledImages


def _pick(stamps: list[Stamp], category: str, n: int, skip: int = 0) -> list[Stamp]:
    members = sorted(
        (s for s in stamps if s.category == category), key=lambda s: hashlib.sha1(s.key.encode()).hexdigest()
    )
    return members[skip : skip + n]


def _labelled(groups: list[list[Stamp]]) -> LabelledImages:
    images = [render(s, 256) for group in groups for s in group]
    labels = [k for k, group in enumerate(groups) for _ in group]
    return LabelledImages(images, labels)


@lru_cache(maxsize=1)
def _load(root: Path) -> StampSet:
    stamps = [s for s in load_stamps(root) if s.category in CLASSES]
    dev, test = split(stamps)
    return StampSet(
        CLASSES,
        train=_labelled([_pick(dev, c, TRAIN) for c in CLASSES]),
        val=_labelled([_pick(dev, c, VAL, skip=TRAIN) for c in CLASSES]),
        test=_labelled([_pick(test, c, TEST) for c in CLASSES]),
    )


def stamp_set() -> StampSet:
    return _load(stamps_or_skip())
