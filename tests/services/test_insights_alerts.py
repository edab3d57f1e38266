"""Negative-share alerts over the coffee team's feed (tests/services/test_insights.py): a jump fires once,
checking again fires nothing, a later jump fires again, and the webhook is POSTed (signed) to a real
loopback HTTP server only when the operator allows webhooks and that network."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from feedlens.config import InsightsSettings
from feedlens.core.errors import CodedError
from feedlens.services.analytics import Bucket
from feedlens.services.fetch import FetchError
from feedlens.services.insights.alerts import RuleSpec, jumps
from feedlens.storage.insights import PostRow
from feedlens.storage.insights_tables import AlertRule
from tests.support.insights_feed import build, ingest_rows, write_feeds

SECRET = "s3cret-for-signing-webhooks"
# April: a calm week (1 of 5 negative), then a second wave of complaints (4 of 5)
LATER = [
    ("q1", "dailygrind", 31, "Brewly's old blend is back, love it! #brewly", 80, 3, 0),
    ("q2", "latte_lena", 31, "Great to have the classic Brewly taste again 😊 #brewly", 3000, 200, 40),
    ("q3", "sam_k", 31, "Refund finally arrived, thank you Brewly #brewly", 20, 2, 0),
    ("q4", "catmom", 31, "Brewly latte art today, so cute #brewly", 600, 10, 2),
    ("q5", "coffee.critic", 31, "Brewly is still overpriced and mediocre. #brewly", 90, 12, 3),
]
SECOND_WAVE = [
    ("r1", "sam_k", 8, "Brewly app crashed and lost my order. Furious. #brewly", 40, 20, 5),
    ("r2", "dailygrind", 8, "Brewly forgot my order twice today, terrible #brewly", 50, 8, 1),
    ("r3", "coffee.critic", 9, "Brewly's service has become awful and slow. #brewly", 200, 40, 9),
    ("r4", "nomad.nik", 9, "Cold, bitter coffee at Brewly again. Sad. #brewly", 310, 22, 4),
    ("r5", "latte_lena", 10, "Brewly pastry was nice at least #brewly", 2100, 90, 10),
]


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    status = 204

    def do_POST(self) -> None:  # the handler's protocol names it
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Hook.received.append((dict(self.headers), body))
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.received, Hook.status = [], 204
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/brand-team"
    server.shutdown()
    server.server_close()


def _insights(**values: Any) -> InsightsSettings:
    return InsightsSettings(**values)


def test_a_jump_fires_once_and_a_later_jump_again(tmp_path: Path, hook: str) -> None:
    lib = build(
        f"sqlite:///{tmp_path / 'feedlens.db'}",
        tmp_path,
        insights=_insights(webhooks=True, webhook_allowed_networks=("127.0.0.1/32",), webhook_secret=SECRET),
    )
    alerts = lib.service.alerts
    spec = RuleSpec("Brewly complaints", "brand", "Brewly", "week", 0.5, 0.2, 4, webhook_url=hook)
    rule = alerts.add_rule(lib.workspace, spec, "test")
    assert rule["value"] == "brewly" and rule["webhook_url"] == hook
    _made_on(lib, rule["id"], datetime(2026, 3, 28, tzinfo=UTC))  # the team made it late in March
    fired = alerts.check(lib.workspace)
    # week 3: 4 of 6 posts negative after 2 of 5; week 4 (4 of 5) is high but rose less than 0.2
    assert [(a["period"], a["posts"], a["negative_share"], a["previous_share"]) for a in fired] == [
        ("2026-03-16", 6, 0.6667, 0.4)
    ]
    # the jump was over when the rule was made: listed, but no webhook announces old news
    assert fired[0]["webhook"]["status"] == "skipped" and Hook.received == []
    assert alerts.check(lib.workspace) == []  # checking again fires nothing
    # the April export (CSV) brings a calm week, then a second wave: one more alert, and its webhook
    for name, posts in (("calm", LATER), ("wave", _in_april(SECOND_WAVE))):
        (tmp_path / name).mkdir()
        ingest_rows(lib.database, lib.workspace, write_feeds(tmp_path / name, posts))
    fired = alerts.check(lib.workspace)
    assert [(a["period"], a["negative_share"]) for a in fired] == [("2026-04-06", 0.8)]
    assert fired[0]["webhook"] == {"status": "sent", "attempts": 1, "error": None}
    assert len(Hook.received) == 1
    headers, body = Hook.received[0]
    sent = json.loads(body)["alert"]
    assert (sent["value"], sent["period"], sent["negative_share"]) == ("brewly", "2026-04-06", 0.8)
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Feedlens-Signature"] == expected
    assert alerts.check(lib.workspace) == [] and len(Hook.received) == 1  # once
    assert [a["period"] for a in alerts.list(lib.workspace)] == ["2026-04-06", "2026-03-16"]
    lib.database.dispose()


def _in_april(posts: list[tuple[str, str, int, str, int, int, int]]) -> list[Any]:
    """write_feeds counts days from 1 March: these are April's."""
    return [(p[0], p[1], p[2] + 31, *p[3:]) for p in posts]


def _made_on(lib: Any, rule_id: int, when: datetime) -> None:
    """Date a rule back: jumps in periods that ended before it are old news (listed, not announced)."""
    with lib.database.session() as session:
        found = session.get(AlertRule, rule_id)
        assert found is not None
        found.created_at = when


def test_webhooks_are_off_unless_allowed(tmp_path: Path, hook: str) -> None:
    off = build(f"sqlite:///{tmp_path / 'off.db'}", tmp_path)
    spec = RuleSpec("complaints", "brand", "brewly", webhook_url=hook)
    with pytest.raises(FetchError, match="webhooks are off"):
        off.service.alerts.add_rule(off.workspace, spec)
    off.database.dispose()
    on = build(f"sqlite:///{tmp_path / 'on.db'}", tmp_path, insights=_insights(webhooks=True))
    with pytest.raises(FetchError, match="not public") as refused:  # loopback is not allowed by default
        on.service.alerts.add_rule(on.workspace, spec)
    assert refused.value.code == "address_refused"
    for url in ("ftp://example.com/x", "http://user:pw@example.com/", "http://169.254.169.254/latest"):
        with pytest.raises(FetchError):
            on.service.alerts.add_rule(on.workspace, RuleSpec("x", "brand", "brewly", webhook_url=url))
    with pytest.raises(CodedError, match="kind must be one of"):
        on.service.alerts.add_rule(on.workspace, RuleSpec("x", "colour", "red"))
    assert on.service.alerts.rules(on.workspace) == []
    on.database.dispose()


def test_a_failing_webhook_is_retried_then_given_up(tmp_path: Path, hook: str) -> None:
    lib = build(
        f"sqlite:///{tmp_path / 'feedlens.db'}",
        tmp_path,
        insights=_insights(webhooks=True, webhook_allowed_networks=("127.0.0.0/8",)),
    )
    Hook.status = 500
    spec = RuleSpec(
        "daily", "hashtag", "#Brewly", "day", threshold=1.0, min_rise=0.5, min_posts=1, webhook_url=hook
    )
    rule = lib.service.alerts.add_rule(lib.workspace, spec)
    _made_on(lib, rule["id"], datetime(2026, 3, 1, tzinfo=UTC))  # before the feed: every jump is news
    fired = lib.service.alerts.check(lib.workspace)
    assert fired and all(a["webhook"]["status"] == "failed" for a in fired)
    assert "HTTP 500" in str(fired[0]["webhook"]["error"])
    for _ in range(4):
        lib.service.alerts.check(lib.workspace)
    attempts = {a["webhook"]["attempts"] for a in lib.service.alerts.list(lib.workspace)}
    assert attempts == {3}  # three tries, then it stays failed
    assert len(Hook.received) == 3 * len(fired)
    lib.database.dispose()


def _row(post: int, day: int, label: str) -> PostRow:
    when = datetime(2026, 3, day, 12, tzinfo=UTC)
    return PostRow(
        post, "brewly", f"i{post}", when, "a", 1, 0, 0, -0.5 if label == "negative" else 0.5, label
    )


def test_jump_rule_by_hand() -> None:
    rows = [_row(1, 2, "negative"), _row(2, 2, "positive"), _row(3, 3, "negative"), _row(4, 3, "negative")]
    rows += [_row(5, 4, "unknown"), _row(6, 4, "negative"), _row(7, 5, "positive")]
    # days: 2 -> 1/2, 3 -> 2/2 (rise 0.5), 4 -> 1/1 (one post: under min_posts 2, skipped), 5 -> 0/1
    found = jumps(rows, Bucket.DAY, threshold=0.5, min_rise=0.3, min_posts=2)
    assert [(j.period, j.negative_share, j.previous_share) for j in found] == [
        (date(2026, 3, 2), 0.5, None),  # the first period counts against 0
        (date(2026, 3, 3), 1.0, 0.5),
    ]
    assert jumps(rows, Bucket.WEEK, threshold=0.5, min_rise=0.3, min_posts=2)[0].negative_share == 0.6667
