"""Face identity per workspace: off until switched on, erasable, and never computed while off.

A workspace switches identity on (`enable`, with who did it); until then `require` refuses every identity
operation *before* any descriptor is computed. Switching it off erases every collection and descriptor of
the workspace. Collections hold unit faceres descriptors in the database only; a search compares a query
with every descriptor of one collection (exact, brute force over the collection's vectors read in
chunks: see docs/faces.md for its latency). Erasing a stored image erases the descriptors taken from it
(`forget_images`, also by cascade).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from feedlens.core.errors import FeedlensError
from feedlens.core.results.faces import Face
from feedlens.services.faces.vectors import VectorCache
from feedlens.storage import face_collections as fc
from feedlens.storage.database import Database

if TYPE_CHECKING:
    from PIL import Image

    from feedlens.analyzers.face_identity import FaceEmbedder
    from feedlens.runtime.store import ModelStore

DISABLED_HINT = "switch it on with `feedlens faces identity on --workspace {name}` (docs/faces.md)"


class Refusal(StrEnum):
    DISABLED = "disabled"  # the workspace has not switched identity on
    NOT_FOUND = "not_found"
    EXISTS = "exists"
    INVALID = "invalid"


STATUS = {Refusal.DISABLED: 403, Refusal.NOT_FOUND: 404, Refusal.EXISTS: 409, Refusal.INVALID: 400}


class IdentityError(FeedlensError):
    """A refused identity operation; the CLI prints it in one line, the APIs map `refusal` to their own."""

    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.code = "face_identity_off" if refusal is Refusal.DISABLED else str(refusal)
        self.http_status = STATUS[refusal]


@dataclass(frozen=True, slots=True)
class StoredFace:
    """A face in a collection, as listings and matches show it (box: Width, Height, Left, Top)."""

    face_id: str
    image_ref: str
    external_image_id: str | None
    box: dict[str, float]
    confidence: float  # 0..100

    @classmethod
    def of(cls, row: fc.FaceVector) -> StoredFace:
        return cls(row.face_id, row.image_ref, row.external_image_id, dict(row.box), row.confidence)


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    name: str
    model_version: str
    created_at: datetime
    face_count: int


@dataclass(frozen=True, slots=True)
class Match:
    face: StoredFace
    cosine: float


class FaceIdentityService:
    """Settings, collections, indexing, search and erasure of face descriptors, per workspace."""

    def __init__(self, database: Database, embedder: Callable[[], FaceEmbedder], version: str) -> None:
        self.database = database
        self._embedder = embedder  # built on first use: a workspace with identity off never loads faceres
        self._vectors = VectorCache()
        self.version = version

    # -- the switch -----------------------------------------------------------------------------------
    def enabled(self, workspace: int) -> bool:
        with self.database.session() as session:
            return fc.identity_enabled(session, workspace)

    def enable(self, workspace: int, who: str) -> None:
        with self.database.session() as session:
            fc.enable_identity(session, workspace, who)

    def disable(self, workspace: int) -> int:
        """Switch off and erase everything; the number of face descriptors erased."""
        with self.database.session() as session:
            erased = fc.disable_identity(session, workspace)
        self._vectors.drop()
        return erased

    def require(self, workspace: int, name: str) -> None:
        if not self.enabled(workspace):
            raise IdentityError(
                Refusal.DISABLED,
                f"face identity (compare, collections, search) is off for workspace {name!r}: "
                + DISABLED_HINT.format(name=name),
            )

    def descriptors(self, workspace: int, name: str, image: Image.Image, faces: Sequence[Face]) -> np.ndarray:
        """(len(faces), 1024) unit descriptors, refused unless the workspace switched identity on."""
        self.require(workspace, name)
        return self._embedder().embed(image, faces)

    # -- collections ----------------------------------------------------------------------------------
    def create_collection(self, workspace: int, name: str) -> CollectionInfo:
        with self.database.session() as session:
            if fc.get_collection(session, workspace, name) is not None:
                raise IdentityError(Refusal.EXISTS, f"The collection id: {name} already exists")
            row = fc.FaceCollection(workspace_id=workspace, name=name, model_version=self.version)
            session.add(row)
            session.flush()
            return CollectionInfo(row.name, row.model_version, row.created_at, 0)

    def describe(self, workspace: int, name: str) -> CollectionInfo:
        with self.database.session() as session:
            row = self._collection(session, workspace, name)
            count = fc.count_faces(session, workspace, row.id)
            return CollectionInfo(row.name, row.model_version, row.created_at, count)

    def list_collections(self, workspace: int, after: str, limit: int) -> tuple[list[CollectionInfo], bool]:
        """Collections named after `after`, by name, at most `limit`; and whether more follow."""
        with self.database.session() as session:
            rows = fc.list_collections(session, workspace, after, limit + 1)
            found = [CollectionInfo(r.name, r.model_version, r.created_at, 0) for r in rows[:limit]]
            return found, len(rows) > limit

    def delete_collection(self, workspace: int, name: str) -> None:
        with self.database.session() as session:
            collection = self._collection(session, workspace, name)
            fc.delete_collection(session, collection)
        self._vectors.drop(collection.id)

    # -- faces ----------------------------------------------------------------------------------------
    def index(
        self,
        workspace: int,
        name: str,
        faces: Sequence[tuple[dict[str, float], float, np.ndarray]],
        external_image_id: str | None,
        image_id: str | None = None,
    ) -> list[StoredFace]:
        """Add faces (box, confidence 0..100, unit descriptor) of one image to a collection; one new
        ImageId for the image and a new FaceId per face."""
        image_ref = str(uuid.uuid4())
        with self.database.session() as session:
            collection = self._collection(session, workspace, name)
            rows = [
                fc.FaceVector(
                    face_id=str(uuid.uuid4()),
                    collection_id=collection.id,
                    workspace_id=workspace,
                    image_ref=image_ref,
                    image_id=image_id,
                    external_image_id=external_image_id,
                    box=box,
                    confidence=confidence,
                    vector=fc.to_bytes(vector),
                )
                for box, confidence, vector in faces
            ]
            session.add_all(rows)
            return [StoredFace.of(r) for r in rows]

    def list_faces(
        self, workspace: int, name: str, after: str, limit: int, face_ids: Sequence[str] = ()
    ) -> tuple[list[StoredFace], bool]:
        with self.database.session() as session:
            collection = self._collection(session, workspace, name)
            if face_ids:
                rows = sorted(fc.get_faces(session, collection.id, face_ids), key=lambda r: r.face_id)
                return [StoredFace.of(r) for r in rows], False
            rows = fc.list_faces(session, collection.id, after, limit + 1)
            return [StoredFace.of(r) for r in rows[:limit]], len(rows) > limit

    def vector_of(self, workspace: int, name: str, face_id: str) -> np.ndarray:
        with self.database.session() as session:
            collection = self._collection(session, workspace, name)
            found = fc.get_faces(session, collection.id, [face_id])
            if not found:
                raise IdentityError(Refusal.NOT_FOUND, f"face {face_id} is not in collection {name}")
            vector: np.ndarray = fc.from_rows(found)[0]
            return vector

    def search(
        self, workspace: int, name: str, query: np.ndarray, min_cosine: float, most: int, skip: str = ""
    ) -> list[Match]:
        """The collection's faces whose cosine with `query` (a unit descriptor) reaches `min_cosine`,
        best first, at most `most`; `skip`: a face id left out (the searched face itself)."""
        with self.database.session() as session:
            collection = self._collection(session, workspace, name)
            found = self._vectors.best(session, collection.id, query, min_cosine, most, skip)
            rows = {r.face_id: r for r in fc.get_faces(session, collection.id, [f for f, _ in found])}
            return [Match(StoredFace.of(rows[f]), cosine) for f, cosine in found if f in rows]

    def delete_faces(self, workspace: int, name: str, face_ids: Sequence[str]) -> list[str]:
        with self.database.session() as session:
            collection = self._collection(session, workspace, name)
            deleted = fc.delete_faces(session, collection.id, face_ids)
        self._vectors.drop(collection.id)
        return deleted

    def forget_images(self, workspace: int, image_ids: Sequence[str]) -> None:
        """Erasure hook (Library.erasure_hooks): the descriptors taken from erased images go too."""
        if image_ids:
            with self.database.session() as session:
                fc.delete_image_faces(session, workspace, image_ids)
            self._vectors.drop()

    def _collection(self, session: Any, workspace: int, name: str) -> fc.FaceCollection:
        row = fc.get_collection(session, workspace, name)
        if row is None:
            raise IdentityError(Refusal.NOT_FOUND, f"The collection id: {name} does not exist")
        return row


def build_identity(database: Database, store: ModelStore, threads: int) -> FaceIdentityService:
    """The service, with faceres loaded on the first descriptor asked for (once, thread-safely)."""
    from feedlens.analyzers.face_identity import VERSION, FaceEmbedder

    lock = threading.Lock()
    loaded: list[FaceEmbedder] = []

    def embedder() -> FaceEmbedder:
        with lock:
            if not loaded:
                loaded.append(FaceEmbedder(store, threads))
            return loaded[0]

    return FaceIdentityService(database, embedder, VERSION)
