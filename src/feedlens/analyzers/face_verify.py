"""Is a face candidate a human face? Three checks, each measured on the labelled corpus
(benchmarks/faces_quality.py, docs/analyzers.md "faces"):

1. Face Mesh's face probability on the detector's crop (1.4x its box): drops most of what BlazeFace
   mistakes for faces (wheels, clocks, the cat's head: 0.00-0.01).
2. Face Mesh again on a tighter crop around the first mesh (1.2x the mesh's extent): a real face keeps
   its probability, most look-alikes (latte art, ducks, fruit, car lamps) lose it. This second mesh is the
   one the landmarks come from, so the framing does not depend on which detector found the face.
3. The ImageNet classifier (EfficientNet-Lite0, as in `labels`) on the face crop: when it puts at least
   `ANIMAL_MAX` of its probability on animal classes (WordNet "animal"), the face is an animal's (monkeys,
   pandas, a calf pass the mesh checks). Only faces the second mesh pass is less than `SURE_FACE` sure of
   are classified (the animal look-alikes on the corpus scored 0.81-0.99 there, most real faces 1.0: 15
   of 26 corpus faces skip the ~25 ms), at most `MAX_ANIMAL_CHECKS` per image, largest first. Chosen on
   the same corpus the false faces are counted on (docs/benchmarks.md): an in-sample choice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from feedlens.analyzers.face_mesh import Square
from feedlens.core.imageops import softmax

SECOND_PASS_ENLARGE = 1.2  # crop side / the first mesh's extent: real faces keep a high face probability
FIRST_PASS_MIN = 0.5  # the first pass's face probability a candidate needs to get a second look
ANIMAL_WNID = "n00015388"  # WordNet 3.0 "animal, animate being, beast, brute, creature, fauna"
ANIMAL_MAX = 0.6  # P(animal) from which a face crop counts as an animal's; real faces measured <= 0.51
SURE_FACE = 0.999  # second-pass face probability from which no animal check is made
MAX_ANIMAL_CHECKS = 4  # classifier runs per image (~25 ms each); animal look-alikes were all big faces
MIN_CHECK_PX = 24  # faces smaller than this (decoded px) are not classified: nothing to see at 224
CLASSIFIER_RESIZE, CLASSIFIER_CROP = 256, 224
CLASSIFIER_MEAN, CLASSIFIER_STD = 127.0, 128.0  # EfficientNet-Lite0's normalisation (docs/models.md)


def animal_classes(hierarchy_file: Path) -> np.ndarray:
    """(1000,) bool: the ImageNet classes under WordNet's "animal", from the `imagenet-hierarchy` artifact
    (per class the indices of its ancestor concepts)."""
    hierarchy = json.loads(hierarchy_file.read_text())
    concept = next(i for i, c in enumerate(hierarchy["concepts"]) if c["wnid"] == ANIMAL_WNID)
    return np.array([concept in ancestors for ancestors in hierarchy["ancestors"]], dtype=bool)


def classifier_input(image: Image.Image, square: Square) -> np.ndarray:
    """A face's square crop -> (3, 224, 224) classifier input, prepared like the labels analyzer's
    (shorter side to 256, the centre 224, (x - 127) / 128); cut without copying past the border."""
    crop = square.cut(image, CLASSIFIER_RESIZE) * 255.0  # (256, 256, 3)
    margin = (CLASSIFIER_RESIZE - CLASSIFIER_CROP) // 2
    centre = crop[margin : margin + CLASSIFIER_CROP, margin : margin + CLASSIFIER_CROP]
    return np.ascontiguousarray(
        ((centre - CLASSIFIER_MEAN) / CLASSIFIER_STD).transpose(2, 0, 1), dtype=np.float32
    )


def animal_probability(logits: np.ndarray, animals: np.ndarray) -> np.ndarray:
    """(N, 1000) classifier logits -> (N,) probability mass on animal classes."""
    probabilities: np.ndarray = softmax(logits.astype(np.float64))
    return np.asarray(probabilities[:, animals].sum(axis=1))


def check_order(sides: Sequence[float], scores: Sequence[float]) -> list[int]:
    """Indices of the faces to classify: of those at least `MIN_CHECK_PX` wide and less than `SURE_FACE`
    sure, the `MAX_ANIMAL_CHECKS` largest."""
    order = sorted(range(len(sides)), key=lambda k: -sides[k])
    return [k for k in order if sides[k] >= MIN_CHECK_PX and scores[k] < SURE_FACE][:MAX_ANIMAL_CHECKS]
