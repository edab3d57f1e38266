"""Negative-share alert rules and the alerts they raised (docs/insights.md "Alerts"); included by
routers/insights.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from feedlens.api.deps import Reader, State, Writer
from feedlens.services.insights.alerts import RuleSpec

RuleId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # the column's range: larger ids are a 422, not a 500

router = APIRouter(tags=["insights"])


class RuleIn(BaseModel):
    """Alert when, in a period with `min_posts` posts about the target, the negative share reaches
    `threshold` and rose by `min_rise` over the period before."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    kind: str = Field(pattern="^(brand|hashtag|category)$")
    value: str = Field(min_length=1, max_length=256, description="the brand, hashtag or category")
    bucket: str = Field("week", pattern="^(day|week)$")
    threshold: float = Field(0.3, gt=0, le=1, description="negative share that alerts")
    min_rise: float = Field(0.15, ge=0, le=1, description="rise over the previous period it needs")
    min_posts: int = Field(5, ge=1, le=1_000_000, description="posts a period needs to count")
    webhook_url: str | None = Field(
        None, max_length=2048, description="POSTed each new alert (FEEDLENS_INSIGHTS__WEBHOOKS=true)"
    )


class RuleOut(BaseModel):
    id: int
    name: str
    kind: str
    value: str
    bucket: str
    threshold: float
    min_rise: float
    min_posts: int
    webhook_url: str | None
    created_by: str
    created_at: str


class Webhook(BaseModel):
    status: str = Field(description="none, pending, sent, failed, or skipped (the jump predates the rule)")
    attempts: int
    error: str | None


class AlertOut(BaseModel):
    id: int
    rule_id: int
    rule: str
    kind: str
    value: str
    bucket: str
    period: str = Field(description="the UTC day, or the Monday of the ISO week, that jumped")
    posts: int
    negative_share: float
    previous_share: float | None
    threshold: float
    webhook: Webhook
    created_at: str


class AlertList(BaseModel):
    alerts: list[AlertOut]


@router.get("/v1/insights/alerts/rules")
async def list_rules(state: State, who: Reader) -> dict[str, list[RuleOut]]:
    rules = await run_in_threadpool(state.services.insights.alerts.rules, who.workspace_id)
    return {"rules": [RuleOut(**r) for r in rules]}


@router.post("/v1/insights/alerts/rules", status_code=201)
async def add_rule(body: RuleIn, state: State, who: Writer) -> RuleOut:
    """Add a rule; a webhook URL is checked at once (400 `fetch_disabled`, `address_refused` ...)."""
    spec = RuleSpec(**body.model_dump())
    alerts = state.services.insights.alerts
    rule = await run_in_threadpool(alerts.add_rule, who.workspace_id, spec, f"key {who.key_id}")
    return RuleOut(**rule)


@router.delete("/v1/insights/alerts/rules/{rule_id}", status_code=204)
async def remove_rule(rule_id: RuleId, state: State, who: Writer) -> Response:
    """Delete a rule and its alerts."""
    await run_in_threadpool(state.services.insights.alerts.remove_rule, who.workspace_id, rule_id)
    return Response(status_code=204)


@router.get("/v1/insights/alerts")
async def list_alerts(
    state: State,
    who: Reader,
    rule_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertList:
    """Alerts, newest period first (every ingest batch checks the rules; POST .../check does it now)."""
    alerts = state.services.insights.alerts
    found = await run_in_threadpool(alerts.list, who.workspace_id, rule_id, limit)
    return AlertList(alerts=[AlertOut(**a) for a in found])


@router.post("/v1/insights/alerts/check")
async def check(state: State, who: Writer) -> AlertList:
    """Check every rule now: the new alerts (their webhooks sent), empty when nothing jumped."""
    found = await run_in_threadpool(state.services.insights.alerts.check, who.workspace_id)
    return AlertList(alerts=[AlertOut(**a) for a in found])
