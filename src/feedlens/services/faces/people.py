"""People: a workspace's stored photos grouped by who is in them, to name a person and find all their
photos (docs/faces.md "People"). Part of face identity: refused unless the workspace switched it on.

`scan` takes the faces the `faces` analyzer already stored for each image not scanned yet, computes their
descriptors from the stored copy, and groups every face not yet in a person: each joins the person whose
mean descriptor is closest if at least `cosine_for(SIMILARITY_THRESHOLD)` (0.62) alike, else starts a new
person. Greedy and order-dependent (oldest faces first), so `merge` fixes a person split in two. Deleting an
image deletes its faces; deleting a person deletes their faces' descriptors.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from feedlens.analyzers.face_identity import DECODE_SIDE, SIMILARITY_THRESHOLD, cosine_for, normalise
from feedlens.core.errors import ImageError
from feedlens.core.results.faces import FacesResult
from feedlens.core.results.geometry import Box
from feedlens.services.faces.identity import FaceIdentityService, IdentityError, Refusal
from feedlens.storage import face_collections as fc
from feedlens.storage import face_people as fp
from feedlens.storage import repositories as repo
from feedlens.storage.database import Database

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from feedlens.images import ImageDecoder
    from feedlens.storage.blobs import BlobStore

SCAN_BATCH = 32  # images read per database round


@dataclass(frozen=True, slots=True)
class ScanReport:
    images: int  # images looked at
    faces: int  # faces added
    people: int  # people in the workspace afterwards


class PeopleService:
    def __init__(
        self, identity: FaceIdentityService, database: Database, blobs: BlobStore, decoder: ImageDecoder
    ) -> None:
        self.identity = identity
        self.database = database
        self.blobs = blobs
        self.decoder = decoder
        self.min_cosine = cosine_for(SIMILARITY_THRESHOLD)

    def scan(
        self,
        workspace: int,
        name: str,
        limit: int = 1000,
        progress: Callable[[int], None] | None = None,
        only: Sequence[str] | None = None,
    ) -> ScanReport:
        """Add the faces of up to `limit` stored images not scanned yet (of `only` when given), then
        group the new faces."""
        self.identity.require(workspace, name)
        seen = added = 0
        while seen < limit:
            with self.database.session() as session:
                collection = fp.people_collection(session, workspace, self.identity.version).id
                batch = fp.unscanned_images(session, workspace, min(SCAN_BATCH, limit - seen), only)
                analyses = repo.current_analyses(session, [i for i, _ in batch])
            if not batch:
                break
            for image_id, blob in batch:
                stored = analyses[image_id].get("faces")
                faces = stored.loaded if stored is not None else None
                if isinstance(faces, FacesResult) and faces.count:
                    added += self._add(workspace, name, collection, image_id, blob, faces)
            with self.database.session() as session:
                fp.mark_scanned(session, workspace, [i for i, _ in batch])
            seen += len(batch)
            if progress is not None:
                progress(seen)
        return ScanReport(seen, added, self.group(workspace, name))

    def after_ingest(self, workspace: int, image_ids: list[str]) -> None:
        """Ingest's after-commit hook: where identity is on, take the faces of the photos just stored (older
        ones are taken by an explicit scan). Where it is off, nothing at all happens."""
        if image_ids and self.identity.enabled(workspace):
            self.scan(workspace, "", limit=len(image_ids), only=image_ids)

    def _add(
        self, workspace: int, name: str, collection: int, image_id: str, blob: str, faces: FacesResult
    ) -> int:
        """Store the descriptors of one stored image's faces; how many."""
        try:
            image = self.decoder.decode(self.blobs.get("originals", blob), min_side=DECODE_SIDE).image
        except (ImageError, OSError):  # a stored copy that cannot be read is skipped, not fatal
            return 0
        vectors = self.identity.descriptors(workspace, name, image, faces.faces)
        with self.database.session() as session:
            if repo.get_image(session, workspace, image_id) is None:  # erased meanwhile
                return 0
            session.add_all(
                fc.FaceVector(
                    face_id=str(uuid.uuid4()),
                    collection_id=collection,
                    workspace_id=workspace,
                    image_ref=image_id,
                    image_id=image_id,
                    box=_box(face.box),
                    confidence=round(100.0 * face.confidence, 4),
                    vector=fc.to_bytes(vector),
                )
                for face, vector in zip(faces.faces, vectors, strict=True)
            )
        return len(faces.faces)

    def group(self, workspace: int, name: str) -> int:
        """Put every face without a person into the closest person, or a new one; the number of people."""
        self.identity.require(workspace, name)
        with self.database.session() as session:
            collection = fp.people_collection(session, workspace, self.identity.version).id
            for person in fp.empty_people(session, workspace):
                session.delete(person)
            faces = fp.faces_of_people(session, collection)
            sums: dict[int, np.ndarray] = {}
            for face in faces:
                if face.person_id is not None:
                    vector = np.frombuffer(face.vector, dtype="<f4")
                    sums[face.person_id] = sums.get(face.person_id, 0) + vector
            for face in faces:
                if face.person_id is not None:
                    continue
                vector = np.frombuffer(face.vector, dtype="<f4")
                face.person_id = self._closest(sums, vector)
                if face.person_id is None:
                    person = fc.FacePerson(workspace_id=workspace)
                    session.add(person)
                    session.flush()
                    face.person_id = person.id
                sums[face.person_id] = sums.get(face.person_id, 0) + vector
            return len(sums)

    def _closest(self, sums: dict[int, np.ndarray], vector: np.ndarray) -> int | None:
        if not sums:
            return None
        ids = list(sums)
        cosines = normalise(np.stack([sums[i] for i in ids])) @ vector
        best = int(np.argmax(cosines))
        return ids[best] if cosines[best] >= self.min_cosine else None

    # -- reading and editing ------------------------------------------------------------------------------
    def people(self, workspace: int, name: str) -> list[fp.PersonRow]:
        self.identity.require(workspace, name)
        with self.database.session() as session:
            return fp.list_people(session, workspace)

    def images(self, workspace: int, name: str, person: int) -> list[str]:
        self.identity.require(workspace, name)
        with self.database.session() as session:
            self._person(session, workspace, person)
            return fp.images_of(session, workspace, person)

    def rename(self, workspace: int, name: str, person: int, new_name: str | None) -> None:
        self.identity.require(workspace, name)
        with self.database.session() as session:
            self._person(session, workspace, person).name = (new_name or "").strip()[:128] or None

    def merge(self, workspace: int, name: str, into: int, other: int) -> None:
        """Move `other`'s faces to `into` (one person found as two) and drop `other`."""
        self.identity.require(workspace, name)
        with self.database.session() as session:
            target, source = self._person(session, workspace, into), self._person(session, workspace, other)
            if target.id == source.id:
                return
            fp.move_faces(session, source.id, target.id)
            session.flush()
            session.delete(source)

    def delete(self, workspace: int, name: str, person: int) -> int:
        """Erase a person and their faces' descriptors; the number of faces erased. Their images stay,
        marked as scanned, so a later `scan` does not bring the person back."""
        self.identity.require(workspace, name)
        with self.database.session() as session:
            found = self._person(session, workspace, person)
            erased = fp.delete_faces_of(session, found.id)
            session.delete(found)
        return erased

    def _person(self, session: Session, workspace: int, person: int) -> fc.FacePerson:
        found = fp.get_person(session, workspace, person)
        if found is None:
            raise IdentityError(Refusal.NOT_FOUND, f"no person {person} in this workspace")
        return found


def _box(box: Box) -> dict[str, float]:
    return {"Width": box.x1 - box.x0, "Height": box.y1 - box.y0, "Left": box.x0, "Top": box.y0}
