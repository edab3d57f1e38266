"""Rate limits that hold across API replicas: two limiters (two replicas) over one real PostgreSQL spend
one budget per key and bucket; refill follows the clock; a clock behind the last refill takes nothing
back; a revoked key's buckets go with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from feedlens.services.access import AccessService, Bucket, RateLimiter, Scope, SharedRateLimiter
from feedlens.services.factory import Services
from feedlens.storage.database import Database
from feedlens.storage.rate_limits import RateBucket
from feedlens.storage.tables import ApiKey


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    database.migrate()
    yield database
    database.dispose()


def key_ids(database: Database, n: int) -> list[int]:
    access = AccessService(database)
    access.create_workspace("team-r")
    ids = []
    for _ in range(n):
        secret, _ = access.create_key("team-r", Scope.WRITE)
        principal = access.authenticate(secret)
        assert principal is not None
        ids.append(principal.key_id)
    return ids


def test_two_replicas_spend_one_budget(pg: Database) -> None:
    clock = Clock()
    a, b = (SharedRateLimiter(pg, per_minute=60, burst=4, clock=clock) for _ in range(2))
    key, other = key_ids(pg, 2)
    taken = [(a if n % 2 else b).take(key) for n in range(4)]
    assert taken == [0.0] * 4  # the burst, spent through both replicas
    assert a.take(key) == pytest.approx(1.0) and b.take(key) == pytest.approx(1.0)  # 60/min: 1 s to the next
    assert a.take(other) == 0.0 and a.take(key, Bucket.VIEWS) == 0.0  # other keys and buckets are apart
    clock.now += 2.5  # 2.5 tokens come back
    assert [b.take(key), a.take(key)] == [0.0, 0.0] and a.take(key) == pytest.approx(0.5)
    clock.now -= 100  # a replica whose clock is behind: no tokens appear or vanish
    assert b.take(key) == pytest.approx(0.5)


def test_a_deleted_key_takes_its_buckets_with_it(pg: Database) -> None:
    limiter = SharedRateLimiter(pg, per_minute=600, burst=10, clock=Clock())
    [key] = key_ids(pg, 1)
    limiter.take(key)
    limiter.take(key, Bucket.VIEWS)
    with pg.session() as session:
        assert session.scalar(select(func.count()).select_from(RateBucket)) == 2
        session.execute(delete(ApiKey).where(ApiKey.id == key))
    with pg.session() as session:
        assert session.scalar(select(func.count()).select_from(RateBucket)) == 0


def test_the_builder_shares_limits_only_on_postgresql(
    services: Services, postgres_url: str, tmp_path: Path
) -> None:
    on_pg = services.with_settings(services.settings.model_copy(update={"database_url": postgres_url}))
    assert isinstance(on_pg.rate_limiter(), SharedRateLimiter)
    on_sqlite = services.with_settings(services.settings.model_copy(update={"data_dir": tmp_path}))
    local = on_sqlite.rate_limiter()
    assert type(local) is RateLimiter
