"""A workspace's brand registry and brand detection in its images.

Brands are registered with names, aliases, hashtags and reference logos; each logo's local features are
extracted once, at registration, and stored. Detection runs after ingest (and on `rescan`) from stored
data: the stored copy of the image is decoded at about 1 MP for logo matching, the OCR text and the posts'
captions are read from the database. Every registry change bumps a version, recorded in results.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from feedlens.analyzers.logo_matcher import LogoFeaturesError, LogoIndex, ReferenceLogo
from feedlens.config import Settings
from feedlens.core.errors import FeedlensError
from feedlens.core.results.brands import BrandEvidence, BrandsResult
from feedlens.core.results.text import TextResult
from feedlens.images import ImageDecoder
from feedlens.services.brands.mentions import BrandTerms, caption_mentions, text_mentions
from feedlens.services.search import caption_text
from feedlens.storage import categories as counts_repo
from feedlens.storage import repositories as repo
from feedlens.storage.blobs import BlobStore
from feedlens.storage.database import Database
from feedlens.storage.tables import Brand, BrandLogo, BrandRegistryVersion, Image, Post

log = logging.getLogger(__name__)

ANALYZER = "brands"
BATCH = 64
MAX_LOGOS = 20
MAX_LOGO_BYTES = 5 * 1024 * 1024
DETECT_SIDE = 1000  # the longer side query images are matched at (about 1 MP)
MAX_TERMS = 50


class BrandError(FeedlensError):
    """A brand or reference logo that cannot be registered; `http_status` for the API."""

    def __init__(self, code: str, message: str, http_status: int = 422) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


@dataclass(frozen=True)
class _Registry:
    version: int
    terms: tuple[BrandTerms, ...]
    index: LogoIndex | None


def _clean_terms(values: Sequence[str], what: str) -> list[str]:
    out = []
    for value in values:
        text = " ".join(str(value).split())
        if not text or len(text) > 128 or "\x00" in text:
            raise BrandError("brand_invalid", f"{what} must be 1-128 printable characters, got {value!r}")
        out.append(text)
    if len(out) > MAX_TERMS:
        raise BrandError("brand_invalid", f"at most {MAX_TERMS} {what}")
    return list(dict.fromkeys(out))


class BrandService:
    def __init__(
        self, database: Database, blobs: BlobStore, decoder: ImageDecoder, settings: Settings
    ) -> None:
        self.database = database
        self.blobs = blobs
        self.decoder = decoder
        self.settings = settings
        self._cache: dict[int, _Registry] = {}
        self._lock = threading.Lock()

    # -- registry --------------------------------------------------------------------------------------
    def _bump(self, session: Session, workspace: int) -> int:
        row = session.get(BrandRegistryVersion, workspace)
        if row is None:
            row = BrandRegistryVersion(workspace_id=workspace, version=0)
            session.add(row)
        row.version += 1
        session.flush()
        return row.version

    def version(self, workspace: int) -> int:
        with self.database.session() as session:
            row = session.get(BrandRegistryVersion, workspace)
            return row.version if row is not None else 0

    def _references(self, logos: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes, ReferenceLogo]]:
        """Decode and check every logo before anything is stored: one bad logo refuses the request."""
        if len(logos) > MAX_LOGOS:
            raise BrandError("brand_invalid", f"at most {MAX_LOGOS} logos per request")
        out = []
        for name, data in logos:
            if len(data) > MAX_LOGO_BYTES:
                raise BrandError("logo_too_large", f"{name}: larger than {MAX_LOGO_BYTES} bytes", 413)
            try:
                reference = ReferenceLogo.from_bytes(data)
            except FeedlensError as exc:
                raise BrandError(exc.code, f"{name}: {exc.message}") from None
            out.append((name, data, reference))
        return out

    def add(
        self,
        workspace: int,
        name: str,
        aliases: Sequence[str] = (),
        hashtags: Sequence[str] = (),
        logos: Sequence[tuple[str, bytes]] = (),
    ) -> dict[str, Any]:
        """Register a brand (or add aliases, hashtags and logos to one already registered)."""
        (clean,) = _clean_terms([name], "a brand name")
        alias_list = _clean_terms(aliases, "aliases")
        tag_list = [t.lstrip("#") for t in _clean_terms(hashtags, "hashtags")]
        references = self._references(logos)
        with self.database.session() as session:
            brand = self._get(session, workspace, clean)
            if brand is None:
                brand = Brand(workspace_id=workspace, name=clean, aliases=alias_list, hashtags=tag_list)
                session.add(brand)
            else:
                brand.aliases = list(dict.fromkeys([*brand.aliases, *alias_list]))
                brand.hashtags = list(dict.fromkeys([*brand.hashtags, *tag_list]))
            session.flush()
            for _, data, reference in references:
                blob = self.blobs.put("logos", data)
                session.add(
                    BrandLogo(
                        brand_id=brand.id,
                        blob=blob,
                        width=reference.width,
                        height=reference.height,
                        features=reference.to_bytes(),
                        features_version=str(ReferenceLogo.VERSION),
                    )
                )
            self._bump(session, workspace)
            session.flush()
            return self._view(session, brand)

    def remove(self, workspace: int, name: str) -> bool:
        """Forget a brand and its logos (files no other logo uses are deleted after the commit)."""
        with self.database.session() as session:
            brand = self._get(session, workspace, name)
            if brand is None:
                return False
            blobs = {logo.blob for logo in brand.logos}
            session.delete(brand)
            self._bump(session, workspace)
            session.flush()
            unused = [b for b in blobs if not self._blob_in_use(session, b)]
        for blob in unused:
            self.blobs.delete("logos", blob)
        return True

    def remove_logo(self, workspace: int, name: str, logo_id: int) -> bool:
        with self.database.session() as session:
            brand = self._get(session, workspace, name)
            logo = session.get(BrandLogo, logo_id)
            if brand is None or logo is None or logo.brand_id != brand.id:
                return False
            blob = logo.blob
            session.delete(logo)
            self._bump(session, workspace)
            session.flush()
            unused = not self._blob_in_use(session, blob)
        if unused:
            self.blobs.delete("logos", blob)
        return True

    @staticmethod
    def _blob_in_use(session: Session, blob: str) -> bool:
        return session.scalar(select(func.count()).select_from(BrandLogo).where(BrandLogo.blob == blob)) != 0

    def get(self, workspace: int, name: str) -> dict[str, Any] | None:
        with self.database.session() as session:
            brand = self._get(session, workspace, name)
            return self._view(session, brand) if brand is not None else None

    def registered(self, workspace: int) -> list[dict[str, Any]]:
        with self.database.session() as session:
            brands = session.scalars(
                select(Brand).where(Brand.workspace_id == workspace).order_by(Brand.name)
            ).all()
            return [self._view(session, b) for b in brands]

    @staticmethod
    def _get(session: Session, workspace: int, name: str) -> Brand | None:
        # Matched in Python: SQLite's lower() folds ASCII only, so "Ä" would miss itself and be inserted
        # twice. A workspace has a handful of brands.
        wanted = name.strip().casefold()
        brands = session.scalars(select(Brand).where(Brand.workspace_id == workspace))
        return next((b for b in brands if b.name.casefold() == wanted), None)

    @staticmethod
    def _view(session: Session, brand: Brand) -> dict[str, Any]:
        logos = session.scalars(
            select(BrandLogo).where(BrandLogo.brand_id == brand.id).order_by(BrandLogo.id)
        )
        return {
            "name": brand.name,
            "aliases": list(brand.aliases),
            "hashtags": list(brand.hashtags),
            "logos": [{"id": lg.id, "width": lg.width, "height": lg.height} for lg in logos],
        }

    def _registry(self, workspace: int) -> _Registry:
        """The workspace's terms and logo index, rebuilt when the registry version changed."""
        version = self.version(workspace)
        with self._lock:
            cached = self._cache.get(workspace)
            if cached is not None and cached.version == version:
                return cached
        with self.database.session() as session:
            brands = session.scalars(
                select(Brand).where(Brand.workspace_id == workspace).options(selectinload(Brand.logos))
            ).all()
            terms = tuple(BrandTerms(b.name, tuple(b.aliases), tuple(b.hashtags)) for b in brands)
            references = [(b.name, str(logo.id), self._features(logo)) for b in brands for logo in b.logos]
        index = LogoIndex(references) if references else None
        registry = _Registry(version, terms, index)
        with self._lock:
            self._cache[workspace] = registry
        return registry

    def _features(self, logo: BrandLogo) -> ReferenceLogo:
        """A logo's stored features; re-extracted from its stored image (and saved) when they were made by
        another extractor version or cannot be read."""
        try:
            return ReferenceLogo.from_bytes_features(logo.features)
        except LogoFeaturesError as exc:
            log.info("re-extracting features of logo %d: %s", logo.id, exc.message)
        reference = ReferenceLogo.from_bytes(self.blobs.get("logos", logo.blob))
        logo.features = reference.to_bytes()
        logo.features_version = str(ReferenceLogo.VERSION)
        return reference

    # -- detection -------------------------------------------------------------------------------------
    def detect(self, workspace: int, image_ids: Sequence[str]) -> dict[str, BrandsResult]:
        """Detect brands in stored images and store the results; nothing to do without brands."""
        registry = self._registry(workspace)
        if not registry.terms:
            return {}
        out: dict[str, BrandsResult] = {}
        for start in range(0, len(image_ids), BATCH):
            chunk = list(image_ids[start : start + BATCH])
            with self.database.session() as session:
                images = {i.id: i for i in repo.get_images(session, workspace, chunk)}
                analyses = repo.current_analyses(session, list(images))
                posts = repo.posts_of(session, list(images))
                for image_id, image in images.items():
                    result = self._detect_one(registry, image, analyses[image_id], posts.get(image_id, []))
                    repo.add_analyses(
                        session,
                        image_id,
                        {ANALYZER: result.to_dict()},
                        {ANALYZER: f"registry-{registry.version}"},
                    )
                    out[image_id] = result
        return out

    def _detect_one(
        self, registry: _Registry, image: Image, analyses: dict[str, Any], posts: Sequence[Post]
    ) -> BrandsResult:
        pixels: PILImage.Image | None = None
        if registry.index is not None:
            try:
                pixels = self.decoder.decode(
                    self.blobs.get("originals", image.blob), min_side=DETECT_SIDE
                ).image
            except (FeedlensError, OSError) as exc:  # a missing or unreadable blob: words still count
                log.warning("logo detection skipped for %s: %s", image.id, exc)
        found = analyses["text"].loaded if "text" in analyses else None
        text = found.full_text if isinstance(found, TextResult) else ""
        tags = [t for p in posts for t in (p.hashtags or [])]
        return self._evidence(registry, pixels, text, caption_text(posts), tags)

    @staticmethod
    def _evidence(
        registry: _Registry, pixels: PILImage.Image | None, text: str, caption: str, tags: Sequence[str]
    ) -> BrandsResult:
        found: dict[str, list[BrandEvidence]] = {}
        if registry.index is not None and pixels is not None:
            for hit in registry.index.detect(pixels, max_side=DETECT_SIDE):
                found.setdefault(hit.brand, []).append(
                    BrandEvidence("logo", round(hit.score, 4), hit.reference, tuple(hit.quad), hit.inliers)
                )
        for match in text_mentions(text, registry.terms):
            found.setdefault(match.brand, []).append(BrandEvidence("text", match.score, match.matched))
        for match in caption_mentions(caption, tags, registry.terms):
            found.setdefault(match.brand, []).append(BrandEvidence("caption", match.score, match.matched))
        return BrandsResult.of(found, registry.version)

    def detect_image(self, workspace: int, pixels: PILImage.Image, text: str = "") -> BrandsResult:
        """Brands in an image that is not stored (the cloud-compatible APIs): its pixels and OCR text."""
        registry = self._registry(workspace)
        if not registry.terms:
            return BrandsResult.empty()
        return self._evidence(registry, pixels, text, "", ())

    def after_ingest(self, workspace: int, image_ids: list[str]) -> None:
        self.detect(workspace, image_ids)

    def rescan(self, workspace: int) -> int:
        """Detect brands in every image of the workspace with the current registry."""
        done = 0
        for chunk in self._chunks(workspace):
            done += len(self.detect(workspace, chunk))
        return done

    def _chunks(self, workspace: int) -> Iterator[list[str]]:
        with self.database.session() as session:
            ids = list(
                session.scalars(select(Image.id).where(Image.workspace_id == workspace).order_by(Image.id))
            )
        for start in range(0, len(ids), BATCH):
            yield ids[start : start + BATCH]

    def counts(
        self, workspace: int, since: datetime | None = None, until: datetime | None = None
    ) -> list[tuple[date, str, int]]:
        """(UTC day, brand, images mentioning it), dated by post time or ingest time."""
        spelled = {b["name"].lower(): b["name"] for b in self.registered(workspace)}
        with self.database.session() as session:
            rows = counts_repo.facet_counts(session, workspace, ANALYZER, "brand", since, until)
        return [(day, spelled.get(name, name), n) for day, name, n in rows]
