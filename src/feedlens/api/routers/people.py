"""People: the workspace's stored photos grouped by who is in them (docs/faces.md "People"). Face identity
must be switched on for the workspace (`feedlens faces identity on`); otherwise every route answers 403
`face_identity_off` and computes nothing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from feedlens.api.deps import Reader, State, Writer
from feedlens.api.problems import Problem
from feedlens.api.state import AppState
from feedlens.services.faces.identity import IdentityError, Refusal
from feedlens.services.faces.people import PeopleService

router = APIRouter(tags=["people"])
PersonId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class PersonName(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(max_length=128, description="the person's name; null or empty to clear it")


class Merge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    other: int = Field(ge=1, le=2**63 - 1, description="the person whose faces join this one (then gone)")


def _people(state: AppState) -> PeopleService:
    return state.services.face_people


def _problem(exc: IdentityError) -> Problem:
    if exc.refusal is Refusal.DISABLED:
        return Problem(403, "face_identity_off", exc.message)
    return Problem(404, "not_found", exc.message)


@router.get("/v1/people")
async def list_people(state: State, who: Reader) -> dict[str, Any]:
    """The people found in the workspace's photos, most photographed first, each with a cover face."""
    try:
        found = await run_in_threadpool(_people(state).people, who.workspace_id, who.workspace)
    except IdentityError as exc:
        raise _problem(exc) from None
    return {
        "people": [
            {
                "id": p.id,
                "name": p.name,
                "faces": p.faces,
                "images": p.images,
                "cover": {"image_id": p.cover_image, "box": p.cover_box},
            }
            for p in found
        ]
    }


@router.post("/v1/people/scan")
async def scan(
    state: State, who: Writer, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
) -> dict[str, int]:
    """Take the faces of up to `limit` stored images not taken yet and group them into people."""
    people = _people(state)
    try:
        report = await state.gate.run(lambda: people.scan(who.workspace_id, who.workspace, limit))
    except IdentityError as exc:
        raise _problem(exc) from None
    return {"images": report.images, "faces": report.faces, "people": report.people}


@router.get("/v1/people/{person_id}/images")
async def person_images(person_id: PersonId, state: State, who: Reader) -> dict[str, list[str]]:
    """The ids of the stored images the person is in (GET /v1/images/{id} for each)."""
    try:
        ids = await run_in_threadpool(_people(state).images, who.workspace_id, who.workspace, person_id)
    except IdentityError as exc:
        raise _problem(exc) from None
    return {"images": ids}


@router.patch("/v1/people/{person_id}", status_code=204, response_class=Response)
async def rename(person_id: PersonId, body: PersonName, state: State, who: Writer) -> Response:
    try:
        await run_in_threadpool(_people(state).rename, who.workspace_id, who.workspace, person_id, body.name)
    except IdentityError as exc:
        raise _problem(exc) from None
    return Response(status_code=204)


@router.post("/v1/people/{person_id}/merge", status_code=204, response_class=Response)
async def merge(person_id: PersonId, body: Merge, state: State, who: Writer) -> Response:
    """One person found as two: `other`'s faces join this person."""
    try:
        await run_in_threadpool(_people(state).merge, who.workspace_id, who.workspace, person_id, body.other)
    except IdentityError as exc:
        raise _problem(exc) from None
    return Response(status_code=204)


@router.delete("/v1/people/{person_id}", status_code=204, response_class=Response)
async def delete_person(person_id: PersonId, state: State, who: Writer) -> Response:
    """Erase the person and their faces' descriptors (their photos stay)."""
    try:
        await run_in_threadpool(_people(state).delete, who.workspace_id, who.workspace, person_id)
    except IdentityError as exc:
        raise _problem(exc) from None
    return Response(status_code=204)
