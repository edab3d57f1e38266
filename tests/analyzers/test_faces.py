"""The faces analyzer with its real models on real photos: detection, verification, small faces, bad
inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps
from pydantic import TypeAdapter

from feedlens.analyzers.body_regions import BodyRegionsAnalyzer
from feedlens.analyzers.faces import FacesAnalyzer
from feedlens.core.results import Box
from feedlens.core.results.faces import FacesResult, Sentiment
from feedlens.core.results.objects import DetectedObject, ObjectsResult
from feedlens.images import ImageDecoder
from feedlens.services.factory import Services

ASTRONAUT_FACE = (173, 82, 274, 180)  # hairline to chin, px in the 512x512 photo (hand-checked)
GRACE_FACE = (169, 142, 359, 341)  # in the 512x600 photo


@pytest.fixture(scope="module")
def detect(services: Services) -> BodyRegionsAnalyzer:
    return BodyRegionsAnalyzer(services.store, services.settings)


@pytest.fixture(scope="module")
def faces(services: Services) -> FacesAnalyzer:
    return FacesAnalyzer(services.store, services.settings)  # the defaults: tiles and verification on


def run(faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, images: list[Image.Image]) -> list[FacesResult]:
    return faces(images, {"body_regions": detect(images)})


def load(decoder: ImageDecoder, path: Path) -> Image.Image:
    return decoder.decode(path, min_side=640).image


def covers(box: Box, face: tuple[int, int, int, int], width: int, height: int, slack: float = 0.1) -> bool:
    """The box covers the face up to `slack` of the face's size on each side (redaction needs the whole)."""
    x0, y0, x1, y1 = box.to_pixels(width, height)
    fx0, fy0, fx1, fy1 = face
    dx, dy = slack * (fx1 - fx0), slack * (fy1 - fy0)
    return x0 <= fx0 + dx and y0 <= fy0 + dy and x1 >= fx1 - dx and y1 >= fy1 - dy


def test_astronaut_has_one_happy_verified_face(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    image = load(decoder, sample_dir / "astronaut.png")
    [result] = run(faces, detect, [image])
    assert result.count == 1
    face = result.faces[0]
    assert face.dominant_emotion == "happy" and face.emotions["happy"] > 0.8
    assert covers(face.box, ASTRONAUT_FACE, *image.size)
    assert face.face_score is not None and face.face_score > 0.99
    assert result.emotion_summary is not None and result.emotion_summary.sentiment is Sentiment.POSITIVE


def test_grace_hopper_has_a_face(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    image = load(decoder, sample_dir / "grace_hopper.jpg")
    [result] = run(faces, detect, [image])
    assert result.count == 1
    assert covers(result.faces[0].box, GRACE_FACE, *image.size)
    assert result.faces[0].dominant_emotion != "happy"  # a composed portrait, not a smile


def test_the_cat_is_not_a_human_face(
    faces: FacesAnalyzer,
    detect: BodyRegionsAnalyzer,
    decoder: ImageDecoder,
    sample_dir: Path,
    services: Services,
) -> None:
    image = load(decoder, sample_dir / "chelsea.png")
    assert run(faces, detect, [image])[0] == FacesResult.empty()
    # BlazeFace does take the cat's head for a face: verification is what drops it.
    unverified = FacesAnalyzer(
        services.store, services.settings.model_copy(update={"faces_verify_min_score": 0.0})
    )
    [raw] = run(unverified, detect, [image])
    assert raw.count >= 1 and {f.detector for f in raw.faces} <= {"blazeface", "blazeface-tile"}


def test_photos_without_people_have_no_face(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    names = ["coffee.png", "rocket.jpg", "hubble_deep_field.jpg", "motorcycle.png", "china.jpg", "flower.jpg"]
    for name, result in zip(
        names, run(faces, detect, [load(decoder, sample_dir / n) for n in names]), strict=True
    ):
        assert result == FacesResult.empty(), name


def test_batching_does_not_change_results(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    images = [load(decoder, sample_dir / n) for n in ("astronaut.png", "chelsea.png", "grace_hopper.jpg")]
    batched = run(faces, detect, images)
    single = [run(faces, detect, [im])[0] for im in images]
    assert [r.count for r in batched] == [r.count for r in single] == [1, 0, 1]
    assert batched == single


def test_face_touching_the_top_left_border(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    # Cut through the forehead and the left cheek: the face box must reach the image border.
    image = load(decoder, sample_dir / "astronaut.png").crop((190, 100, 512, 512))
    [result] = run(faces, detect, [image])
    assert result.count == 1
    box = result.faces[0].box
    assert box.x0 < 0.02 and box.y0 < 0.02
    assert result.faces[0].dominant_emotion == "happy"


def group_scene(sample_dir: Path, face_height: int) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """Four real faces (the astronaut's and Grace Hopper's, each also mirrored), `face_height` px tall,
    feathered into a 1280x960 copy of the china photo: small faces in a big real scene."""
    scene = Image.open(sample_dir / "china.jpg").convert("RGB").resize((1280, 960))
    truth = []
    for k, (name, face, at) in enumerate(
        [("astronaut.png", ASTRONAUT_FACE, (150, 200)), ("grace_hopper.jpg", GRACE_FACE, (900, 150)),
         ("astronaut.png", ASTRONAUT_FACE, (400, 650)), ("grace_hopper.jpg", GRACE_FACE, (1000, 700))]
    ):  # fmt: skip
        x0, y0, x1, y1 = face
        fw, fh = x1 - x0, y1 - y0
        head = (
            Image.open(sample_dir / name)
            .convert("RGB")
            .crop((x0 - fw // 2, y0 - fh // 2, x1 + fw // 2, y1 + fh // 2))
        )
        head = ImageOps.mirror(head) if k >= 2 else head
        scale = face_height / fh
        head = head.resize((round(head.width * scale), round(head.height * scale)), Image.Resampling.LANCZOS)
        mask = Image.new("L", head.size, 0)
        ImageDraw.Draw(mask).ellipse((0, 0, head.width - 1, head.height - 1), fill=255)
        scene.paste(head, at, mask.filter(ImageFilter.GaussianBlur(head.width / 12)))
        left, top = at[0] + (fw // 2) * scale, at[1] + (fh // 2) * scale
        truth.append((round(left), round(top), round(left + fw * scale), round(top + fh * scale)))
    return scene, truth


def people_under(truth: list[tuple[int, int, int, int]], width: int, height: int) -> ObjectsResult:
    """What the objects analyzer reports for people whose heads are `truth`: a Person box from each
    head down to 6 head heights (a standing person)."""
    people = [
        DetectedObject(
            "person", "Person", "person", 0.8,
            Box.from_pixels(x0 - (x1 - x0), y0, x1 + (x1 - x0), y0 + 6 * (y1 - y0), width, height), 0.7,
        )
        for x0, y0, x1, y1 in truth
    ]  # fmt: skip
    return ObjectsResult(tuple(people))


def test_small_faces_of_people_in_a_big_scene_are_found_by_default(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, sample_dir: Path
) -> None:
    scene, truth = group_scene(sample_dir, face_height=40)
    assert detect([scene])[0].faces(0.3) == ()  # NudeNet's shared pass (faces-1's default) finds none
    upstream: dict[str, list[Any]] = {
        "body_regions": detect([scene]),
        "objects": [people_under(truth, *scene.size)],
    }
    [result] = faces([scene], upstream)
    found = [t for t in truth if any(covers(f.box, t, *scene.size, slack=0.2) for f in result.faces)]
    assert len(found) >= 3 and result.count <= 4
    assert {f.detector for f in result.faces} <= {"blazeface", "blazeface-tile"}


def test_tiles_are_what_finds_the_smallest_faces(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, sample_dir: Path, services: Services
) -> None:
    scene, _ = group_scene(sample_dir, face_height=32)
    untiled = FacesAnalyzer(services.store, services.settings.model_copy(update={"faces_tiling": False}))
    everywhere = FacesAnalyzer(
        services.store, services.settings.model_copy(update={"faces_tile_everywhere": True})
    )
    with_tiles = run(everywhere, detect, [scene])[0].count
    assert with_tiles >= 3 and run(untiled, detect, [scene])[0].count < with_tiles


def test_tiles_run_only_near_people(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, sample_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cost guard: a large photo where no one is seen gets one BlazeFace run, not five; a person in
    one corner adds the tiles around that person only."""
    runs: list[object] = []
    original = FacesAnalyzer._blaze_on

    def counted(self: FacesAnalyzer, *args: Any) -> Any:
        runs.append(args[1])
        return original(self, *args)

    monkeypatch.setattr(FacesAnalyzer, "_blaze_on", counted)
    scene = Image.open(sample_dir / "china.jpg").convert("RGB").resize((1280, 960))
    assert run(faces, detect, [scene])[0].count == 0 and runs == [None]
    runs.clear()
    corner = people_under([(100, 40, 120, 60)], *scene.size)
    faces([scene], {"body_regions": detect([scene]), "objects": [corner]})
    assert runs == [None, (0, 0, 704, 704)]


@pytest.mark.parametrize(
    "size, color",
    [((16, 16), (128, 128, 128)), ((1, 1), (128, 128, 128)), ((16, 2000), (30, 60, 90)),
     ((2000, 16), (200, 10, 10)), ((640, 640), (0, 0, 0)), ((640, 640), (255, 255, 255)),
     ((700, 700), (128, 128, 128)), ((4000, 40), (0, 0, 0)), ((16, 20000), (90, 90, 90))],
)  # fmt: skip
def test_degenerate_images_have_no_face(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, size: tuple[int, int], color: tuple[int, int, int]
) -> None:
    [result] = run(faces, detect, [Image.new("RGB", size, color)])
    assert result.count == 0 and result.emotion_summary is None


def test_grey_and_tiny_copies_of_a_face_do_not_break(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    image = load(decoder, sample_dir / "astronaut.png")
    grey = image.convert("L").convert("RGB")
    tiny = image.resize((24, 24))
    strip = Image.new("RGB", (4000, 512))
    strip.paste(image, (1700, 0))
    images = [grey, tiny, strip]
    # The astronaut as the objects analyzer sees her in the strip: a small person, so tiles go there.
    x0, y0, x1, y1 = ASTRONAUT_FACE
    seen = [None, None, people_under([(x0 + 1700, y0, x1 + 1700, y1)], 4000, 512)]
    upstream: dict[str, list[Any]] = {"body_regions": detect(images), "objects": seen}
    grey_result, tiny_result, strip_result = faces(images, upstream)
    assert grey_result.count == 1 and grey_result.faces[0].landmarks is not None
    assert tiny_result.count <= 1
    assert strip_result.count == 1


def test_missing_upstream_is_refused(faces: FacesAnalyzer) -> None:
    with pytest.raises(ValueError, match="body_regions"):
        faces([Image.new("RGB", (64, 64))])


def test_result_serialises_and_matches_the_published_schema(
    faces: FacesAnalyzer, detect: BodyRegionsAnalyzer, decoder: ImageDecoder, sample_dir: Path
) -> None:
    [result] = run(faces, detect, [load(decoder, sample_dir / "astronaut.png")])
    data = result.to_dict()
    assert data["schema"] == "feedlens.faces/2" and data["count"] == 1
    assert set(data["faces"][0]) == {
        "box", "confidence", "detector", "emotions", "dominant_emotion", "face_score", "landmarks",
        "head_pose", "quality", "smile", "eyes_open", "mouth_open",
    }  # fmt: skip
    assert "age" not in str(data) and "gender" not in str(data)  # nothing says who a person is
    assert FacesResult.from_dict(data) == result
    TypeAdapter(FacesResult).validate_python({k: v for k, v in data.items() if k != "schema"})
    schema = FacesAnalyzer.json_schema()
    assert schema["$id"] == "feedlens.faces/2" and {"faces", "count", "emotion_summary"} <= set(
        schema["properties"]
    )


def test_version_names_every_model(faces: FacesAnalyzer) -> None:
    assert faces.version.startswith("faces-3+nudenet-320n-onnx@")
    for artifact in (
        "fer-emotion-tflite",
        "blazeface-onnx",
        "facemesh-onnx",
        "iris-onnx",
        "efficientnet-lite0-onnx",
    ):
        assert f"{artifact}@" in faces.version


def test_tiling_is_on_by_default_and_raises_the_decode_size(services: Services) -> None:
    plain = FacesAnalyzer(services.store, services.settings.model_copy(update={"faces_tiling": False}))
    tiled = FacesAnalyzer(services.store, services.settings)
    assert services.settings.faces_tiling
    assert (plain.decode_side(), tiled.decode_side()) == (320, 640)
    assert services.pipeline(["faces"]).decode_size == 640
