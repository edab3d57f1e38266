"""`faces`: human faces, each with landmarks, head angles, crop quality, landmark-read attributes (smile,
eyes open, mouth open) and the FER mini-Xception 7-emotion distribution; an image-level emotion summary.

Pipeline per image (measured choices: benchmarks/faces_quality.py, docs/analyzers.md "faces"):
1. Candidates: NudeNet's face regions from the shared `body_regions` pass (free), BlazeFace on the whole
   image, and BlazeFace on those of 2x2 tiles of large images that lie near small faces or small people
   (the whole-image candidates, NudeNet's body regions, and `objects` / `pose` when they run:
   analyzers/face_tiling.py; `faces_tiling`, on by default). A later detector only adds faces the earlier
   ones do not have.
2. Verification (analyzers/face_verify.py): MediaPipe Face Mesh on a crop of each candidate, then again on
   a tighter crop around that first mesh, whose face probability (`face_score`) must reach
   `faces_verify_min_score`; faces it is not quite sure of are also shown to the ImageNet classifier,
   which drops animals' faces. This removes the cat, latte art, monkeys and other look-alikes BlazeFace
   and NudeNet report, and gives the 468 landmarks everything else is read from.
3. Per verified face: FER on a grey crop; MediaPipe Iris on both eyes (pupils and eyelid contours) of the
   `MAX_IRIS_FACES` largest faces (the eye readings of smaller faces in crowds are absent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from feedlens.analyzers.base import Analyzer, Upstream
from feedlens.analyzers.body_regions import MODEL_SIZE
from feedlens.analyzers.face_attributes import head_angles, measures, quality, read_attributes
from feedlens.analyzers.face_detect import (
    BLAZE_MIN_SCORE,
    Detection,
    blaze_input,
    combine,
    decode_blaze,
    same_face,
    tile_grid,
)
from feedlens.analyzers.face_emotions import emotion_crop, to_fer_input
from feedlens.analyzers.face_mesh import (
    IRIS_ENLARGE,
    MESH_ENLARGE,
    Square,
    eye_squares,
    iris_inputs,
    iris_points,
    mesh_inputs,
    mesh_points,
    mesh_square,
    named_points,
    refined_square,
)
from feedlens.analyzers.face_tiling import people_areas, person_boxes, tiles_near
from feedlens.analyzers.face_verify import (
    ANIMAL_MAX,
    FIRST_PASS_MIN,
    SECOND_PASS_ENLARGE,
    animal_classes,
    animal_probability,
    check_order,
    classifier_input,
)
from feedlens.core.results import Box
from feedlens.core.results.faces import (
    EMOTIONS,
    Face,
    FaceQuality,
    FacesResult,
    HeadPose,
    Point,
)
from feedlens.core.results.regions import BodyRegionsResult
from feedlens.runtime.sessions import InferenceSession, open_session

DECODE_TILED = 640  # tiles need resolution: a 12 MP JPEG decodes to 1000x750 (DCT 1/4), ~8 ms more than 320
CLASSIFIER = "efficientnet-lite0-onnx"  # the animal check's (the labels analyzer's default backbone)
MESH_CHUNK = 16  # Face Mesh crops per run: bounds memory for crowd photos
IRIS_MIN_EYE_PX = 8  # eye-corner distance (decoded px) below which the iris model has too little to see
MAX_IRIS_FACES = 5  # faces per image whose eyes the iris model reads (~10 ms a face), largest first


@dataclass(slots=True)
class FacesBatch:
    """What `_forward` needs: the decoded images and their pixels ((H, W, 3) uint8), NudeNet's faces, and
    per image the boxes of people other analyzers saw (where tiles may pay, analyzers/face_tiling.py)."""

    images: list[Image.Image]
    pixels: list[np.ndarray]
    first_pass: list[list[Detection]]  # per image, from the shared body_regions stage
    people: list[list[tuple[Box, bool]]]  # per image: (box, is a NudeNet body region)


@dataclass(frozen=True, slots=True)
class FoundFace:
    """One verified face before it becomes a result: detection, mesh (468, 3) and eye points (76, 3) in
    decoded-image pixels (eyes None when too small for the iris model), face probability, FER output."""

    detection: Detection
    mesh: np.ndarray
    eyes: tuple[np.ndarray, np.ndarray] | None
    face_score: float
    emotions: np.ndarray  # (7,)


class FacesAnalyzer(Analyzer[FacesBatch, FacesResult]):
    name = "faces"
    code_version = "faces-3"  # 3: tiles only near people, eyes of the 5 largest faces
    artifacts = (
        "nudenet-320n-onnx",
        "fer-emotion-tflite",
        "blazeface-onnx",
        "facemesh-onnx",
        "iris-onnx",
        CLASSIFIER,
        "imagenet-hierarchy",
    )
    input_size = MODEL_SIZE
    result_type = FacesResult
    depends_on = ("body_regions",)
    reads = ("objects", "pose")  # their person boxes say where tiles pay, when they run anyway

    max_iris_faces = MAX_IRIS_FACES
    _blaze: InferenceSession
    _mesh: InferenceSession
    _iris: InferenceSession
    _emotions: InferenceSession
    _classifier: InferenceSession
    _animals: np.ndarray  # (1000,) bool: ImageNet classes that are animals

    def decode_side(self) -> int:
        return DECODE_TILED if self.settings.faces_tiling else MODEL_SIZE

    def _load(self) -> None:
        threads = self.settings.threads_per_worker
        self._blaze = open_session(self.store.path("blazeface-onnx"), threads)
        self._mesh = open_session(self.store.path("facemesh-onnx"), threads)
        self._iris = open_session(self.store.path("iris-onnx"), threads)
        self._emotions = open_session(self.store.path("fer-emotion-tflite"), threads)
        self._classifier = open_session(self.store.path(CLASSIFIER), threads)
        self._animals = animal_classes(self.store.path("imagenet-hierarchy"))

    def preprocess(self, images: Sequence[Image.Image], upstream: Upstream) -> FacesBatch:
        """RGB images -> their pixels, NudeNet's faces and the people other analyzers saw."""
        floor = self.settings.faces_min_score
        first: list[list[Detection]] = []
        people: list[list[tuple[Box, bool]]] = []
        nones = [None] * len(images)
        objects, pose = upstream.get("objects") or nones, upstream.get("pose") or nones
        for found, seen, posed in zip(upstream["body_regions"], objects, pose, strict=True):
            assert isinstance(found, BodyRegionsResult)
            first.append([Detection(r.box, r.score, "nudenet") for r in found.faces(floor)])
            people.append(person_boxes(seen, posed, found, floor))
        decoded = [rgb(image) for image in images]
        return FacesBatch(decoded, [np.asarray(image) for image in decoded], first, people)

    def _forward(self, batch: FacesBatch) -> list[list[FoundFace]]:
        """Detect (whole image, then tiles where they pay), verify, then read each verified face's eyes
        and emotions."""
        out = []
        for image, pixels, first, people in zip(
            batch.images, batch.pixels, batch.first_pass, batch.people, strict=True
        ):
            whole = self._blaze_on(pixels, None, "blazeface")
            tiles = [
                face
                for tile in self._tiles(pixels, [d.box for d in (*first, *whole)], people)
                for face in self._blaze_on(pixels, tile, "blazeface-tile")
            ]
            candidates = combine(first, whole, tiles)[: self.settings.faces_max_candidates]
            out.append(self._verified(image, candidates))
        return out

    def _blaze_on(
        self, pixels: np.ndarray, region: tuple[int, int, int, int] | None, detector: str
    ) -> list[Detection]:
        """BlazeFace's faces in `region` (px; None: the whole image) of (H, W, 3) uint8 `pixels`."""
        where = blaze_input(pixels, region)
        outputs = self._blaze.run({"input:0": where.pixels[None]})
        height, width = pixels.shape[:2]
        return decode_blaze(outputs, where, width, height, BLAZE_MIN_SCORE, detector)

    def _tiles(
        self, pixels: np.ndarray, faces: list[Box], people: list[tuple[Box, bool]]
    ) -> list[tuple[int, int, int, int]]:
        """The tiles worth a BlazeFace run: none without `faces_tiling`; with `faces_tile_everywhere` all
        of a large image's; otherwise those near people who may be small (analyzers/face_tiling.py)."""
        height, width = pixels.shape[:2]
        grid = tile_grid(width, height) if self.settings.faces_tiling else []
        if not grid or self.settings.faces_tile_everywhere:
            return grid
        return [grid[k] for k in tiles_near(grid, people_areas(faces, people, width, height))]

    def _verified(self, image: Image.Image, candidates: list[Detection]) -> list[FoundFace]:
        """The candidates Face Mesh (twice) and the animal check take for human faces, without duplicates,
        with their second-pass mesh, eye points and emotion probabilities."""
        width, height = image.size
        floor = self.settings.faces_verify_min_score
        first = self._meshes(image, [mesh_square(d.box, width, height) for d in candidates])
        looked = [k for k, (_, score) in enumerate(first) if score >= min(FIRST_PASS_MIN, floor)]
        second = self._meshes(image, [refined_square(first[k][0], SECOND_PASS_ENLARGE) for k in looked])
        kept: list[tuple[Detection, np.ndarray, float]] = []
        for k, (mesh, score) in zip(looked, second, strict=True):
            extent = mesh_box(mesh, width, height)
            if score >= floor and not any(same_face(extent, mesh_box(m, width, height)) for _, m, _ in kept):
                kept.append((candidates[k], mesh, score))
        if floor > 0:
            kept = self._not_animals(image, kept)
        eyes = self._eyes(image, [m for _, m, _ in kept])
        gray = np.asarray(image.convert("L")) if kept else np.zeros((1, 1), dtype=np.uint8)
        crops = [emotion_crop(gray, d.box) for d, _, _ in kept]
        emotions = self._emotions.run({"x": to_fer_input(crops)})[0] if crops else np.zeros((0, 7))
        return [
            FoundFace(d, mesh, eye, score, emotions[k])
            for k, ((d, mesh, score), eye) in enumerate(zip(kept, eyes, strict=True))
        ]

    def _meshes(self, image: Image.Image, squares: list[Square]) -> list[tuple[np.ndarray, float]]:
        """Face Mesh on each crop: ((468, 3) image-pixel mesh, face probability) per crop."""
        out: list[tuple[np.ndarray, float]] = []
        for start in range(0, len(squares), MESH_CHUNK):
            part = squares[start : start + MESH_CHUNK]
            raw, flags, _ = self._mesh.run({"input_1": mesh_inputs(image, part)})
            out += [(mesh_points(raw[k], s), float(flags[k, 0])) for k, s in enumerate(part)]
        return out

    def _not_animals(
        self, image: Image.Image, kept: list[tuple[Detection, np.ndarray, float]]
    ) -> list[tuple[Detection, np.ndarray, float]]:
        """Drop the faces the ImageNet classifier sees as animals (the largest few faces are checked)."""
        width, height = image.size
        squares = [mesh_square(d.box, width, height) for d, _, _ in kept]
        chosen = check_order([s.side / MESH_ENLARGE for s in squares], [score for _, _, score in kept])
        if not chosen:
            return kept
        inputs = np.stack([classifier_input(image, squares[k]) for k in chosen])
        animal = animal_probability(self._classifier.run({"input": inputs})[0], self._animals)
        dropped = {k for k, p in zip(chosen, animal, strict=True) if p >= ANIMAL_MAX}
        return [face for k, face in enumerate(kept) if k not in dropped]

    def _eyes(
        self, image: Image.Image, meshes: list[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Iris-model points of both eyes per face; None for faces whose eyes are too small to read and
        beyond the `MAX_IRIS_FACES` largest (the cost stays bounded in crowds)."""
        pairs = [eye_squares(mesh) for mesh in meshes]
        sides = [min(right.side, left.side) / IRIS_ENLARGE for right, left in pairs]
        largest = set(sorted(range(len(pairs)), key=lambda k: -sides[k])[: self.max_iris_faces])
        squares = [p if k in largest and sides[k] >= IRIS_MIN_EYE_PX else None for k, p in enumerate(pairs)]
        wanted = [s for s in squares if s is not None]
        if not wanted:
            return [None] * len(meshes)
        raw = self._iris.run({"input_1:0": iris_inputs(image, wanted)})[0].reshape(2 * len(wanted), -1)
        out: list[tuple[np.ndarray, np.ndarray] | None] = []
        row = 0
        for pair in squares:
            if pair is None:
                out.append(None)
                continue
            out.append((iris_points(raw[row], pair[0], False), iris_points(raw[row + 1], pair[1], True)))
            row += 2
        return out

    def postprocess(
        self, outputs: list[list[FoundFace]], images: Sequence[Image.Image], upstream: Upstream
    ) -> list[FacesResult]:
        return [
            FacesResult.of([to_face(f, image) for f in found])
            for found, image in zip(outputs, images, strict=True)
        ]


def rgb(image: Image.Image) -> Image.Image:
    """The image in RGB, not copied when it already is (decoded images are)."""
    return image if image.mode == "RGB" else image.convert("RGB")


def mesh_box(mesh: np.ndarray, width: int, height: int) -> Box:
    """The box around a face's mesh points, normalised (clipped to the image)."""
    low, high = mesh[:, :2].min(axis=0), mesh[:, :2].max(axis=0)
    return Box.from_pixels(float(low[0]), float(low[1]), float(high[0]), float(high[1]), width, height)


def to_face(found: FoundFace, image: Image.Image) -> Face:
    """A verified face and its readings -> the result's Face."""
    width, height = image.size
    p = found.emotions.astype(np.float64)
    p = p / p.sum()  # the quantized model's softmax sums to 1 only within ~1e-6
    emotions = {e: round(float(v), 6) for e, v in zip(EMOTIONS, p, strict=True)}
    roll, yaw, pitch = head_angles(found.mesh)
    brightness, sharpness = quality(image, found.detection.box.to_pixels(width, height))
    points = named_points(found.mesh, found.eyes, width, height)
    attributes = read_attributes(
        measures(found.mesh, found.eyes), yaw, emotions["happy"], found.eyes is not None
    )
    return Face(
        box=found.detection.box,
        confidence=round(found.detection.score, 6),
        detector=found.detection.detector,
        emotions=emotions,
        dominant_emotion=max(EMOTIONS, key=lambda e: emotions[e]),
        face_score=round(found.face_score, 6),
        landmarks={name: Point(round(x, 6), round(y, 6)) for name, (x, y) in points.items()},
        head_pose=HeadPose(round(roll, 2), round(yaw, 2), round(pitch, 2)),
        quality=FaceQuality(round(brightness, 4), round(sharpness, 4)),
        smile=attributes.smile,
        eyes_open=attributes.eyes_open,
        mouth_open=attributes.mouth_open,
    )
