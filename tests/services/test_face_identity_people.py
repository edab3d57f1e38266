"""People (issue 20): a workspace's stored sample photos grouped by who is in them with the real models,
named, merged, erased; refused while identity is off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from sqlalchemy import func, select

from feedlens.services.access import AccessService
from feedlens.services.faces.identity import IdentityError, Refusal, build_identity
from feedlens.services.faces.people import PeopleService
from feedlens.services.factory import Services
from feedlens.services.fetch import SafeFetcher
from feedlens.services.ingest import IngestItem, Ingestor
from feedlens.storage.face_collections import FaceVector
from tests.conftest import encode


@pytest.fixture
def library(stored_services: Services, sample_dir: Path) -> Iterator[tuple[Services, int, dict[str, str]]]:
    """team-a's library: both portraits, the astronaut mirrored, both side by side, and the coffee photo."""
    s = stored_services
    astronaut = Image.open(sample_dir / "astronaut.png").convert("RGB")
    hopper = Image.open(sample_dir / "grace_hopper.jpg").convert("RGB")
    pair = Image.new("RGB", (astronaut.width + hopper.width, max(astronaut.height, hopper.height)), "white")
    pair.paste(astronaut, (0, 0))
    pair.paste(hopper, (astronaut.width, 0))
    photos = {
        "astronaut": encode(astronaut, "PNG"),
        "hopper": encode(hopper, "JPEG"),
        "astronaut mirrored": encode(ImageOps.mirror(astronaut), "JPEG"),
        "pair": encode(pair, "JPEG"),
        "coffee": (sample_dir / "coffee.png").read_bytes(),
    }
    ws = AccessService(s.database).create_workspace("team-a")
    fetcher = SafeFetcher(s.settings.fetch)
    ingestor = Ingestor(s.library, s.pipeline(["faces"]), fetcher, batch_size=5)
    outcomes = list(ingestor.ingest(ws, [IngestItem(n, data=d) for n, d in photos.items()]))
    fetcher.close()
    assert all(o.image_id for o in outcomes), [o.error for o in outcomes]
    yield s, ws, {o.item.source: o.image_id or "" for o in outcomes}


def people_of(s: Services) -> PeopleService:
    return PeopleService(build_identity(s.database, s.store, 1), s.database, s.blobs, s.decoder)


def test_people_are_grouped_named_merged_and_erased(library: tuple[Services, int, dict[str, str]]) -> None:
    s, ws, ids = library
    people = people_of(s)
    with pytest.raises(IdentityError) as off:
        people.scan(ws, "team-a")
    assert off.value.refusal is Refusal.DISABLED
    people.identity.enable(ws, "test")

    report = people.scan(ws, "team-a")
    assert (report.images, report.faces, report.people) == (5, 5, 2)
    found = people.people(ws, "team-a")
    by_images = {frozenset(people.images(ws, "team-a", p.id)): p for p in found}
    astronaut = by_images[frozenset({ids["astronaut"], ids["astronaut mirrored"], ids["pair"]})]
    hopper = by_images[frozenset({ids["hopper"], ids["pair"]})]
    assert astronaut.faces == 3 and hopper.faces == 2 and astronaut.name is None
    assert people.scan(ws, "team-a").faces == 0  # nothing taken twice

    people.rename(ws, "team-a", astronaut.id, "  Eileen Collins ")
    assert {p.name for p in people.people(ws, "team-a")} == {"Eileen Collins", None}
    people.merge(ws, "team-a", astronaut.id, hopper.id)  # as a person would fix a wrong split
    (merged,) = people.people(ws, "team-a")
    assert merged.faces == 5 and merged.name == "Eileen Collins"

    # erasing an image erases its faces; erasing the person erases theirs, and a scan does not restore them
    s.library.delete_images(ws, [ids["pair"]])
    assert people.people(ws, "team-a")[0].faces == 3
    assert people.delete(ws, "team-a", merged.id) == 3
    assert people.people(ws, "team-a") == [] and faces(s, ws) == 0
    assert people.scan(ws, "team-a").faces == 0
    with pytest.raises(IdentityError) as gone:
        people.images(ws, "team-a", merged.id)
    assert gone.value.refusal is Refusal.NOT_FOUND


def test_another_workspace_and_switching_off(library: tuple[Services, int, dict[str, str]]) -> None:
    s, ws, _ = library
    people = people_of(s)
    other = AccessService(s.database).create_workspace("team-b")
    people.identity.enable(ws, "test")
    people.identity.enable(other, "test")
    people.scan(ws, "team-a")
    assert people.scan(other, "team-b").images == 0 and people.people(other, "team-b") == []
    person = people.people(ws, "team-a")[0].id
    with pytest.raises(IdentityError):
        people.rename(other, "team-b", person, "not mine")
    assert people.identity.disable(ws) == 5
    assert faces(s, ws) == 0
    with pytest.raises(IdentityError) as off:
        people.people(ws, "team-a")
    assert off.value.refusal is Refusal.DISABLED


def faces(s: Services, ws: int) -> int:
    with s.database.session() as session:
        query = select(func.count()).select_from(FaceVector).where(FaceVector.workspace_id == ws)
        return int(session.scalar(query) or 0)


def test_ingest_takes_new_faces_only_where_identity_is_on(
    library: tuple[Services, int, dict[str, str]],
) -> None:
    s, ws, ids = library
    people = s.face_people  # the instance the factory chains into every ingest's after-commit hook
    people.after_ingest(ws, list(ids.values()))
    assert faces(s, ws) == 0 and "face_people" in s.__dict__
    people.identity.enable(ws, "test")
    people.after_ingest(ws, [ids["astronaut"], ids["hopper"]])  # as many photos as the batch stored
    assert faces(s, ws) == 2 and len(people.people(ws, "team-a")) == 2
    people.after_ingest(ws, [ids["pair"], ids["coffee"], ids["astronaut mirrored"]])
    assert faces(s, ws) == 5 and len(people.people(ws, "team-a")) == 2
