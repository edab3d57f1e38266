"""The database schema (SQLAlchemy 2 declarative). Changing it means a new Alembic migration.

Ids of objects a client sees (images, jobs) are random hex strings, not counters, so one workspace cannot
guess or enumerate another's. Times are timezone-aware UTC.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from feedlens.core.results.base import AnalyzerResult
from feedlens.core.results.loading import load_result

# Stable constraint names, so migrations can refer to them on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return secrets.token_hex(12)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    prefix: Mapped[str] = mapped_column(String(16), index=True)  # shown in listings; the secret never is
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the whole key
    # AWS Signature V4 needs a secret the server can recompute HMACs with: a value derived from the key
    # (services/access.py), so the key itself is still never stored. NULL for keys made before migration 0004.
    signing_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    scope: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("workspace_id", "sha256"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))  # of the original bytes: the dedup key
    blob: Mapped[str] = mapped_column(String(64), index=True)  # sha256 of the stored (sanitised) copy
    format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(Text, default="")  # file name, URL or "upload"
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    analyses: Mapped[list[Analysis]] = relationship(
        back_populates="image", cascade="all, delete-orphan", passive_deletes=True
    )


class Post(Base):
    """A social-media post; its images are linked through post_images (carousels, reposts)."""

    __tablename__ = "posts"
    __table_args__ = (UniqueConstraint("workspace_id", "platform", "post_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32), default="")
    post_id: Mapped[str] = mapped_column(String(128))
    author: Mapped[str | None] = mapped_column(String(256), index=True, default=None)
    caption: Mapped[str | None] = mapped_column(Text, default=None)
    hashtags: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime | None] = mapped_column(index=True, default=None)
    likes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    comments: Mapped[int | None] = mapped_column(BigInteger, default=None)
    shares: Mapped[int | None] = mapped_column(BigInteger, default=None)
    url: Mapped[str | None] = mapped_column(Text, default=None)


class PostImage(Base):
    __tablename__ = "post_images"

    post_pk: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[str] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)


class Hashtag(Base):
    """One row per (post, tag), lower-cased without '#', so hashtag filters use an index, not JSON."""

    __tablename__ = "hashtags"

    post_pk: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(256), primary_key=True, index=True)


class Analysis(Base):
    """One analyzer's result for one image at one analyzer version; older versions are kept."""

    __tablename__ = "analyses"
    __table_args__ = (UniqueConstraint("image_id", "analyzer", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    analyzer: Mapped[str] = mapped_column(String(32))
    version: Mapped[str] = mapped_column(String(256))
    result: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    image: Mapped[Image] = relationship(back_populates="analyses")

    @property
    def loaded(self) -> AnalyzerResult | None:
        """The result as its type (core/results/loading.py); None for one of another schema version."""
        return load_result(self.analyzer, self.result)


class Facet(Base):
    """Searchable facts derived from the newest analyses (label names, verdicts, emotions...).

    Filters and, later, analytics join on this narrow table instead of parsing result JSON in SQL,
    which SQLite and PostgreSQL do differently.
    """

    __tablename__ = "facets"
    __table_args__ = (Index("ix_facets_kind_value", "kind", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    analyzer: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(256))
    score: Mapped[float | None] = mapped_column(Float, default=None)


class Embedding(Base):
    """An image's vector of one kind: `visual` (similar images, duplicates), `content` (what the image
    shows, in sentence space) and `semantic` (content fused with its posts' captions: word queries).
    `model` is the producing analyzer's version: a model change means re-embedding."""

    __tablename__ = "embeddings"

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    model: Mapped[str] = mapped_column(String(256))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # grows with every write (storage/embeddings.py): what a search index has read up to
    seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", index=True)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending, running, done
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    items: Mapped[list[JobItem]] = relationship(
        back_populates="job", cascade="all, delete-orphan", passive_deletes=True, order_by="JobItem.position"
    )


class JobItem(Base):
    """One image of a batch. Uploaded bytes wait in the blob store (`staged_blob`) until processed."""

    __tablename__ = "job_items"
    __table_args__ = (UniqueConstraint("job_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)  # URL, or the uploaded file's name
    staged_blob: Mapped[str | None] = mapped_column(String(64), default=None)
    post: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending, done, failed
    image_id: Mapped[str | None] = mapped_column(ForeignKey("images.id", ondelete="SET NULL"), default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The queue (services/job_queue.py): which replica works on the item, until when, how often it began.
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    job: Mapped[Job] = relationship(back_populates="items")


class TaxonomyVersion(Base):
    """A workspace's category taxonomy; every change is a new version, the highest is current."""

    __tablename__ = "taxonomies"
    __table_args__ = (UniqueConstraint("workspace_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CategoryLabel(Base):
    """A person's (or an import's) statement that an image does (`positive`) or does not show a category.
    Ground truth for trained category models; keyed by category name so it survives taxonomy versions."""

    __tablename__ = "category_labels"
    __table_args__ = (UniqueConstraint("image_id", "category"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(64))
    positive: Mapped[bool] = mapped_column(default=True)
    source: Mapped[str] = mapped_column(String(32), default="api")  # api, cli, folder, csv
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CategoryModel(Base):
    """A trained category model of a workspace: weights (npz, no pickle), what it was trained on, metrics."""

    __tablename__ = "category_models"
    __table_args__ = (UniqueConstraint("workspace_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    taxonomy_version: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Brand(Base):
    """A brand a workspace watches for: its name, spellings and hashtags; logos in brand_logos."""

    __tablename__ = "brands"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    aliases: Mapped[list[Any]] = mapped_column(default=list)
    hashtags: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    logos: Mapped[list[BrandLogo]] = relationship(
        back_populates="brand", cascade="all, delete-orphan", passive_deletes=True, order_by="BrandLogo.id"
    )


class BrandLogo(Base):
    """A reference logo: the stored image (blob store, kind `logos`) and its local features, computed once
    (npz of keypoints and descriptors, no pickle)."""

    __tablename__ = "brand_logos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    blob: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    features: Mapped[bytes] = mapped_column(LargeBinary)
    features_version: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    brand: Mapped[Brand] = relationship(back_populates="logos")


class BrandRegistryVersion(Base):
    """Bumped on every change to a workspace's brands, so results (and cached indexes) know their age."""

    __tablename__ = "brand_registry_versions"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, default=0)


class TrainedModel(Base):
    """A model trained for a workspace's task (issue 7's registry): one immutable version with its artifacts
    (blob digests of model.pt / model.onnx / model.int8.onnx / report.html / metrics.json), metrics, the hash
    of the data it saw, its parameters and the model it was trained to replace (`parent_id`)."""

    __tablename__ = "trained_models"
    __table_args__ = (UniqueConstraint("workspace_id", "task", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(16))  # probe, finetune
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("trained_models.id", ondelete="SET NULL"))
    dataset_hash: Mapped[str] = mapped_column(String(64))
    provenance: Mapped[str] = mapped_column(Text, default="")
    classes: Mapped[list[Any]] = mapped_column(default=list)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    training: Mapped[dict[str, Any]] = mapped_column(default=dict)
    artifacts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # artifact name -> blob digest
    runtime: Mapped[str] = mapped_column(String(8))  # the ONNX file served: int8 or fp32
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelDeployment(Base):
    """What serves a workspace's task: the `production` alias, and an optional A/B candidate (mode `split`:
    `ab_share` of images are answered by the candidate; `shadow`: the candidate only predicts alongside)."""

    __tablename__ = "model_deployments"

    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    task: Mapped[str] = mapped_column(String(32), primary_key=True)
    production_id: Mapped[int | None] = mapped_column(ForeignKey("trained_models.id", ondelete="SET NULL"))
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("trained_models.id", ondelete="SET NULL"))
    ab_mode: Mapped[str] = mapped_column(String(8), default="off")  # off, split, shadow
    ab_share: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeploymentEvent(Base):
    """Every change of a deployment (promote, rollback, ab), in order: the audit trail, rollback's stack."""

    __tablename__ = "deployment_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("trained_models.id", ondelete="SET NULL"))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelPrediction(Base):
    """A trained model's prediction for a stored image: both arms of an A/B test are recorded (`served` says
    which answered), so live accuracy can be compared on the same images once people label them."""

    __tablename__ = "model_predictions"
    __table_args__ = (UniqueConstraint("image_id", "model_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(32))
    model_id: Mapped[int] = mapped_column(ForeignKey("trained_models.id", ondelete="CASCADE"), index=True)
    arm: Mapped[str] = mapped_column(String(16))  # production, candidate
    served: Mapped[bool] = mapped_column(default=True)
    label: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Moderation review states. HIDDEN ones (waiting for a person, or rejected by one) are what
# FEEDLENS_REVIEW__HIDE_UNREVIEWED keeps out of listings, search and analytics. An image without a
# review_items row was never queued (state "none").
REVIEW_STATES = ("pending", "approved", "rejected", "escalated")
HIDDEN_REVIEW_STATES = ("pending", "escalated", "rejected")


class Correction(Base):
    """A person's correction (or confirmation) of what the system said about an image (issue 8): `value`
    is what they said, `previous` what the system predicted at that moment, `model_version` which version
    said it. Every correction is kept; the newest about an image wins."""

    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # categories, safety
    value: Mapped[dict[str, Any]] = mapped_column()
    previous: Mapped[dict[str, Any]] = mapped_column()
    model_version: Mapped[str] = mapped_column(String(256), default="")
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewItem(Base):
    """An image's place in the moderation review queue: its state and, from the safety result that put it
    there, verdict, risk (the unsafe score), uncertainty and the priority the queue is ordered by.

    A table of its own rather than columns on `images`: the queue's fields change with every scan and
    decision while image rows are written once at ingest, and most images never enter the queue."""

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_workspace_state_priority", "workspace_id", "state", "priority"),)

    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))  # one of REVIEW_STATES
    verdict: Mapped[str | None] = mapped_column(String(16), default=None)
    risk: Mapped[float | None] = mapped_column(Float, default=None)
    uncertainty: Mapped[float] = mapped_column(Float, default=0.0)
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    safety_version: Mapped[str] = mapped_column(String(256), default="")
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ModerationDecision(Base):
    """A moderator's decision on an image (from the review queue or a safety correction), with the verdict
    and risk the system had given it: the ground truth threshold calibration reads."""

    __tablename__ = "moderation_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    image_id: Mapped[str] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(16))  # approve, reject, escalate
    reason: Mapped[str] = mapped_column(Text, default="")
    verdict_before: Mapped[str | None] = mapped_column(String(16), default=None)
    risk: Mapped[float | None] = mapped_column(Float, default=None)
    source: Mapped[str] = mapped_column(String(16), default="review")  # review, correction
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LearningCycle(Base):
    """One turn of the retraining loop (issue 8): a candidate trained on the labels of the moment,
    scored with production on held-out images neither trained on, promoted only if better by the margin."""

    __tablename__ = "learning_cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    task: Mapped[str] = mapped_column(String(32))
    labels: Mapped[int] = mapped_column(Integer)  # labelled images the candidate's dataset had
    holdout: Mapped[int] = mapped_column(Integer)  # images both models were scored on
    metric: Mapped[str] = mapped_column(String(32))
    candidate_version: Mapped[int | None] = mapped_column(Integer)
    candidate_score: Mapped[float | None] = mapped_column(Float)
    production_version: Mapped[int | None] = mapped_column(Integer)
    production_score: Mapped[float | None] = mapped_column(Float)
    promoted: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    trigger: Mapped[str] = mapped_column(String(16), default="command")  # command, labels
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
