"""Face identity over real databases with the real faceres model on the sample portraits: off by default
(nothing computed), collections, search, workspace isolation, and erasure (faces, collections, images,
switching off)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageOps
from sqlalchemy import ColumnElement, func, select

from feedlens.analyzers.face_identity import (
    DECODE_SIDE,
    SIMILARITY_THRESHOLD,
    cosine_for,
    face_crop,
    normalise,
    similarity,
)
from feedlens.core.results.faces import Face, FacesResult
from feedlens.services.access import AccessService
from feedlens.services.faces.identity import FaceIdentityService, IdentityError, Refusal, build_identity
from feedlens.services.factory import Services
from feedlens.storage.database import Database
from feedlens.storage.face_collections import FaceVector
from feedlens.storage.tables import Image
from tests.conftest import encode

Portrait = tuple[PILImage.Image, Face]


def _portrait(services: Services, image: PILImage.Image) -> Portrait:
    data = encode(image, "PNG")
    report = services.pipeline(["faces"]).analyze_one(data, "test")
    result = report.results["faces"]
    assert isinstance(result, FacesResult) and result.count == 1
    return services.decoder.decode(data, min_side=DECODE_SIDE).image, result.faces[0]


@pytest.fixture(scope="module")
def portraits(services: Services, sample_dir: Path) -> dict[str, Portrait]:
    """Each sample portrait and its mirror image, decoded as the service decodes them, with its face."""
    found = {}
    for name in ("astronaut.png", "grace_hopper.jpg"):
        image = PILImage.open(sample_dir / name).convert("RGB")
        found[name] = _portrait(services, image)
        found["mirrored " + name] = _portrait(services, ImageOps.mirror(image))
    return found


def identity(services: Services) -> tuple[FaceIdentityService, list[int]]:
    """A fresh service on the test's database, counting how often faceres is loaded."""
    fresh = build_identity(services.database, services.store, 1)
    loads: list[int] = []
    make = fresh._embedder

    def counted():  # type: ignore[no-untyped-def]
        loads.append(1)
        return make()

    fresh._embedder = counted
    return fresh, loads


def vectors(service: FaceIdentityService, ws: int, name: str, portrait: Portrait) -> np.ndarray:
    return service.descriptors(ws, name, portrait[0], [portrait[1]])


def test_crop_and_similarity_scale() -> None:
    assert np.allclose(np.linalg.norm(normalise(np.array([[3.0, 4.0], [0.0, 0.0]])), axis=1), [1, 0])
    assert float(similarity(1.0)) == 100.0 and float(similarity(-1.0)) == 0.0
    assert float(similarity(cosine_for(SIMILARITY_THRESHOLD))) == pytest.approx(SIMILARITY_THRESHOLD)
    assert cosine_for(0) == -1.0


def test_off_by_default_computes_nothing(stored_services: Services, portraits: dict[str, Portrait]) -> None:
    service, loads = identity(stored_services)
    ws = AccessService(stored_services.database).create_workspace("team-a")
    assert not service.enabled(ws)
    with pytest.raises(IdentityError) as refused:
        vectors(service, ws, "team-a", portraits["astronaut.png"])
    assert refused.value.refusal is Refusal.DISABLED and "feedlens faces identity on" in refused.value.message
    assert loads == []  # faceres never ran, not even loaded


def test_same_person_matches_and_different_people_do_not(
    stored_services: Services, portraits: dict[str, Portrait]
) -> None:
    service, _ = identity(stored_services)
    ws = AccessService(stored_services.database).create_workspace("team-a")
    service.enable(ws, "test")
    v = {name: vectors(service, ws, "team-a", p)[0] for name, p in portraits.items()}
    assert all(x.shape == (1024,) and abs(float(np.linalg.norm(x)) - 1) < 1e-5 for x in v.values())
    same = [float(v[n] @ v["mirrored " + n]) for n in ("astronaut.png", "grace_hopper.jpg")]
    different = float(v["astronaut.png"] @ v["grace_hopper.jpg"])
    assert min(similarity(np.array(same))) >= SIMILARITY_THRESHOLD  # matched under a mirror
    assert float(similarity(different)) < 50  # measured 34 (cosine 0.39)


def test_collections_index_search_and_erase(
    stored_services: Services, portraits: dict[str, Portrait]
) -> None:
    service, _ = identity(stored_services)
    access = AccessService(stored_services.database)
    ws, other = access.create_workspace("team-a"), access.create_workspace("team-b")
    service.enable(ws, "test")
    service.enable(other, "test")
    service.create_collection(ws, "people")
    with pytest.raises(IdentityError) as exists:
        service.create_collection(ws, "people")
    assert exists.value.refusal is Refusal.EXISTS
    box = {"Width": 0.1, "Height": 0.1, "Left": 0.4, "Top": 0.1}
    indexed = {}
    for name in ("astronaut.png", "grace_hopper.jpg"):
        vector = vectors(service, ws, "team-a", portraits[name])[0]
        (indexed[name],) = service.index(ws, "people", [(box, 99.0, vector)], name.split(".")[0])
    assert service.describe(ws, "people").face_count == 2
    query = vectors(service, ws, "team-a", portraits["mirrored astronaut.png"])[0]
    (hit,) = service.search(ws, "people", query, cosine_for(SIMILARITY_THRESHOLD), 10)
    assert hit.face.face_id == indexed["astronaut.png"].face_id and hit.face.external_image_id == "astronaut"
    by_id = service.search(
        ws, "people", service.vector_of(ws, "people", hit.face.face_id), -1.0, 10, hit.face.face_id
    )
    assert [m.face.face_id for m in by_id] == [indexed["grace_hopper.jpg"].face_id]  # itself left out

    # another workspace sees nothing of it, even by name
    for call in (
        lambda: service.describe(other, "people"),
        lambda: service.search(other, "people", query, -1, 5),
    ):
        with pytest.raises(IdentityError) as hidden:
            call()
        assert hidden.value.refusal is Refusal.NOT_FOUND
    assert service.list_collections(other, "", 10) == ([], False)
    service.create_collection(other, "people")  # the same name is free there

    gone = indexed["astronaut.png"].face_id
    assert service.delete_faces(ws, "people", [gone, "0" * 8 + "-0000-0000-0000-" + "0" * 12]) == [gone]
    assert stored_rows(stored_services.database, FaceVector.face_id == gone) == 0
    service.delete_collection(ws, "people")
    assert stored_rows(stored_services.database, FaceVector.workspace_id == ws) == 0
    with pytest.raises(IdentityError):
        service.describe(ws, "people")


def test_erasing_an_image_or_switching_off_erases_descriptors(
    stored_services: Services, portraits: dict[str, Portrait]
) -> None:
    service, _ = identity(stored_services)
    ws = AccessService(stored_services.database).create_workspace("team-a")
    service.enable(ws, "test")
    service.create_collection(ws, "people")
    image_id = stored_image(stored_services.database, ws)
    vector = vectors(service, ws, "team-a", portraits["astronaut.png"])[0]
    box = {"Width": 0.1, "Height": 0.1, "Left": 0.4, "Top": 0.1}
    service.index(ws, "people", [(box, 99.0, vector)], None, image_id=image_id)
    service.index(ws, "people", [(box, 99.0, vector)], "upload")
    assert stored_rows(stored_services.database, FaceVector.image_id == image_id) == 1
    assert stored_services.library.delete_images(ws, [image_id]) == [image_id]
    assert stored_rows(stored_services.database, FaceVector.image_id == image_id) == 0
    assert service.describe(ws, "people").face_count == 1
    assert service.disable(ws) == 1
    assert (
        not service.enabled(ws) and stored_rows(stored_services.database, FaceVector.workspace_id == ws) == 0
    )


def test_the_migration_matches_the_tables(database_url: str) -> None:
    """Migration 0011 creates exactly what storage/face_collections.py declares, on both databases."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from feedlens.storage.tables import Base

    database = Database(database_url)
    database.migrate()
    with database.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    database.dispose()
    assert [d for d in diffs if "face_" in repr(d)] == []


def test_a_face_crop_is_levelled_by_the_eyes(portraits: dict[str, Portrait]) -> None:
    image, face = portraits["astronaut.png"]
    crop = face_crop(face, *image.size)
    assert abs(np.degrees(crop.angle)) < 15 and crop.side > 50  # an upright portrait


def stored_rows(database: Database, *where: ColumnElement[bool]) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(FaceVector).where(*where)) or 0)


def stored_image(database: Database, ws: int) -> str:
    digest = hashlib.sha256(b"portrait").hexdigest()
    with database.session() as session:
        row = Image(
            workspace_id=ws, sha256=digest, blob=digest, format="png", width=512, height=512, size_bytes=1
        )
        session.add(row)
        session.flush()
        return row.id
