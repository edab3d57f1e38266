"""Settings from the environment (FEEDLENS_*), validated when the process starts."""

from __future__ import annotations

import ipaddress
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from feedlens.core.errors import ConfigError


def _default_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "feedlens"


class DecodeLimits(BaseModel):
    """Limits the safe decoder applies before spending memory on an untrusted image.

    Set from the environment as FEEDLENS_DECODE__MAX_BYTES and so on.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: int = Field(20 * 1024 * 1024, gt=0, description="largest accepted file, bytes")
    max_pixels: int = Field(75_000_000, gt=0, description="largest width*height, read from the header")
    min_side: int = Field(16, ge=1, description="smallest accepted width or height, px")
    max_aspect_ratio: float = Field(
        25.0, ge=1.0, description="longest side / shortest side at most this (a 25:1 panorama or banner)"
    )


class FetchLimits(BaseModel):
    """The safe URL fetcher's policy. Fetching is opt-in: nothing leaves the machine unless enabled.

    Environment: FEEDLENS_FETCH__ENABLED=true, FEEDLENS_FETCH__ALLOWED_NETWORKS='["127.0.0.1/32"]'.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(False, description="allow image URLs at all (API, batches, feed files)")
    allowed_networks: tuple[str, ...] = Field(
        (),
        description="CIDRs allowed even though private/loopback/link-local (e.g. 127.0.0.1/32 in tests)",
    )
    max_bytes: int = Field(20 * 1024 * 1024, gt=0, description="largest response body, bytes")
    timeout_s: float = Field(10.0, gt=0, le=300, description="connect + read timeout per request, seconds")
    max_redirects: int = Field(3, ge=0, le=20)

    @field_validator("allowed_networks")
    @classmethod
    def _networks_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad entry
        return value


class MetadataPolicy(StrEnum):
    """What metadata the stored copy of an image keeps (the analysis always sees the original)."""

    NONE = "none"  # strip EXIF/XMP/IPTC/text chunks
    NO_GPS = "no_gps"  # keep EXIF but drop its GPS block
    ALL = "all"  # byte-identical copy


class ApiLimits(BaseModel):
    """Limits of the HTTP API. FEEDLENS_API__RATE_PER_MINUTE=600 and so on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_request_bytes: int = Field(25 * 1024 * 1024, gt=0, description="largest request body")
    max_batch_items: int = Field(1000, ge=1, description="items in one POST /v1/batches")
    rate_per_minute: int = Field(600, ge=1, description="requests per API key per minute (token bucket)")
    burst: int = Field(60, ge=1, description="requests a key may send at once before the rate applies")
    inference_workers: int = Field(1, ge=1, description="threads running models; each uses all cores")
    queue_size: int = Field(
        4, ge=0, description="requests waiting for a worker before new ones get 429 + Retry-After"
    )
    page_size_max: int = Field(200, ge=1)


class CategorySettings(BaseModel):
    """Categorisation. FEEDLENS_CATEGORIES__THRESHOLD=0.4 (docs/categories.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="one score at which every category is assigned; unset: each category's own threshold",
    )
    caption_weight: float = Field(
        1.0,
        ge=0.0,
        le=2.0,
        description="how much captions and hashtags count (1: as fitted on described images; 0: ignored)",
    )


class LearningSettings(BaseModel):
    """The retraining loop (docs/feedback.md). FEEDLENS_LEARNING__RETRAIN_AFTER=50."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retrain_after: int = Field(
        50, ge=0, le=1_000_000, description="new labelled images that start a cycle in the server (0: never)"
    )
    promote_margin: float = Field(
        0.01, ge=0.0, le=1.0, description="how much better on the holdout a candidate must be to be promoted"
    )
    metric: Literal["macro_f1", "accuracy"] = Field("macro_f1", description="what the holdout is scored by")
    mode: Literal["probe", "finetune"] = Field("probe", description="how cycles train their candidate")


class ReviewSettings(BaseModel):
    """The moderation review queue (docs/feedback.md). FEEDLENS_REVIEW__HIDE_UNREVIEWED=true and so on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hide_unreviewed: bool = Field(
        False,
        description="keep images waiting for review (pending, escalated) and rejected ones out of listings, "
        "search and analytics",
    )
    margin: float = Field(
        0.1,
        ge=0.0,
        le=0.5,
        description="a safety score this close to a verdict threshold is uncertain: the image is queued",
    )
    uncertainty_weight: float = Field(
        0.25, ge=0.0, le=2.0, description="queue priority = risk + this x uncertainty"
    )
    target_precision: float = Field(
        0.9, gt=0.0, le=1.0, description="calibration suggests the lowest threshold reaching this precision"
    )


class SearchSettings(BaseModel):
    """Search scoring and the vector index. FEEDLENS_SEARCH__MIN_SCORE=0.6 and so on (docs/search.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_score: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="relevance cut-off on calibrated scores; weaker matches are not returned",
    )
    # Logistic calibration cosine -> [0, 1], measured on the sample library (docs/search.md). The text
    # centre is 0.50, not the fitted 0.607: there precision ~ recall and every unrelated query is still empty,
    # where the fitted centre left two thirds of real queries with no result at all.
    text_center: float = Field(0.50, ge=-1.0, le=1.0, description="word-query cosine that scores 0.5")
    text_scale: float = Field(0.079, gt=0.0, le=1.0)
    image_center: float = Field(0.53, ge=-1.0, le=1.0, description="image-query cosine that scores 0.5")
    image_scale: float = Field(0.033, gt=0.0, le=1.0)
    caption_weight: float = Field(0.3, ge=0.0, le=10.0, description="weight of captions+hashtags vs content")
    negative_weight: float = Field(0.5, ge=0.0, le=2.0, description="how far negative terms push a query")
    backend: str = Field("faiss", pattern="^(faiss|exact)$", description="vector index backend")
    # Duplicate relations (thresholds picked from measured precision/recall curves, docs/search.md).
    near_cosine: float = Field(0.93, ge=0.0, le=1.0, description="visual cosine for a near-duplicate")
    near_phash_bits: int = Field(14, ge=0, le=64, description="pHash Hamming distance for a near-duplicate")
    near_phash_cosine: float = Field(0.80, ge=0.0, le=1.0, description="cosine needed with a pHash match")
    similar_cosine: float = Field(0.58, ge=0.0, le=1.0, description="visual cosine for 'similar'")
    save_interval_s: float = Field(30.0, ge=0.0, description="persist changed indexes at most this often")
    removal_check_s: float = Field(
        1.0,
        ge=0.0,
        le=3600.0,
        description="a search counts the table to find vectors another process or replica erased at most "
        "this often (new vectors are picked up on every search; erasures here at once)",
    )


class InsightsSettings(BaseModel):
    """Audience insights (docs/insights.md): post sentiment, alert webhooks, places, recommendations.
    FEEDLENS_INSIGHTS__WEBHOOKS=true and so on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # How much each part of a post counts in its one sentiment score (a weighted mean of the parts present).
    caption_weight: float = Field(1.0, ge=0.0, le=10.0, description="weight of the caption and hashtags")
    image_text_weight: float = Field(0.5, ge=0.0, le=10.0, description="weight of the text read in images")
    faces_weight: float = Field(0.5, ge=0.0, le=10.0, description="weight of the faces' emotions")
    positive_at: float = Field(0.05, ge=0.0, le=1.0, description="a score from here is positive")
    negative_at: float = Field(-0.05, ge=-1.0, le=0.0, description="a score at or below this is negative")
    webhooks: bool = Field(
        False, description="allow alert rules to POST to a webhook URL (SSRF-checked like image fetching)"
    )
    webhook_allowed_networks: tuple[str, ...] = Field(
        (), description="CIDRs a webhook may reach although private or loopback (e.g. an internal chat relay)"
    )
    webhook_timeout_s: float = Field(5.0, gt=0, le=60, description="connect + answer time per webhook call")
    webhook_secret: str | None = Field(
        None, min_length=16, description="signs each webhook body (HMAC-SHA256 in X-Feedlens-Signature)"
    )
    place_precision: int = Field(
        1, ge=0, le=3, description="decimal places of the latitude/longitude grid places are grouped on"
    )
    recommend_visual_weight: float = Field(
        0.7, ge=0.0, le=1.0, description="visual similarity's share of relevance (the rest: categories)"
    )
    recommend_diversity: float = Field(
        0.3, ge=0.0, le=1.0, description="how much a pick must differ from those before it (0: none)"
    )
    recommend_duplicate_cosine: float = Field(
        0.93, ge=0.0, le=1.0, description="visual cosine from which two images count as the same picture"
    )

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad entry
        return value


class JobSettings(BaseModel):
    """Batch jobs claimed from the database (services/job_queue.py, docs/scale.md):
    FEEDLENS_JOBS__LEASE_SECONDS=60 and so on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lease_seconds: float = Field(
        60.0,
        ge=1.0,
        le=3600.0,
        description="a replica's claim on batch items, renewed while it works; another replica takes over "
        "items whose claim ran out (their replica died)",
    )
    max_attempts: int = Field(
        3, ge=1, le=100, description="times an item is started before it fails as too many attempts"
    )
    poll_seconds: float = Field(
        1.0, gt=0.0, le=60.0, description="how often an idle worker looks for work other replicas submitted"
    )
    replica_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="this process's name in claims, unique per running replica; default host:port under "
        "`feedlens serve` (a restart takes its own claims back at once), else host-pid-random",
    )


# OpenAI CLIP's image normalisation (its preprocess and Hugging Face's CLIPImageProcessor).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipSettings(BaseModel):
    """A user-supplied CLIP or SigLIP export replacing the sentence-space stand-in (docs/search.md).
    FEEDLENS_CLIP__IMAGE_MODEL, __TEXT_MODEL (.onnx) and __TOKENIZER (tokenizer.json): all three or none."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image_model: Path | None = Field(None, description="image tower .onnx: pixels (N, 3, S, S) -> (N, D)")
    text_model: Path | None = Field(None, description="text tower .onnx: token ids (N, L) -> (N, D)")
    tokenizer: Path | None = Field(None, description="the text tower's Hugging Face tokenizer.json")
    name: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        description="shown in result versions; default the image model's file name",
    )
    image_size: int = Field(224, ge=16, le=1024, description="S: the side the image tower takes, px")
    resize: Literal["crop", "stretch"] = Field(
        "crop", description="crop: shorter side to S, centre S x S (CLIP); stretch: to S x S (SigLIP)"
    )
    mean: tuple[float, float, float] = Field(CLIP_MEAN, description="per-channel mean of pixels in [0, 1]")
    std: tuple[float, float, float] = Field(CLIP_STD, description="per-channel std of pixels in [0, 1]")
    context_length: int = Field(77, ge=2, le=4096, description="L: token ids per text, padded or truncated")
    pad_id: int | None = Field(
        None, ge=0, description="token id that pads texts to L; default the tokenizer's own, else 0 (CLIP)"
    )

    @property
    def enabled(self) -> bool:
        return self.image_model is not None

    @field_validator("image_model", "text_model", "tokenizer")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        files = {"IMAGE_MODEL": self.image_model, "TEXT_MODEL": self.text_model, "TOKENIZER": self.tokenizer}
        unset = [f"FEEDLENS_CLIP__{k}" for k, v in files.items() if v is None]
        if unset and len(unset) < len(files):
            raise ValueError(
                f"{', '.join(unset)} must be set too: a CLIP model needs both towers and its tokenizer"
            )
        for key, path in files.items():
            if path is not None and not path.is_file():
                raise ValueError(f"FEEDLENS_CLIP__{key}: no such file {path}")
        if min(self.std) <= 0:
            raise ValueError("FEEDLENS_CLIP__STD: every value must be above 0")
        return self


YOLO_CLASS_FILES = (".txt", ".yaml", ".yml", ".json")


class YoloSettings(BaseModel):
    """A user-supplied YOLO detector (an ultralytics yolov8 / yolo11 ONNX export) replacing the embedded
    centernet in the `objects` analyzer (docs/models.md). FEEDLENS_OBJECTS_YOLO__MODEL=/models/yolo11n.onnx;
    the model itself is checked when it loads (analyzers/yolo.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: Path | None = Field(None, description=".onnx: images (N, 3, H, W) -> (N, 4 + classes, anchors)")
    classes: Path | None = Field(
        None,
        description="class names, .txt (one a line), .yaml or .json (a list or {index: name}); default the "
        "`names` the export wrote into the model's metadata",
    )
    name: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="names the detector in results and versions; default the model's file name",
    )
    image_size: int | None = Field(
        None, ge=32, le=4096, description="S for a model exported with dynamic=True and no `imgsz` metadata"
    )
    min_score: float = Field(
        0.25, gt=0.0, le=1.0, description="boxes the model scores at least this are reported (its own score)"
    )
    iou: float = Field(0.45, gt=0.0, le=1.0, description="NMS: boxes of one class overlapping more are one")

    @property
    def enabled(self) -> bool:
        return self.model is not None

    @field_validator("model", "classes")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _files(self) -> Self:
        if self.model is None and self.classes is not None:
            raise ValueError("FEEDLENS_OBJECTS_YOLO__CLASSES is set but FEEDLENS_OBJECTS_YOLO__MODEL is not")
        for key, path in {"MODEL": self.model, "CLASSES": self.classes}.items():
            if path is not None and not path.is_file():
                raise ValueError(f"FEEDLENS_OBJECTS_YOLO__{key}: no such file {path}")
        if self.classes is not None and self.classes.suffix.lower() not in YOLO_CLASS_FILES:
            raise ValueError(
                f"FEEDLENS_OBJECTS_YOLO__CLASSES: {self.classes.name} is not {', '.join(YOLO_CLASS_FILES)}"
            )
        return self


class ClusterSettings(BaseModel):
    """Ingest on a Ray cluster (`feedlens ingest --ray`, docs/scale.md):
    FEEDLENS_CLUSTER__CPUS_PER_ACTOR=2 and so on; the cluster's address is FEEDLENS_RAY_ADDRESS."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cpus_per_actor: int = Field(
        1, ge=1, le=256, description="CPUs each analysis actor reserves (and its model threads)"
    )
    actors: int | None = Field(
        None, ge=1, le=10_000, description="analysis actors; default the cluster's CPUs / cpus_per_actor"
    )
    chunk_images: int = Field(
        512,
        ge=1,
        le=1_000_000,
        description="images read and sent per round: bounds the driver's memory; actors (and their models) "
        "start once per round",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FEEDLENS_", frozen=True, env_nested_delimiter="__")

    home: Path = Field(default_factory=_default_home, description="models, caches and (by default) data")
    decode: DecodeLimits = DecodeLimits()  # frozen, so one shared default is safe
    # One inference worker per process uses every core through ONNX Runtime's own intra-op threads; the
    # API admits `api.inference_workers` requests at once (services/inference.py).
    threads_per_worker: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    batch_size: int = Field(16, ge=1, le=256, description="images per forward pass")
    analyzers: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        None,
        description="the analyzers switched on, comma-separated (e.g. labels,safety,faces,text,properties,"
        "embedding): ingest runs them, the API offers them, a model not listed is never loaded; "
        "default all (`feedlens analyzers` lists them)",
    )
    labels_backbone: Literal["efficientnet-lite0", "efficientnet-lite2"] = Field(
        "efficientnet-lite0",
        description="the ImageNet classifier: Lite0 (default) or Lite2 (2x slower, no more accurate on our "
        "labelled photos: docs/benchmarks.md); a change needs `feedlens reanalyze` of labels and embedding",
    )
    labels_top_k: int = Field(5, ge=1, le=1000, description="raw ImageNet classes kept as a detail")
    labels_max: int = Field(20, ge=1, le=200, description="everyday labels kept per image")
    labels_min_score: float = Field(
        0.1, ge=0.0, le=1.0, description="calibrated score a label needs to be kept"
    )
    labels_lead_score: float = Field(
        0.5, ge=0.0, le=1.0, description="labels from here lead, most specific first, parents after them"
    )
    # The WordNet roll-up taxonomies match on (ids only, never shown as words).
    labels_concept_min_score: float = Field(0.15, ge=0.0, le=1.0)
    labels_max_concepts: int = Field(25, ge=0, le=1000)
    labels_concept_min_depth: int = Field(
        4, ge=0, description="WordNet concepts nearer the root than this (entity, object, whole) are not kept"
    )

    objects_min_score: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="report objects scored (calibrated) at least this; default the fitted floor (0.25)",
    )
    objects_max: int = Field(20, ge=1, le=100, description="objects kept per image")
    objects_crop_check: bool = Field(
        True,
        description="a second look at each box's crop with the ImageNet classifier: relabels a 'dog' that "
        "is a cat and rescores; ~25-40 ms per crop",
    )
    objects_max_crops: int = Field(5, ge=0, le=50, description="crops checked per image, best boxes first")
    objects_yolo: YoloSettings = YoloSettings()  # unset: the embedded centernet (docs/models.md)

    pose_side: int = Field(
        256, ge=32, le=1024, description="longer side fed to MoveNet MultiPose (padded to multiples of 32)"
    )
    pose_min_score: float = Field(0.3, ge=0.0, le=1.0, description="report people scored at least this")
    pose_keypoint_min_score: float = Field(
        0.3, ge=0.0, le=1.0, description="keypoints the activity rules may use"
    )

    safety_explicit_threshold: float = Field(0.5, ge=0.0, le=1.0, description="explicit verdict at or above")
    safety_suggestive_threshold: float = Field(
        0.6, ge=0.0, le=1.0, description="suggestive verdict at or above"
    )
    safety_region_min_score: float = Field(0.3, ge=0.0, le=1.0, description="regions below are not reported")
    safety_person_evidence: bool = Field(
        True,
        description="count a region only where faces, objects or poses put a person (cuts false flags on "
        "graphics and scans; drawn people are rarely found, so turn it off to moderate illustrations)",
    )

    faces_min_score: float = Field(
        0.3, ge=0.0, le=1.0, description="NudeNet face regions scored at least this are face candidates"
    )
    faces_tiling: bool = Field(
        True,
        description="BlazeFace also on 2x2 tiles of images over 600 px, near small faces or people that "
        "faces, objects, pose or body regions saw: finds faces half the size, up to 4 more BlazeFace runs "
        "on such images only, decodes at 640 px",
    )
    faces_tile_everywhere: bool = Field(
        False,
        description="tile every image over 600 px, also where no person was seen (pasted heads, "
        "redaction): slower on every large image",
    )
    faces_verify_min_score: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Face Mesh's probability that a candidate is a human face must reach this (drops cat "
        "faces, latte art); 0 keeps every candidate",
    )
    faces_max_candidates: int = Field(
        40, ge=1, le=500, description="face candidates checked per image (~5 ms each), detector order"
    )

    properties_blur_threshold: float = Field(
        100.0, ge=0.0, description="Laplacian variance at 128 px below which an image counts as blurry"
    )

    text_gate_side: int = Field(
        480,
        ge=64,
        le=2048,
        multiple_of=32,
        description="longer side of the OCR gate's copy (320 is ~2x faster)",
    )
    text_gate_min_pixels: float = Field(
        40.0, ge=0.0, description="text pixels needed to run OCR; 0 = no gate"
    )
    text_min_confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="drop OCR lines recognised below this"
    )

    data_dir: Path | None = Field(
        None, description="database and stored images; default $FEEDLENS_HOME (models stay in home/models)"
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///$FEEDLENS_HOME/feedlens.db (WAL)"
    )
    store_metadata: MetadataPolicy = Field(
        MetadataPolicy.NONE, description="metadata kept in stored copies: none, no_gps or all"
    )
    thumbnail_side: int = Field(320, ge=32, le=2048, description="longer side of stored thumbnails, px")
    fetch: FetchLimits = FetchLimits()
    api: ApiLimits = ApiLimits()
    search: SearchSettings = SearchSettings()
    categories: CategorySettings = CategorySettings()
    review: ReviewSettings = ReviewSettings()
    learning: LearningSettings = LearningSettings()
    clip: ClipSettings = ClipSettings()  # unset: the sentence-space stand-in (docs/search.md)
    ray_address: str | None = Field(
        None,
        description="a Ray cluster `ingest` analyses on (host:port, or `auto` for the one this node joined); "
        "needs PostgreSQL (docs/scale.md)",
    )
    cluster: ClusterSettings = ClusterSettings()
    insights: InsightsSettings = InsightsSettings()  # docs/insights.md
    jobs_worker: bool = Field(
        True,
        description="process batch jobs in this server; servers sharing one PostgreSQL claim items under "
        "leases, so any number may keep it on (docs/scale.md)",
    )
    jobs: JobSettings = JobSettings()
    host: str = Field("127.0.0.1", description="address `feedlens serve` listens on")
    port: int = Field(8000, ge=1, le=65535)

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def data_root(self) -> Path:
        """Where data lives: FEEDLENS_DATA_DIR, else the home folder."""
        return self.data_dir or self.home

    @property
    def blobs_dir(self) -> Path:
        return self.data_root / "blobs"

    @property
    def index_dir(self) -> Path:
        return self.data_root / "index"

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_root / 'feedlens.db'}"

    @field_validator("analyzers", mode="before")
    @classmethod
    def _analyzer_list(cls, value: object) -> object:
        if isinstance(value, str):  # FEEDLENS_ANALYZERS=labels,safety
            names = tuple(n.strip() for n in value.split(",") if n.strip())
            if not names:
                raise ValueError("FEEDLENS_ANALYZERS: name at least one analyzer, or leave it unset for all")
            return names
        return value

    @model_validator(mode="after")
    def _cores_not_oversubscribed(self) -> Self:
        cores = os.cpu_count() or 1
        if self.threads_per_worker > 4 * cores:
            raise ValueError(
                f"threads_per_worker = {self.threads_per_worker} oversubscribes {cores} cores; "
                "keep it near the core count"
            )
        return self


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (and overrides); a bad value is a ConfigError, not a traceback."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid FEEDLENS_* configuration: {problems}") from exc
