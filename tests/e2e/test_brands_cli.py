"""`feedlens brands ...` in-process through the console entry point: register a brand from files, see its
mentions, counts, removal; bad logos and missing files exit 2 with their code."""

from __future__ import annotations

from pathlib import Path

from feedlens.services.factory import Services
from feedlens.storage import repositories as repo
from tests.support.cli import Cli, image_ids
from tests.support.logos import composite, logo, png, words


def test_brand_journey(feedlens: Cli, cli_services: Services, sample_dir: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "with-logo.jpg").write_bytes(composite(sample_dir / "chelsea.png", logo()))
    (photos / "sign.png").write_bytes(words("Drink ZORBLAX today"))
    (photos / "coffee.png").write_bytes((sample_dir / "coffee.png").read_bytes())
    assert feedlens("ingest", photos, "-w", "brands").code == 0
    mark = tmp_path / "zorblax.png"
    mark.write_bytes(png(logo()))

    added = feedlens("brands", "add", "Zorblax", "--logo", mark, "--alias", "Zorblax Cola", "-w", "brands")
    assert added.code == 0, added.stderr
    assert "brand Zorblax: 1 logos" in added.stderr and "scanned 3 images" in added.stderr
    listed = feedlens("brands", "list", "-w", "brands")
    assert "Zorblax" in listed.stdout and "Zorblax Cola" in listed.stdout
    ids = image_ids(cli_services, "brands")
    with cli_services.database.session() as session:
        analyses = repo.current_analyses(session, list(ids.values()))
    found = {name: analyses[i]["brands"].result["brands"] for name, i in ids.items()}
    assert found == {"with-logo.jpg": ["Zorblax"], "sign.png": ["Zorblax"], "coffee.png": []}
    counts = feedlens("brands", "counts", "-w", "brands")
    assert counts.code == 0 and sum(int(line.split("\t")[2]) for line in counts.stdout.splitlines()) == 2
    assert feedlens("brands", "rescan", "-w", "brands").stdout.strip() == "3"

    removed = feedlens("brands", "remove", "zorblax", "-w", "brands")
    assert removed.code == 0 and "removed" in removed.stderr
    assert feedlens("brands", "remove", "zorblax", "-w", "brands").code == 2


def test_bad_brand_inputs(feedlens: Cli, tmp_path: Path) -> None:
    flat = tmp_path / "flat.png"
    flat.write_bytes(png(logo().convert("RGB").point(lambda _: 128)))
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    for path, code in ((flat, "logo_no_features"), (text, "logo_unreadable")):
        result = feedlens("brands", "add", "Bad", "--logo", path, "-w", "brands-bad")
        assert result.code == 2 and f"[{code}]" in result.stderr, result.stderr
    missing = feedlens("brands", "add", "Bad", "--logo", tmp_path / "nope.png", "-w", "brands-bad")
    assert missing.code == 2 and "no such file" in missing.stderr
    assert feedlens("brands", "list", "-w", "no-such-workspace").code == 2
    assert feedlens("brands", "counts", "--since", "yesterday", "-w", "brands-bad").code == 2
