"""Face identity storage (issue 20, docs/faces.md): which workspaces switched identity on, their face
collections and the face descriptors in them. Migration 0011 creates these tables.

They join `Base.metadata` when this module is imported. Every row hangs off its workspace (and a face off
its collection, and off its stored image when it came from one) with ON DELETE CASCADE: deleting a
collection, an image or a workspace deletes the descriptors with it. Descriptors live only in this database
(no search index, no blob): erasing the row erases the biometric data the product controls.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    delete,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from feedlens.storage.tables import Base, utcnow

SCAN_CHUNK = 4096  # rows a search reads at a time (16 MB of 1024-d float32 vectors)


class FaceIdentitySetting(Base):
    """A workspace that switched face identity on (no row: off). Who did it and when, for the record."""

    __tablename__ = "face_identity_settings"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    enabled_by: Mapped[str] = mapped_column(String(128))
    enabled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FaceCollection(Base):
    """A named set of faces (Rekognition's collection), unique by name within its workspace."""

    __tablename__ = "face_collections"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    model_version: Mapped[str] = mapped_column(String(32))  # descriptors of one model version only
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FacePerson(Base):
    """A group of one workspace's faces taken for one person (docs/faces.md "People"), named or not.
    Deleting it deletes its faces' descriptors (ON DELETE CASCADE on face_vectors.person_id)."""

    __tablename__ = "face_people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FaceScan(Base):
    """A stored image whose faces "people" has taken (with or without faces found), so a scan never takes
    it twice, even after its faces' person was deleted."""

    __tablename__ = "face_scans"

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    scanned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FaceVector(Base):
    """One indexed face: its descriptor ((1024,) float32 bytes, unit length), where it was in its image
    (normalised box), the caller's ExternalImageId and the image id Rekognition hands back, and the stored
    image it came from when it came from one (then erasing the image erases it)."""

    __tablename__ = "face_vectors"
    # covers a search's freshness check (count and newest per collection) without reading the vectors
    __table_args__ = (Index("ix_face_vectors_collection_created", "collection_id", "created_at"),)

    face_id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID, as Rekognition's
    collection_id: Mapped[int] = mapped_column(ForeignKey("face_collections.id", ondelete="CASCADE"))
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    image_ref: Mapped[str] = mapped_column(String(36))  # Rekognition's ImageId: one per indexed image
    image_id: Mapped[str | None] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), index=True, default=None
    )
    external_image_id: Mapped[str | None] = mapped_column(String(255), default=None)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("face_people.id", ondelete="CASCADE"), index=True, default=None
    )
    box: Mapped[dict[str, Any]] = mapped_column(JSON)  # Width, Height, Left, Top (0..1)
    confidence: Mapped[float] = mapped_column(Float)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# -- settings -----------------------------------------------------------------------------------------
def identity_enabled(session: Session, workspace: int) -> bool:
    return session.get(FaceIdentitySetting, workspace) is not None


def enable_identity(session: Session, workspace: int, who: str) -> None:
    if session.get(FaceIdentitySetting, workspace) is None:
        session.add(FaceIdentitySetting(workspace_id=workspace, enabled_by=who[:128]))


def disable_identity(session: Session, workspace: int) -> int:
    """Switch identity off and erase every collection and descriptor of the workspace; the number of
    descriptors erased."""
    erased = count_faces(session, workspace, None)
    session.execute(delete(FaceVector).where(FaceVector.workspace_id == workspace))
    session.execute(delete(FaceCollection).where(FaceCollection.workspace_id == workspace))
    session.execute(delete(FacePerson).where(FacePerson.workspace_id == workspace))
    session.execute(delete(FaceScan).where(FaceScan.workspace_id == workspace))
    session.execute(delete(FaceIdentitySetting).where(FaceIdentitySetting.workspace_id == workspace))
    return erased


# -- collections ----------------------------------------------------------------------------------------
def get_collection(session: Session, workspace: int, name: str) -> FaceCollection | None:
    found: FaceCollection | None = session.scalars(
        select(FaceCollection).where(FaceCollection.workspace_id == workspace, FaceCollection.name == name)
    ).first()
    return found


def list_collections(session: Session, workspace: int, after: str, limit: int) -> list[FaceCollection]:
    query = (
        select(FaceCollection)
        .where(
            FaceCollection.workspace_id == workspace,
            FaceCollection.name > after,
            FaceCollection.name.not_like("#%"),  # feedlens's own (people): no Rekognition id starts so
        )
        .order_by(FaceCollection.name)
        .limit(limit)
    )
    return list(session.scalars(query))


def count_faces(session: Session, workspace: int, collection: int | None) -> int:
    query = select(func.count()).select_from(FaceVector).where(FaceVector.workspace_id == workspace)
    if collection is not None:
        query = query.where(FaceVector.collection_id == collection)
    return int(session.scalar(query) or 0)


def delete_collection(session: Session, collection: FaceCollection) -> None:
    # explicit, not only by cascade: the descriptors must go even where foreign keys are not enforced
    session.execute(delete(FaceVector).where(FaceVector.collection_id == collection.id))
    session.delete(collection)


# -- faces ----------------------------------------------------------------------------------------------
def to_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def from_rows(rows: Sequence[FaceVector]) -> np.ndarray:
    """(N, D) float32 descriptors of `rows` (D = 0 when there are none)."""
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([np.frombuffer(r.vector, dtype="<f4") for r in rows]).astype(np.float32)


def list_faces(session: Session, collection: int, after: str, limit: int | None) -> list[FaceVector]:
    query = (
        select(FaceVector)
        .where(FaceVector.collection_id == collection, FaceVector.face_id > after)
        .order_by(FaceVector.face_id)
    )
    return list(session.scalars(query if limit is None else query.limit(limit)))


def get_faces(session: Session, collection: int, face_ids: Sequence[str]) -> list[FaceVector]:
    query = select(FaceVector).where(
        FaceVector.collection_id == collection, FaceVector.face_id.in_(list(face_ids))
    )
    return list(session.scalars(query))


def delete_faces(session: Session, collection: int, face_ids: Sequence[str]) -> list[str]:
    """Delete these faces of the collection; the ids that were there."""
    found = [f.face_id for f in get_faces(session, collection, face_ids)]
    if found:
        session.execute(
            delete(FaceVector).where(FaceVector.collection_id == collection, FaceVector.face_id.in_(found))
        )
    return found


def delete_image_faces(session: Session, workspace: int, image_ids: Sequence[str]) -> int:
    """Delete the descriptors taken from these stored images (erasure; the cascade does it too)."""
    result = session.execute(
        delete(FaceVector).where(
            FaceVector.workspace_id == workspace, FaceVector.image_id.in_(list(image_ids))
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def best_matches(
    session: Session, collection: int, query: np.ndarray, min_cosine: float, most: int, skip: str
) -> list[tuple[str, float]]:
    """(face id, cosine) of the collection's faces closest to `query` ((D,) unit), best first: at most
    `most`, each at least `min_cosine`, `skip` left out. Reads only ids and vectors, `SCAN_CHUNK` rows at a
    time, so memory stays bounded by the chunk and the kept best, not by the collection."""
    query = np.ascontiguousarray(query, dtype=np.float32)
    best_ids: list[str] = []
    best = np.zeros(0, dtype=np.float32)
    statement = (
        select(FaceVector.face_id, FaceVector.vector)
        .where(FaceVector.collection_id == collection, FaceVector.face_id != skip)
        .execution_options(yield_per=SCAN_CHUNK)
    )
    for part in session.execute(statement).partitions():
        ids = [row[0] for row in part]
        vectors = np.frombuffer(b"".join(row[1] for row in part), dtype="<f4").reshape(len(ids), -1)
        cosines = vectors @ query
        keep = np.flatnonzero(cosines >= min_cosine)
        best_ids += [ids[k] for k in keep]
        best = np.concatenate([best, cosines[keep]])
        if len(best) > most:  # keep only the `most` best so far
            top = np.argpartition(-best, most - 1)[:most]
            best_ids, best = [best_ids[k] for k in top], best[top]
    order = np.argsort(-best, kind="stable")
    return [(best_ids[k], float(best[k])) for k in order]


def collection_stamp(session: Session, collection: int) -> tuple[int, str]:
    """(face count, newest face's time): changes whenever a face is added to or removed from it."""
    count, newest = session.execute(
        select(func.count(), func.max(FaceVector.created_at)).where(FaceVector.collection_id == collection)
    ).one()
    return int(count or 0), str(newest)


def list_vectors(session: Session, collection: int) -> list[tuple[str, bytes]]:
    """(face id, descriptor bytes) of every face in the collection."""
    statement = select(FaceVector.face_id, FaceVector.vector).where(FaceVector.collection_id == collection)
    return [(str(f), bytes(v)) for f, v in session.execute(statement)]
