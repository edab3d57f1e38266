"""Negative-share alerts (docs/insights.md "Alerts"): a team's threshold rules over brands, hashtags or
categories, checked after every ingest batch and on demand, each jump recorded once, and an optional
webhook POSTed through the same SSRF checks as image fetching (services/fetch.py).

A rule fires for a period (UTC day or ISO week) when the period has at least `min_posts` posts about the
target with a known sentiment, the negative share of them reaches `threshold`, and it rose by at least
`min_rise` over the last earlier period that had `min_posts` (0 when there is none). A period that stays
high does not rise again, so a jump fires once; (rule, period) is unique, so checking again never does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from feedlens.config import FetchLimits, InsightsSettings
from feedlens.core.errors import CodedError, FeedlensError
from feedlens.services.analytics import Bucket, Window
from feedlens.services.fetch import FetchError, FetchErrorCode, SafeFetcher, _parse_url, _remaining
from feedlens.services.insights.audience import KINDS
from feedlens.services.insights.sentiment import LABELS, NEGATIVE
from feedlens.storage import insights_audience as audience_repo
from feedlens.storage.insights import PostRow
from feedlens.storage.insights_tables import Alert, AlertRule

if TYPE_CHECKING:
    from feedlens.services.insights.audience import Audience

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
MAX_RULES = 100


class RuleNotFoundError(FeedlensError):
    code = "rule_not_found"
    http_status = 404


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """What a team asks for; checked by `validate`."""

    name: str
    kind: str
    value: str
    bucket: str = "week"
    threshold: float = 0.3
    min_rise: float = 0.15
    min_posts: int = 5
    webhook_url: str | None = None

    def validate(self) -> RuleSpec:
        if self.kind not in KINDS:
            raise CodedError("invalid_rule", f"kind must be one of {', '.join(KINDS)}")
        if self.bucket not in (b.value for b in Bucket):
            raise CodedError("invalid_rule", "bucket must be day or week")
        if not 0 < self.threshold <= 1 or not 0 <= self.min_rise <= 1:
            raise CodedError("invalid_rule", "threshold must be in (0, 1] and min_rise in [0, 1]")
        if self.min_posts < 1:
            raise CodedError("invalid_rule", "min_posts must be at least 1")
        value = self.value.strip().lower().lstrip("#")
        if not value or not self.name.strip():
            raise CodedError("invalid_rule", "a rule needs a name and a value to watch")
        return RuleSpec(
            self.name.strip()[:128],
            self.kind,
            value[:256],
            self.bucket,
            self.threshold,
            self.min_rise,
            self.min_posts,
            self.webhook_url,
        )


@dataclass(frozen=True, slots=True)
class Jump:
    period: date
    posts: int
    negative_share: float
    previous_share: float | None


def jumps(
    rows: list[PostRow], bucket: Bucket, threshold: float, min_rise: float, min_posts: int
) -> list[Jump]:
    """The periods at which the negative share jumped (see the module docstring), oldest first."""
    labels: dict[date, dict[int, str]] = defaultdict(dict)
    for row in rows:
        if row.label in LABELS:
            labels[bucket.start(row.when)][row.post] = str(row.label)
    found, previous = [], None
    for period in sorted(labels):
        posts = labels[period]
        if len(posts) < min_posts:
            continue
        share = sum(label == NEGATIVE for label in posts.values()) / len(posts)
        if share >= threshold and share - (previous or 0.0) >= min_rise - 1e-9:
            found.append(Jump(period, len(posts), round(share, 4), previous))
        previous = round(share, 4)
    return found


def period_end(period: date, bucket: Bucket) -> datetime:
    days = 7 if bucket is Bucket.WEEK else 1
    return datetime(period.year, period.month, period.day, tzinfo=UTC) + timedelta(days=days)


class WebhookSender(SafeFetcher):
    """POSTs alert JSON to a rule's URL through SafeFetcher's checks: http(s) only, no credentials in the
    URL, every resolved address public (or in FEEDLENS_INSIGHTS__WEBHOOK_ALLOWED_NETWORKS), the connection
    pinned to the checked address, one deadline, no redirects followed, a small answer read."""

    def __init__(self, settings: InsightsSettings) -> None:
        limits = FetchLimits(
            enabled=settings.webhooks,
            allowed_networks=settings.webhook_allowed_networks,
            max_bytes=64 * 1024,
            timeout_s=settings.webhook_timeout_s,
            max_redirects=0,
        )
        super().__init__(limits)
        self._secret = settings.webhook_secret

    def check(self, url: str) -> str:
        """The URL as it will be called; FetchError when it is refused (disabled, bad, not public)."""
        if not self._limits.enabled:
            raise FetchError(
                FetchErrorCode.FETCH_DISABLED,
                "webhooks are off (set FEEDLENS_INSIGHTS__WEBHOOKS=true to allow them)",
            )
        return str(self._validate(_parse_url(url, what="webhook URL")).url)

    def post(self, url: str, payload: dict[str, Any]) -> int:
        """Send `payload`; the answer's status (2xx), else FetchError."""
        hop = self._validate(_parse_url(self.check(url), what="webhook URL"))
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Host": hop.url.netloc.decode("ascii"), "Content-Type": "application/json"}
        if self._secret:
            digest = hmac.new(self._secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Feedlens-Signature"] = f"sha256={digest}"
        deadline = _deadline(self._limits.timeout_s)
        try:
            for address in hop.addresses:
                request = self._client.build_request(
                    "POST",
                    hop.url.copy_with(host=str(address)),
                    headers=headers,
                    content=body,
                    extensions={"sni_hostname": hop.host},
                    timeout=_remaining(deadline),
                )
                try:
                    response = self._client.send(request)
                except httpx.ConnectError:
                    continue  # like a browser: the host's next address may answer
                if not 200 <= response.status_code < 300:
                    raise FetchError(
                        FetchErrorCode.FETCH_HTTP_STATUS,
                        f"the webhook answered HTTP {response.status_code}",
                        upstream_status=response.status_code,
                    )
                return response.status_code
        except httpx.TimeoutException as exc:
            raise FetchError(FetchErrorCode.FETCH_TIMEOUT, "the webhook did not answer in time") from exc
        except httpx.TransportError as exc:
            raise FetchError(FetchErrorCode.FETCH_FAILED, f"webhook failed: {type(exc).__name__}") from exc
        raise FetchError(FetchErrorCode.FETCH_FAILED, "webhook failed: no address accepted a connection")


def _deadline(seconds: float) -> float:
    import time

    return time.monotonic() + seconds


def rule_view(rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "kind": rule.kind,
        "value": rule.value,
        "bucket": rule.bucket,
        "threshold": rule.threshold,
        "min_rise": rule.min_rise,
        "min_posts": rule.min_posts,
        "webhook_url": rule.webhook_url,
        "created_by": rule.created_by,
        "created_at": _iso(rule.created_at),
    }


def _iso(when: datetime) -> str:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


class Alerts:
    """Rules, their alerts and webhook deliveries for one database."""

    def __init__(self, audience: Audience, settings: InsightsSettings) -> None:
        self.audience = audience
        self.database = audience.database
        self.settings = settings
        self._sender: WebhookSender | None = None

    @property
    def sender(self) -> WebhookSender:
        if self._sender is None:
            self._sender = WebhookSender(self.settings)
        return self._sender

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()

    def add_rule(self, workspace: int, spec: RuleSpec, created_by: str = "") -> dict[str, Any]:
        typed, spec = spec.value.strip(), spec.validate()
        self.audience.check_brand(workspace, spec.kind, typed)  # the message names it as typed
        url = self.sender.check(spec.webhook_url) if spec.webhook_url else None
        with self.database.session() as session:
            if len(audience_repo.rules(session, workspace)) >= MAX_RULES:
                raise CodedError("too_many_rules", f"a workspace keeps at most {MAX_RULES} alert rules")
            rule = AlertRule(
                workspace_id=workspace,
                name=spec.name,
                kind=spec.kind,
                value=spec.value,
                bucket=spec.bucket,
                threshold=spec.threshold,
                min_rise=spec.min_rise,
                min_posts=spec.min_posts,
                webhook_url=url,
                created_by=created_by[:128],
            )
            session.add(rule)
            session.flush()
            return rule_view(rule)

    def rules(self, workspace: int) -> list[dict[str, Any]]:
        with self.database.session() as session:
            return [rule_view(r) for r in audience_repo.rules(session, workspace)]

    def remove_rule(self, workspace: int, rule_id: int) -> None:
        with self.database.session() as session:
            found = audience_repo.rules(session, workspace, rule_id)
            if not found:
                raise RuleNotFoundError(f"no alert rule {rule_id} in this workspace")
            session.delete(found[0])

    def check(self, workspace: int) -> list[dict[str, Any]]:
        """Evaluate every rule of the workspace; record the new jumps and send their webhooks. The new
        alerts (an empty list when nothing jumped since the last check)."""
        with self.database.session() as session:
            rules = audience_repo.rules(session, workspace)
        new: set[int] = set()
        for rule in rules:
            bucket = Bucket(rule.bucket)
            rows = self.audience.rows(workspace, rule.kind, Window(bucket=bucket), rule.value)
            created = rule.created_at if rule.created_at.tzinfo else rule.created_at.replace(tzinfo=UTC)
            for jump in jumps(rows, bucket, rule.threshold, rule.min_rise, rule.min_posts):
                # a jump that was over before the rule existed is listed, but no webhook announces it
                fresh = period_end(jump.period, bucket) > created
                status = "none" if not rule.webhook_url else "pending" if fresh else "skipped"
                with self.database.session() as session:
                    alert_id = audience_repo.add_alert(
                        session,
                        {"rule_id": rule.id, "workspace_id": workspace, "period": jump.period}
                        | {"posts": jump.posts, "negative_share": jump.negative_share}
                        | {"previous_share": jump.previous_share, "webhook_status": status},
                    )
                if alert_id is not None:
                    new.add(alert_id)
        self.deliver(workspace)  # the new ones, and earlier failures still under 3 attempts
        return [a for a in self.list(workspace, limit=10_000) if a["id"] in new]

    def deliver(self, workspace: int) -> int:
        """Send the webhooks still due (pending, or failed fewer than 3 times); how many were sent."""
        with self.database.session() as session:
            due = [(a.id, r) for a, r in audience_repo.undelivered(session, workspace, MAX_ATTEMPTS)]
        sent = 0
        for alert_id, rule in due:
            with self.database.session() as session:
                alert = session.get(Alert, alert_id)
                if alert is None:  # the rule was deleted meanwhile
                    continue
                payload = {"alert": alert_view(alert, rule)}
                try:
                    self.sender.post(str(rule.webhook_url), payload)
                    alert.webhook_status, alert.webhook_error = "sent", None
                    sent += 1
                except FetchError as exc:
                    log.warning("alert %s webhook failed: %s", alert_id, exc.message)
                    alert.webhook_status, alert.webhook_error = "failed", f"{exc.code}: {exc.message}"
                alert.webhook_attempts += 1
        return sent

    def list(self, workspace: int, rule_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        with self.database.session() as session:
            return [alert_view(a, r) for a, r in audience_repo.alerts(session, workspace, rule_id, limit)]


def alert_view(alert: Any, rule: AlertRule) -> dict[str, Any]:
    return {
        "id": alert.id,
        "rule_id": rule.id,
        "rule": rule.name,
        "kind": rule.kind,
        "value": rule.value,
        "bucket": rule.bucket,
        "period": alert.period.isoformat(),
        "posts": alert.posts,
        "negative_share": alert.negative_share,
        "previous_share": alert.previous_share,
        "threshold": rule.threshold,
        "webhook": {
            "status": alert.webhook_status,
            "attempts": alert.webhook_attempts,
            "error": alert.webhook_error,
        },
        "created_at": _iso(alert.created_at),
    }
