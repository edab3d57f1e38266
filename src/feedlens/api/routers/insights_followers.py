"""Followers' engagements and recommendations (docs/insights.md "Recommendations"); included by
routers/insights.py."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from feedlens.api.deps import Reader, State, Writer
from feedlens.api.problems import Problem
from feedlens.services.insights.followers import EngagementIn

router = APIRouter(tags=["insights"])


class EngagementBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    follower: str = Field(min_length=1, max_length=256, description="the follower's handle")
    kind: str = Field("like", pattern="^(view|like|save|comment|share)$")
    image_id: str | None = Field(None, max_length=32)
    platform: str = Field("", max_length=32)
    post_id: str | None = Field(None, max_length=128, description="instead of image_id: all its images")
    at: datetime | None = None


class EngagementsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engagements: list[EngagementBody] = Field(max_length=10_000)


class Recommended(BaseModel):
    id: str
    relevance: float = Field(description="visual_weight x visual + (1 - visual_weight) x categories")
    visual: float
    categories: float
    because: str = Field(description="the engaged image it is most like")


class Recommendations(BaseModel):
    # "for" is a Python keyword: the field is named for_ and serialised as "for"
    for_: dict[str, str] = Field(alias="for", serialization_alias="for")
    engaged: int
    candidates: int
    items: list[Recommended]


@router.post("/v1/insights/engagements")
async def add_engagements(body: EngagementsIn, state: State, who: Writer) -> dict[str, int]:
    """Store followers' engagements (again: no change); images or posts the workspace lacks are counted
    as `unknown`."""
    records = [EngagementIn(**e.model_dump()) for e in body.engagements]
    followers = state.services.insights.recommendations
    return await run_in_threadpool(followers.add, who.workspace_id, records)


@router.get("/v1/insights/recommendations", response_model=Recommendations, response_model_by_alias=True)
async def recommendations(
    state: State,
    who: Reader,
    follower: Annotated[str | None, Query(max_length=256)] = None,
    author: Annotated[str | None, Query(max_length=256)] = None,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """Unseen images most like what a `follower` engaged with, or like an `author`'s own posts (for their
    audience), visually and by category, with no near-duplicates."""
    if (follower is None) == (author is None):
        raise Problem(422, "invalid_request", "give a `follower` or an `author`")
    followers = state.services.insights.recommendations
    return await run_in_threadpool(lambda: followers.recommend(who.workspace_id, follower, author, k))


@router.get("/v1/insights/recommendations/evaluation")
async def evaluation(
    state: State,
    who: Reader,
    source: Annotated[str, Query(pattern="^(engagements|authors)$")] = "engagements",
    seed: Annotated[int, Query(ge=0, le=2**31)] = 0,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    holdout: Annotated[float, Query(gt=0, lt=1)] = 0.2,
) -> dict[str, Any]:
    """Hit rate@k and recall@k on a seeded held-out split of the workspace's histories, against
    popularity and random picks (the same seed gives the same numbers)."""
    followers = state.services.insights.recommendations
    return await run_in_threadpool(lambda: followers.evaluate(who.workspace_id, source, seed, k, holdout))
