"""Token buckets in the database, shared by every API replica on one PostgreSQL (migration 0014).

One row per (API key, bucket): the tokens left and when they were last refilled (seconds since the epoch,
by the replica's clock: hosts keep their clocks in step, as job leases already ask). Taking a token locks
the row for its transaction, so replicas taking at the same moment queue on it and never spend one token
twice.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, String, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from feedlens.storage.tables import Base


class RateBucket(Base):
    __tablename__ = "rate_buckets"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(16), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    refilled_at: Mapped[float] = mapped_column(Float)


def take(session: Session, key_id: int, bucket: str, rate: float, burst: float, now: float) -> float:
    """Take one token of the key's bucket (PostgreSQL): 0 if there was one, else the seconds until there
    is. `rate`: tokens per second; `burst`: the most a bucket holds (a new bucket starts full)."""
    session.execute(
        insert(RateBucket)
        .values(key_id=key_id, bucket=bucket, tokens=burst, refilled_at=now)
        .on_conflict_do_nothing()
    )
    row = session.execute(
        select(RateBucket).where(RateBucket.key_id == key_id, RateBucket.bucket == bucket).with_for_update()
    ).scalar_one()
    # a replica whose clock is behind the last refill adds nothing rather than taking tokens back
    tokens = min(burst, row.tokens + max(0.0, now - row.refilled_at) * rate)
    row.refilled_at = max(now, row.refilled_at)
    if tokens >= 1.0:
        row.tokens = tokens - 1.0
        return 0.0
    row.tokens = tokens
    return (1.0 - tokens) / rate
