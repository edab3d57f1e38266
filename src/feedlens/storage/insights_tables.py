"""Tables of audience insights (issue 26, docs/insights.md); migration 0010 creates them.

They live beside `tables.py` rather than in it and join the same `Base.metadata` when this module is
imported. Every row hangs off an image, a post or a workspace with ON DELETE CASCADE, so erasing an image
or an author erases what insights derived from them.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from feedlens.storage.tables import Base, utcnow


class InsightImage(Base):
    """An image's sentiment (one score and its parts, each None when the image had nothing for it) at a
    method `version`, and whether its stored copy was read for a location."""

    __tablename__ = "insight_images"
    __table_args__ = (Index("ix_insight_images_workspace_label", "workspace_id", "label"),)

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float, default=None)
    label: Mapped[str] = mapped_column(String(16))  # positive, neutral, negative, unknown
    caption: Mapped[float | None] = mapped_column(Float, default=None)
    image_text: Mapped[float | None] = mapped_column(Float, default=None)
    faces: Mapped[float | None] = mapped_column(Float, default=None)
    places_scanned: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InsightPost(Base):
    """A post's sentiment: its caption, the mean of its images' text and faces parts, combined."""

    __tablename__ = "insight_posts"
    __table_args__ = (Index("ix_insight_posts_workspace_label", "workspace_id", "label"),)

    post_pk: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    score: Mapped[float | None] = mapped_column(Float, default=None)
    label: Mapped[str] = mapped_column(String(16))
    caption: Mapped[float | None] = mapped_column(Float, default=None)
    image_text: Mapped[float | None] = mapped_column(Float, default=None)
    faces: Mapped[float | None] = mapped_column(Float, default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InsightPlace(Base):
    """Where an image was taken (`exif`: the stored copy's GPS) or posted from (`feed`: the export's
    location), kept only while FEEDLENS_STORE_METADATA=all. A name, coordinates, or both."""

    __tablename__ = "insight_places"

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(String(8), primary_key=True)  # exif, feed
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    lat: Mapped[float | None] = mapped_column(Float, default=None)
    lon: Mapped[float | None] = mapped_column(Float, default=None)
    name: Mapped[str | None] = mapped_column(String(128), default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AlertRule(Base):
    """A team's rule: alert when the negative share of posts about a brand, hashtag or category reaches
    `threshold` and rose at least `min_rise` over the period before, in a period with `min_posts` posts."""

    __tablename__ = "insight_alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # brand, hashtag, category
    value: Mapped[str] = mapped_column(String(256))
    bucket: Mapped[str] = mapped_column(String(8))  # day, week
    threshold: Mapped[float] = mapped_column(Float)
    min_rise: Mapped[float] = mapped_column(Float)
    min_posts: Mapped[int] = mapped_column(Integer)
    webhook_url: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Alert(Base):
    """One jump a rule caught: one row per (rule, period), so checking again never fires twice."""

    __tablename__ = "insight_alerts"
    __table_args__ = (UniqueConstraint("rule_id", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("insight_alert_rules.id", ondelete="CASCADE"))
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    period: Mapped[date] = mapped_column(Date)
    posts: Mapped[int] = mapped_column(Integer)
    negative_share: Mapped[float] = mapped_column(Float)
    previous_share: Mapped[float | None] = mapped_column(Float, default=None)
    # none (no webhook), pending, sent, failed, skipped (the jump predates the rule)
    webhook_status: Mapped[str] = mapped_column(String(16), default="none")
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    webhook_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Engagement(Base):
    """A follower's engagement with an image (like, comment, share, save, view): what recommendations
    learn from. One row per (follower, image, kind), so importing the same export twice changes nothing."""

    __tablename__ = "insight_engagements"
    __table_args__ = (
        UniqueConstraint("workspace_id", "follower", "image_id", "kind"),
        Index("ix_insight_engagements_workspace_follower", "workspace_id", "follower"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    follower: Mapped[str] = mapped_column(String(256))  # a handle, as the export names people
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
