"""Queries behind "people" (docs/faces.md): a workspace's faces from its stored images, kept in the
workspace's own collection `PEOPLE` (a name no Rekognition collection id can take), grouped into people."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, defer

from feedlens.storage.face_collections import FaceCollection, FacePerson, FaceScan, FaceVector
from feedlens.storage.tables import Image

PEOPLE = "#people"


@dataclass(frozen=True, slots=True)
class PersonRow:
    id: int
    name: str | None
    faces: int
    images: int
    cover_image: str | None  # the image and box of the person's most confident face
    cover_box: dict[str, Any] | None


def people_collection(session: Session, workspace: int, version: str) -> FaceCollection:
    found = session.scalars(
        select(FaceCollection).where(FaceCollection.workspace_id == workspace, FaceCollection.name == PEOPLE)
    ).first()
    if found is None:
        found = FaceCollection(workspace_id=workspace, name=PEOPLE, model_version=version)
        session.add(found)
        session.flush()
    return found


def unscanned_images(
    session: Session, workspace: int, limit: int, only: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """(image id, blob) of stored images "people" has not taken yet (of `only` when given), oldest first."""
    scanned = select(FaceScan.image_id).where(FaceScan.workspace_id == workspace)
    query = select(Image.id, Image.blob).where(Image.workspace_id == workspace, Image.id.not_in(scanned))
    if only is not None:
        query = query.where(Image.id.in_(list(only)))
    query = query.order_by(Image.created_at, Image.id).limit(limit)
    return [(str(i), str(b)) for i, b in session.execute(query)]


def mark_scanned(session: Session, workspace: int, image_ids: Sequence[str]) -> None:
    """Record these images as taken (those erased meanwhile are left out: nothing to point at)."""
    present = set(session.scalars(select(Image.id).where(Image.id.in_(list(image_ids)))))
    session.add_all(FaceScan(image_id=i, workspace_id=workspace) for i in image_ids if i in present)


def faces_of_people(session: Session, collection: int) -> list[FaceVector]:
    """Every face of the people collection, oldest first (clustering visits them in this order)."""
    query = select(FaceVector).where(FaceVector.collection_id == collection)
    return list(session.scalars(query.order_by(FaceVector.created_at, FaceVector.face_id)))


def get_person(session: Session, workspace: int, person: int) -> FacePerson | None:
    found = session.get(FacePerson, person)
    return found if found is not None and found.workspace_id == workspace else None


def list_people(session: Session, workspace: int) -> list[PersonRow]:
    """The workspace's people with faces, most faces first; each with their most confident face."""
    people = {
        p.id: p for p in session.scalars(select(FacePerson).where(FacePerson.workspace_id == workspace))
    }
    faces: dict[int, list[FaceVector]] = {}
    query = (
        select(FaceVector)
        .where(FaceVector.workspace_id == workspace, FaceVector.person_id.is_not(None))
        .options(defer(FaceVector.vector))  # a listing never needs the descriptors
    )
    for face in session.scalars(query):
        if face.person_id in people:
            faces.setdefault(face.person_id, []).append(face)
    rows = []
    for person_id, theirs in faces.items():
        cover = max(theirs, key=lambda f: f.confidence)
        rows.append(
            PersonRow(
                id=person_id,
                name=people[person_id].name,
                faces=len(theirs),
                images=len({f.image_id for f in theirs}),
                cover_image=cover.image_id,
                cover_box=dict(cover.box),
            )
        )
    return sorted(rows, key=lambda r: (-r.faces, r.id))


def images_of(session: Session, workspace: int, person: int) -> list[str]:
    query = (
        select(FaceVector.image_id)
        .where(
            FaceVector.workspace_id == workspace,
            FaceVector.person_id == person,
            FaceVector.image_id.is_not(None),
        )
        .distinct()
    )
    return sorted(str(i) for i in session.scalars(query))


def empty_people(session: Session, workspace: int) -> list[FacePerson]:
    """People none of whose faces are left (their images were erased)."""
    used = select(FaceVector.person_id).where(FaceVector.person_id.is_not(None))
    query = select(FacePerson).where(FacePerson.workspace_id == workspace, FacePerson.id.not_in(used))
    return list(session.scalars(query))


def move_faces(session: Session, source: int, target: int) -> None:
    session.execute(update(FaceVector).where(FaceVector.person_id == source).values(person_id=target))


def delete_faces_of(session: Session, person: int) -> int:
    result = session.execute(delete(FaceVector).where(FaceVector.person_id == person))
    return int(getattr(result, "rowcount", 0) or 0)
