"""Workspaces, API keys (stored hashed) and the per-key rate limiter, over real databases."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from feedlens.services.access import AccessError, AccessService, Principal, RateLimiter, Scope
from feedlens.services.factory import Services


@pytest.fixture
def access(stored_services: Services) -> AccessService:
    return AccessService(stored_services.database)


INVALID_NAMES = ["", "Team", "-team", "_team", "team a", "team/a", "\u00e9t\u00e9", "a" * 65, "a.b", "team\n"]


def test_workspaces_are_validated_created_once_and_listed(access: AccessService) -> None:
    for name in INVALID_NAMES:
        with pytest.raises(AccessError) as caught:
            access.create_workspace(name)
        assert caught.value.code == "access_invalid", name
    assert access.workspaces() == []

    first = access.create_workspace("team-a")
    assert access.create_workspace("team-a") == first  # idempotent
    longest = "0" + "a_-" * 21
    assert len(longest) == 64
    second = access.create_workspace(longest)
    assert second != first
    assert access.workspace_id(longest) == second
    assert [w["name"] for w in access.workspaces()] == sorted(["team-a", longest])
    assert all(w["created_at"].endswith("+00:00") for w in access.workspaces())
    with pytest.raises(AccessError, match="no workspace named 'nope'"):
        access.workspace_id("nope")


def test_keys_are_shown_once_and_stored_hashed(access: AccessService, stored_services: Services) -> None:
    workspace = access.create_workspace("team-a")
    secret, listing = access.create_key("team-a", Scope.WRITE, name="uploader")
    assert secret.startswith("fl_") and len(secret) > 40
    assert listing["prefix"] == secret[:10] and listing["scope"] == "write"
    assert (listing["workspace"], listing["name"], listing["revoked_at"]) == ("team-a", "uploader", None)
    with stored_services.database.session() as session:
        stored = [tuple(str(v) for v in row) for row in session.execute(text("SELECT * FROM api_keys"))]
    assert len(stored) == 1
    assert not any(secret in value for value in stored[0])  # no column holds the secret
    assert hashlib.sha256(secret.encode()).hexdigest() in stored[0]
    assert secret not in str(access.keys("team-a"))

    principal = access.authenticate(secret)
    assert principal == Principal(
        key_id=listing["id"], workspace_id=workspace, workspace="team-a", scope=Scope.WRITE
    )
    with pytest.raises(AccessError):
        access.create_key("missing", Scope.READ)


def test_authenticate_refuses_unknown_malformed_and_revoked_keys(access: AccessService) -> None:
    access.create_workspace("team-a")
    access.create_workspace("team-b")
    secret, listing = access.create_key("team-a", Scope.ADMIN)
    other_secret, _ = access.create_key("team-b", Scope.READ)
    assert access.authenticate("fl_" + "x" * 43) is None
    assert access.authenticate(secret[3:]) is None  # without the prefix
    assert access.authenticate(secret + "x") is None
    assert access.authenticate("fl_" + "a" * 300) is None
    assert access.authenticate("") is None

    assert not access.revoke_key("team-b", listing["id"])  # another workspace's key: not found
    assert access.authenticate(secret) is not None
    assert access.revoke_key("team-a", listing["id"])
    assert not access.revoke_key("team-a", listing["id"])  # already revoked
    assert access.authenticate(secret) is None
    [revoked] = access.keys("team-a")
    assert revoked["revoked_at"] is not None and revoked["revoked_at"].endswith("+00:00")
    other = access.authenticate(other_secret)
    assert other is not None and (other.workspace, other.scope) == ("team-b", Scope.READ)


def test_scopes_are_ordered() -> None:
    assert list(Scope) == [Scope.READ, Scope.WRITE, Scope.ADMIN]
    allowed = {(have, need) for have in Scope for need in Scope if have.allows(need)}
    assert allowed == {
        (Scope.READ, Scope.READ),
        (Scope.WRITE, Scope.READ),
        (Scope.WRITE, Scope.WRITE),
        (Scope.ADMIN, Scope.READ),
        (Scope.ADMIN, Scope.WRITE),
        (Scope.ADMIN, Scope.ADMIN),
    }


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_allows_a_burst_then_refills() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)  # one token a second
    assert [limiter.take(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take(1)
    assert wait == pytest.approx(1.0) and wait > 0
    assert limiter.take(1) == pytest.approx(1.0)  # refused requests cost nothing
    assert limiter.take(2) == 0.0  # keys are independent

    clock.now += 0.5
    assert limiter.take(1) == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take(1) == 0.0
    assert limiter.take(1) > 0

    clock.now += 3600  # a long pause refills to the burst, not beyond
    assert [limiter.take(1) for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    assert limiter.take(1) > 0


def test_rate_limiter_retry_after_scales_with_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=6, burst=1, clock=clock)  # one token every 10 s
    assert limiter.take(7) == 0.0
    assert limiter.take(7) == pytest.approx(10.0)
    clock.now += 4
    assert limiter.take(7) == pytest.approx(6.0)
    clock.now += 6
    assert limiter.take(7) == 0.0


def test_aws_signing_credentials_derive_from_the_key(access: AccessService) -> None:
    from feedlens.services.access import signing_secret

    access.create_workspace("team-a")
    secret, view = access.create_key("team-a", Scope.WRITE)
    key_id, derived = access.aws_credentials(secret) or ("", "")
    assert key_id == f"feedlens-{view['id']}" and derived == signing_secret(secret) != secret
    found = access.sigv4_principal(key_id)
    assert found is not None and found[1] == derived and found[0].scope is Scope.WRITE
    for bad in (
        "",
        "feedlens-",
        "feedlens-x",
        f"feedlens-{view['id'] + 99}",
        "AKIA123",
        "feedlens-" + "9" * 40,
    ):
        assert access.sigv4_principal(bad) is None, bad
    assert access.aws_credentials("fl_not-a-key") is None
    # a key made before signing secrets existed gets one when its holder asks for AWS credentials
    with access.database.session() as session:
        session.execute(text("UPDATE api_keys SET signing_secret = NULL"))
    assert access.sigv4_principal(key_id) is None
    assert access.aws_credentials(secret) == (key_id, derived)
    assert access.sigv4_principal(key_id) is not None
    access.revoke_key("team-a", view["id"])
    assert access.sigv4_principal(key_id) is None and access.aws_credentials(secret) is None
