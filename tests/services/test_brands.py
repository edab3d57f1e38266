"""Brands end to end with the real pipeline on real photos: register a brand with a logo, find it in a
composite, by its name in the image's text and in a caption; filters, counts, removal; bad logos."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from feedlens.analyzers.registry import DEFAULT_ANALYZERS
from feedlens.core.filters import ImageFilter
from feedlens.services.access import AccessService
from feedlens.services.brands.service import BrandError, BrandService
from feedlens.services.factory import Services
from feedlens.services.feeds import PostRecord
from feedlens.services.fetch import SafeFetcher
from feedlens.services.ingest import IngestItem, Ingestor, chain_hooks
from feedlens.services.library import Library
from feedlens.storage import repositories as repo
from tests.support.logos import composite, logo, png, words


@dataclasses.dataclass
class Stack:
    services: Services
    brands: BrandService
    ingestor: Ingestor
    fetcher: SafeFetcher
    workspace: int

    def result(self, image_id: str) -> dict | None:  # type: ignore[type-arg]
        with self.services.database.session() as session:
            found = repo.current_analyses(session, [image_id])[image_id].get("brands")
            return found.result if found is not None else None

    def filtered(self, brand: str) -> set[str]:
        with self.services.database.session() as session:
            images, _ = repo.list_images(session, self.workspace, ImageFilter(brand=brand), 100, None)
            return {i.id for i in images}


@pytest.fixture
def stack(services: Services, tmp_path: Path, database_url: str) -> Iterator[Stack]:
    settings = services.settings.model_copy(update={"data_dir": tmp_path, "database_url": database_url})
    wired = services.with_settings(settings)
    database = wired.database
    database.migrate()
    library = Library(database, wired.blobs, wired.decoder, settings)
    search, categories = wired.search, wired.categories
    brands = BrandService(database, wired.blobs, wired.decoder, settings)
    fetcher = SafeFetcher(settings.fetch)
    hooks = chain_hooks(search.after_ingest, categories.after_ingest, brands.after_ingest)
    ingestor = Ingestor(library, wired.pipeline(DEFAULT_ANALYZERS), fetcher, 8, hooks)
    workspace = AccessService(database).create_workspace("brand-team")
    yield Stack(wired, brands, ingestor, fetcher, workspace)
    fetcher.close()
    database.dispose()


def test_brand_found_by_logo_text_and_caption(stack: Stack, sample_dir: Path) -> None:
    view = stack.brands.add(
        stack.workspace, "Zorblax", ["Zorblax Cola"], ["#zorblaxlife"], [("logo.png", png(logo()))]
    )
    assert view["name"] == "Zorblax" and len(view["logos"]) == 1 and view["hashtags"] == ["zorblaxlife"]
    caption = PostRecord.model_validate({"id": "p1", "image": "x", "caption": "sunday vibes #ZorblaxLife"})
    items = [
        IngestItem(source="composite", data=composite(sample_dir / "chelsea.png", logo())),
        IngestItem(source="untouched", data=(sample_dir / "coffee.png").read_bytes()),
        IngestItem(source="sign", data=words("Drink ZORBLAX today")),
        IngestItem(source="post", data=(sample_dir / "astronaut.png").read_bytes(), post=caption),
    ]
    outcomes = {o.item.source: o.image_id for o in stack.ingestor.ingest(stack.workspace, items)}
    assert all(outcomes.values())

    composite_result = stack.result(str(outcomes["composite"]))
    assert composite_result is not None and composite_result["brands"] == ["Zorblax"]
    mention = composite_result["mentions"][0]
    assert set(mention["kinds"]) == {"logo", "text"}  # the mark, and its name read by OCR
    logo_evidence = next(e for e in mention["evidence"] if e["kind"] == "logo")
    assert logo_evidence["inliers"] >= 10 and logo_evidence["score"] > 0.5
    xs = [p[0] for p in logo_evidence["quad"]]
    assert 0.1 < min(xs) < max(xs) < 0.75  # where it was pasted (a fifth in, a third of the width)
    assert stack.result(str(outcomes["untouched"]))["brands"] == []  # type: ignore[index]
    sign = stack.result(str(outcomes["sign"]))
    assert sign is not None and sign["mentions"][0]["kinds"] == ["text"]
    post = stack.result(str(outcomes["post"]))
    assert post is not None and post["mentions"][0]["evidence"][0] == {
        "kind": "caption",
        "score": 1.0,
        "matched": "#zorblaxlife",
    }
    expected = {str(outcomes[k]) for k in ("composite", "sign", "post")}
    assert stack.filtered("zorblax") == expected
    assert sum(n for _, _, n in stack.brands.counts(stack.workspace)) == 3

    # removing the brand removes its mentions at the rescan, and its logo file
    blob_dir = stack.services.blobs.root / "logos"
    assert any(blob_dir.rglob("*"))
    assert stack.brands.remove(stack.workspace, "ZORBLAX")
    assert stack.brands.rescan(stack.workspace) == 0  # no brands: nothing to scan
    assert not [p for p in blob_dir.rglob("*") if p.is_file()]


def test_bad_logos_are_refused_before_anything_is_stored(stack: Stack) -> None:
    flat = Image.new("RGB", (300, 200), (90, 140, 200))
    tiny = logo().resize((12, 8))
    noise = Image.fromarray(np.zeros((400, 400, 4), np.uint8))  # fully transparent
    cases = {
        "not an image": b"%PDF-1.4 not a logo",
        "empty": b"",
        "flat": png(flat),
        "tiny": png(tiny),
        "transparent": png(noise),
    }
    for name, data in cases.items():
        with pytest.raises(BrandError) as caught:
            stack.brands.add(stack.workspace, "Acme", [], [], [("good.png", png(logo())), (name, data)])
        assert caught.value.code.startswith("logo_"), (name, caught.value.code)
        assert name in caught.value.message
    assert stack.brands.registered(stack.workspace) == []  # nothing half-registered
    for bad in ("", "   ", "x" * 200, "a\x00b"):
        with pytest.raises(BrandError) as invalid:
            stack.brands.add(stack.workspace, bad)
        assert invalid.value.code == "brand_invalid"
    with pytest.raises(BrandError) as huge:
        stack.brands.add(stack.workspace, "Acme", logos=[("big.png", b"\x89PNG" + b"0" * (6 * 1024 * 1024))])
    assert huge.value.code == "logo_too_large" and huge.value.http_status == 413


def test_aliases_and_updates(stack: Stack) -> None:
    stack.brands.add(stack.workspace, "Acme", ["ACME Corp"], [])
    view = stack.brands.add(stack.workspace, "acme", ["Acme Inc"], ["acmelove"])  # same brand, any case
    assert view["aliases"] == ["ACME Corp", "Acme Inc"] and view["hashtags"] == ["acmelove"]
    assert [b["name"] for b in stack.brands.registered(stack.workspace)] == ["Acme"]
    versions = stack.brands.version(stack.workspace)
    assert versions == 2
    assert not stack.brands.remove(stack.workspace, "nobody")
    assert not stack.brands.remove_logo(stack.workspace, "Acme", 12345)


def test_non_ascii_names_match_in_any_case(stack: Stack) -> None:
    """SQLite's lower() folds ASCII only: "Ärger" added twice once made a duplicate row (a 500)."""
    stack.brands.add(stack.workspace, "Ärger", [], [])
    view = stack.brands.add(stack.workspace, "Ärger", ["Ä"], [])
    assert view["aliases"] == ["Ä"]
    assert stack.brands.add(stack.workspace, "äRGER", [], ["ärger"])["name"] == "Ärger"
    assert stack.brands.add(stack.workspace, "STRASSE", [], [])["name"] == "STRASSE"
    same = stack.brands.add(stack.workspace, "straße", [], [])  # casefold, as people type
    assert same["name"] == "STRASSE"
    assert sorted(b["name"] for b in stack.brands.registered(stack.workspace)) == ["STRASSE", "Ärger"]
    assert stack.brands.remove(stack.workspace, "äRGER")
