"""Per-face readings with the real models on real photos: landmarks, head angles, attributes, quality."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageFilter, ImageOps

from feedlens.analyzers.body_regions import BodyRegionsAnalyzer
from feedlens.analyzers.faces import FacesAnalyzer
from feedlens.core.results.faces import LANDMARK_NAMES, Face
from feedlens.images import ImageDecoder
from feedlens.services.factory import Services


@pytest.fixture(scope="module")
def read(services: Services, decoder: ImageDecoder, sample_dir: Path) -> dict[str, Face]:
    """The one face of each sample portrait, as read from the photo, its mirror image and turned copies."""
    detect = BodyRegionsAnalyzer(services.store, services.settings)
    faces = FacesAnalyzer(services.store, services.settings)
    images: dict[str, Image.Image] = {}
    for name in ("astronaut.png", "grace_hopper.jpg", "camera.png"):
        image = decoder.decode(sample_dir / name, min_side=640).image
        stem = name.split(".")[0]
        images[stem] = image
        images[f"{stem}-mirrored"] = ImageOps.mirror(image)
        images[f"{stem}-turned"] = image.rotate(-15, resample=Image.Resampling.BICUBIC, expand=True)
    images["astronaut-blurred"] = images["astronaut"].filter(ImageFilter.GaussianBlur(3))
    images["astronaut-dark"] = images["astronaut"].point(lambda v: v // 3)
    results = faces(list(images.values()), {"body_regions": detect(list(images.values()))})
    out = {}
    for key, result in zip(images, results, strict=True):
        assert result.count == 1, key
        out[key] = result.faces[0]
    return out


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_landmarks_sit_on_the_face(read: dict[str, Face], name: str) -> None:
    face = read[name]
    assert face.landmarks is not None and set(face.landmarks) == set(LANDMARK_NAMES)  # pupils too
    box, points = face.box, face.landmarks
    grown = (box.x1 - box.x0) * 0.15
    for key in (
        "right_eye",
        "left_eye",
        "right_pupil",
        "left_pupil",
        "nose_tip",
        "mouth_left",
        "mouth_right",
    ):
        p = points[key]
        assert box.x0 - grown <= p.x <= box.x1 + grown and box.y0 - grown <= p.y <= box.y1 + grown, key
    # Eyes above the nose above the mouth above the chin (image y grows downward).
    assert max(points["right_eye"].y, points["left_eye"].y) < points["nose_tip"].y < points["mouth_center"].y
    assert points["mouth_center"].y < points["chin"].y
    # Left and right are the person's own: facing the camera, the left eye is on the image's right.
    assert points["left_eye"].x > points["right_eye"].x and points["mouth_left"].x > points["mouth_right"].x
    # The pupils lie within their eye, between its corners.
    assert points["right_eye_outer"].x < points["right_pupil"].x < points["right_eye_inner"].x
    assert points["left_eye_inner"].x < points["left_pupil"].x < points["left_eye_outer"].x


def test_frontal_portraits_read_as_frontal(read: dict[str, Face]) -> None:
    for name in ("astronaut", "grace_hopper"):
        pose = read[name].head_pose
        assert pose is not None and abs(pose.yaw) < 10 and abs(pose.roll) < 10 and abs(pose.pitch) < 25


def test_yaw_flips_sign_on_the_mirror_image(read: dict[str, Face]) -> None:
    pose, mirrored = read["camera"].head_pose, read["camera-mirrored"].head_pose
    assert pose is not None and mirrored is not None
    assert pose.yaw > 25  # the cameraman faces his camera on the image's right
    assert mirrored.yaw < -25 and abs(pose.yaw + mirrored.yaw) < 8
    assert abs(pose.roll + mirrored.roll) < 8 and abs(pose.pitch - mirrored.pitch) < 8


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_roll_follows_a_turned_photo(read: dict[str, Face], name: str) -> None:
    pose, turned = read[name].head_pose, read[f"{name}-turned"].head_pose
    assert pose is not None and turned is not None
    assert turned.roll - pose.roll == pytest.approx(15, abs=5)  # turned 15 degrees clockwise
    assert abs(turned.yaw - pose.yaw) < 8


def test_attributes_of_the_sample_portraits(read: dict[str, Face]) -> None:
    astronaut, grace = read["astronaut"], read["grace_hopper"]
    assert astronaut.smile is not None and astronaut.smile.value and astronaut.smile.confidence > 0.8
    assert astronaut.mouth_open is not None and astronaut.mouth_open.value  # a smile showing teeth
    assert astronaut.eyes_open is not None and astronaut.eyes_open.value
    assert grace.smile is not None and not grace.smile.value
    assert grace.mouth_open is not None and not grace.mouth_open.value
    assert grace.eyes_open is not None and grace.eyes_open.value


def test_a_turned_away_face_has_no_eye_reading(read: dict[str, Face]) -> None:
    pose = read["camera"].head_pose
    assert pose is not None and abs(pose.yaw) > 40
    assert read["camera"].eyes_open is None  # one eye is hidden: absent, not guessed


def test_quality_drops_for_blur_and_darkness(read: dict[str, Face]) -> None:
    sharp, blurred, dark = (read[k].quality for k in ("astronaut", "astronaut-blurred", "astronaut-dark"))
    assert sharp is not None and blurred is not None and dark is not None
    assert blurred.sharpness < sharp.sharpness - 0.2
    assert dark.brightness < sharp.brightness / 2
    assert 0.3 < sharp.brightness < 0.9 and sharp.sharpness > 0.5
