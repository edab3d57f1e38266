"""`feedlens` as a user runs it: a real subprocess, real models, real photos and bad files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.headlines import SAMPLE_HEADLINES

FEEDLENS = str(Path(sys.executable).parent / "feedlens")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FEEDLENS, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
        check=False,
    )


@pytest.fixture(scope="module")
def photo_dir(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    for name in ("chelsea.png", "coffee.png", "astronaut.png"):
        shutil.copy(sample_dir / name, root / name)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    (root / "notes.txt").write_text("not an image")
    return root


def test_analyze_jsonl_reports_every_file(photo_dir: Path) -> None:
    result = run("analyze", str(photo_dir), "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    by_name = {Path(r["path"]).name: r for r in rows}
    assert set(by_name) == {"chelsea.png", "coffee.png", "astronaut.png", "broken.jpg", "notes.txt"}
    cat = by_name["chelsea.png"]
    assert set(cat) == {"path", "sha256", "width", "height", "format", "results"}
    assert (cat["width"], cat["height"], cat["format"]) == (451, 300, "png")
    assert cat["results"]["labels"]["labels"][0]["name"] == "Cat"
    assert by_name["notes.txt"]["error"]["code"] == "unsupported_format"
    assert by_name["broken.jpg"]["error"]["code"] in {"corrupt", "truncated"}
    assert "3 analysed, 2 failed" in result.stderr


def test_samples_are_named_in_everyday_words(sample_dir: Path) -> None:
    names = sorted(SAMPLE_HEADLINES)
    result = run("analyze", *(str(sample_dir / n) for n in names), "-f", "jsonl")
    assert result.returncode == 0, result.stderr
    for row in (json.loads(line) for line in result.stdout.splitlines()):
        first = [label["name"] for label in row["results"]["labels"]["labels"][:3]]
        assert SAMPLE_HEADLINES[Path(row["path"]).name] & set(first), (row["path"], first)


def test_analyze_json_and_table(photo_dir: Path) -> None:
    as_json = run("analyze", str(photo_dir / "coffee.png"), "-f", "json")
    assert as_json.returncode == 0
    [report] = json.loads(as_json.stdout)
    assert report["results"]["labels"]["labels"][0]["name"] in {"Espresso", "Coffee", "Cup"}
    table = run("analyze", str(photo_dir))
    assert table.returncode == 0 and "chelsea.png" in table.stdout and "Cat" in table.stdout
    assert "unsupported_format" in table.stdout


def test_usage_errors_exit_non_zero(photo_dir: Path) -> None:
    unknown = run("analyze", str(photo_dir), "--analyzers", "labels,telepathy")
    assert unknown.returncode == 2 and "unknown analyzer 'telepathy'" in unknown.stderr
    missing = run("analyze", str(photo_dir / "nope"))
    assert missing.returncode == 2 and "no such file or folder" in missing.stderr
    bad_format = run("analyze", str(photo_dir), "--format", "xml")
    assert bad_format.returncode == 2
    bad_env = run("analyze", str(photo_dir), env={"FEEDLENS_BATCH_SIZE": "0"})
    assert bad_env.returncode == 2 and "FEEDLENS_" in bad_env.stderr and "Traceback" not in bad_env.stderr


def test_models_commands() -> None:
    listing = run("store", "list")
    assert listing.returncode == 0 and "efficientnet-lite0-onnx" in listing.stdout and "ok" in listing.stdout
    assert run("store", "verify").returncode == 0
    path = run("store", "path", "efficientnet-lite0-onnx")
    assert path.returncode == 0 and Path(path.stdout.strip()).is_file()
    unknown = run("store", "path", "gpt-17")
    assert unknown.returncode == 2 and "unknown model artifact" in unknown.stderr


def test_missing_store_names_the_fix(tmp_path: Path, photo_dir: Path) -> None:
    empty_home = {"FEEDLENS_HOME": str(tmp_path)}
    verify = run("store", "verify", env=empty_home)
    assert verify.returncode == 1 and "feedlens store pull" in verify.stderr
    analyze = run("analyze", str(photo_dir / "coffee.png"), env=empty_home)
    assert analyze.returncode == 2 and "feedlens store pull" in analyze.stderr


def test_schema_command() -> None:
    result = run("schema", "labels")
    assert result.returncode == 0 and json.loads(result.stdout)["$id"] == "feedlens.labels/2"


def test_redact_command(photo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "redacted.png"
    result = run(
        "redact", str(photo_dir / "astronaut.png"), "--faces", "--method", "pixelate", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert "metadata stripped" in result.stderr and out.is_file()
    check = run("analyze", str(out), "-a", "faces", "-f", "json")
    assert json.loads(check.stdout)[0]["results"]["faces"]["count"] == 0
    bad = run("redact", str(photo_dir / "broken.jpg"), "-o", str(tmp_path / "x.png"))
    assert bad.returncode == 1 and ("[corrupt]" in bad.stderr or "[truncated]" in bad.stderr)
    assert not (tmp_path / "x.png").exists()  # nothing half-written
