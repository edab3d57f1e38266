"""`feedlens train`, `evaluate` and `models ...` as a user runs them (in-process through the console entry
point, one module-wide data folder, real models, Tux Paint's labelled stamps): labels from a folder -> a
fine-tuned model that beats zero-shot on held-out stamps -> a probe promoted -> rollback, A/B, report,
Grad-CAM -> bad datasets refused with their problems."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from feedlens.config import Settings
from feedlens.services.factory import Services, build_services
from tests.support.category_stack import TRAINING_ANALYZERS
from tests.support.cli import Cli, Run
from tests.support.tuxpaint import (
    ANIMALS,
    FOOD,
    TEXT,
    VEHICLES,
    pick,
    render,
)

CLASSES = (ANIMALS, FOOD, VEHICLES, TEXT)


def write_folder(root: Path, stamps: list[Any]) -> Path:
    for stamp in stamps:
        target = root / stamp.category / (stamp.key.replace("/", "_") + ".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        render(stamp, 320).convert("RGB").save(target)
    return root


@pytest.fixture(scope="module")
def cli_services(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Services:
    """The module's data folder, ingesting what training reads (the classifier's features, the search
    vectors zero-shot compares): objects, poses, faces and OCR would triple its time and change nothing."""
    data = tmp_path_factory.mktemp("training-cli")
    update = {"data_dir": data, "database_url": None, "analyzers": TRAINING_ANALYZERS}
    return build_services(settings.model_copy(update=update))


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    train, held = pick(CLASSES, 10, 4)  # fine-tuning needs 10 per category (crossval.FINETUNE_MIN_LABELS)
    root = tmp_path_factory.mktemp("stamps")
    return {"train": write_folder(root / "train", train), "held": write_folder(root / "held", held)}


@pytest.fixture(scope="module")
def labelled(feedlens: Cli, folders: dict[str, Path]) -> Run:
    run = feedlens("label", "--folder", folders["train"], "-w", "team")
    assert run.code == 0, run.stderr
    return run


def test_finetune_beats_zero_shot_on_held_out_stamps(
    feedlens: Cli, labelled: Run, folders: dict[str, Path], tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints"
    trained = feedlens(
        "train", "-w", "team", "--mode", "finetune", "--epochs", "4", "--checkpoints", checkpoints, "--json"
    ).json()
    assert (checkpoints / "last.pt").exists()  # resumable: `--resume` continues from it
    assert (
        trained["version"] == 1
        and trained["mode"] == "finetune"
        and sorted(trained["classes"]) == sorted(CLASSES)
    )
    history = feedlens("models", "show", "1", "-w", "team").json()["training"]["history"]
    assert [h["epoch"] for h in history][:1] == [0] and len(
        history
    ) >= 2  # epoch 0 is the probe it starts from
    report = feedlens(
        "evaluate", "1", "--dataset", folders["held"], "-w", "team", "--out", tmp_path / "eval", "--json"
    ).json()
    assert report["evaluated_on"] == "all" and report["n_items"] == 16
    assert (tmp_path / "eval" / "report.html").exists() and (tmp_path / "eval" / "metrics.json").exists()
    # zero-shot on the same held-out images, through `analyze`
    files = sorted(folders["held"].rglob("*.png"))
    found = feedlens("analyze", *files, "-f", "json").json()
    zero_shot = [
        r["results"]["categories"]["categories"][0]["name"] == Path(r["path"]).parent.name for r in found
    ]
    zero_acc = sum(zero_shot) / len(zero_shot)
    assert report["accuracy"] > zero_acc, (report["accuracy"], zero_acc)
    assert report["accuracy"] >= 0.75


def test_probe_promote_rollback_ab_report_explain(
    feedlens: Cli, labelled: Run, folders: dict[str, Path], tmp_path: Path
) -> None:
    shown = feedlens("train", "-w", "team", "--no-int8", "--promote")
    assert shown.code == 0, shown.stderr
    assert "version 2 (probe, fp32) production" in shown.stdout
    # 10 labels a category is still "few" (below crossval.CV_BELOW): every label trains and the figures are
    # cross-validated over all of them; the categories follow the new production model
    assert f"cross-validated over {10 * len(CLASSES)}" in shown.stdout, shown.stdout
    assert "images recategorised with the production model" in shown.stderr
    listing = feedlens("models", "list", "-w", "team", "--json").json()
    assert [(m["version"], m["aliases"]) for m in listing] == [(1, []), (2, ["production"])]
    assert listing[1]["parent"] is None  # v1 was never production: v2 replaces nothing
    assert feedlens("models", "promote", "1", "-w", "team").code == 0
    assert feedlens("models", "list", "-w", "team", "--json").json()[0]["aliases"] == ["production"]
    back = feedlens("models", "rollback", "-w", "team")
    assert back.code == 0 and "version 2 is production" in back.stdout
    ab = feedlens("models", "ab", "1", "--share", "0.25", "-w", "team")
    assert ab.code == 0 and "A/B split, share 0.25" in ab.stdout, ab.stdout
    stop = feedlens("models", "ab", "--off", "-w", "team")
    assert "A/B off" in stop.stdout
    history = feedlens("models", "history", "-w", "team")
    assert [w for w in ("promote", "rollback", "ab") if w in history.stdout] == ["promote", "rollback", "ab"]
    written = feedlens("models", "report", "2", "--out", tmp_path / "r", "-w", "team")
    assert (
        written.code == 0 and json.loads((tmp_path / "r" / "metrics.json").read_text())["schema_version"] == 1
    )
    image = next(folders["held"].rglob("*.png"))
    out = tmp_path / "cam.png"
    explained = feedlens("models", "explain", image, "--out", out, "-w", "team")
    assert explained.code == 0, explained.stderr
    assert Image.open(out).size == Image.open(image).size and "version 2" in explained.stdout


def test_bad_datasets_and_requests(feedlens: Cli, labelled: Run, tmp_path: Path) -> None:
    few = tmp_path / "few"
    for name in ("cats", "dogs"):
        (few / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (300, 300), (i * 80, 0, 0)).save(few / name / f"{i}.png")
    refused = feedlens("train", "--dataset", few, "--mode", "finetune", "-w", "team")
    assert (
        refused.code == 2
        and "[not_enough_labels]" in refused.stderr
        and "'cats' has 3 (7 more)" in refused.stderr
    )
    one = tmp_path / "one" / "cats"
    one.mkdir(parents=True)
    Image.new("RGB", (300, 300), "red").save(one / "a.png")
    refused = feedlens("train", "--dataset", tmp_path / "one", "-w", "team")
    assert refused.code == 2 and "too_few_classes" in refused.stderr, refused.stderr
    empty = tmp_path / "two"
    for name in ("a", "b"):
        (empty / name).mkdir(parents=True)
    Image.new("RGB", (300, 300)).save(empty / "a" / "x.png")
    assert "empty_class" in feedlens("train", "--dataset", empty, "-w", "team").stderr
    (empty / "b" / "y.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    corrupt = feedlens("train", "--dataset", empty, "-w", "team")
    assert corrupt.code == 2 and "y.png" in corrupt.stderr, corrupt.stderr
    bad_csv = tmp_path / "labels.csv"
    bad_csv.write_text("path,label\nmissing.png,cats\n")
    assert "missing_file" in feedlens("train", "--dataset", bad_csv, "-w", "team").stderr
    unknown = tmp_path / "unknown"
    for name in ("cats", "dogs"):
        (unknown / name).mkdir(parents=True)
        Image.new("RGB", (300, 300)).save(unknown / name / "x.png")
    assert "unknown_label" in feedlens("evaluate", "1", "--dataset", unknown, "-w", "team").stderr
    assert feedlens("train", "--mode", "deep", "-w", "team").code == 2
    assert feedlens("train", "--resume", "-w", "team").code == 2  # --resume needs --checkpoints
    missing = feedlens("models", "promote", "99", "-w", "team")
    assert missing.code == 2 and "model_not_found" in missing.stderr
    assert [m["version"] for m in feedlens("models", "list", "-w", "team", "--json").json()] == [1, 2]


def test_active_learning_commands(
    feedlens: Cli, labelled: Run, folders: dict[str, Path], tmp_path: Path
) -> None:
    """`al next` on unlabelled images, `al retrain` and `al status`, `al simulate` on a labelled folder."""
    added = feedlens("ingest", folders["held"], "-w", "team")  # unlabelled: the labelling pool
    assert added.code == 0, added.stderr
    queue = feedlens("al", "next", "-n", "5", "-w", "team", "--json").json()
    assert len(queue["picks"]) == 5 and queue["progress"]["unlabelled"] == 16 and not queue["cold_start"]
    shown = feedlens("al", "next", "-n", "3", "-w", "team")
    assert shown.code == 0 and "strategy margin" in shown.stdout
    # production (the probe of 10 labels per category) saw most labels: the held-out images a cycle
    # compares on must be new labels
    assert feedlens("label", "--folder", folders["held"], "-w", "team").code == 0
    cycle = feedlens("al", "retrain", "-w", "team", "--margin", "1.0", "--json").json()
    assert not cycle["promoted"] and cycle["holdout"] > 0 and cycle["production_version"] is not None
    status = feedlens("al", "status", "-w", "team")
    assert status.code == 0 and "not better by the margin" in status.stdout
    out = tmp_path / "sim"
    simulated = feedlens(
        "al",
        "simulate",
        "--dataset",
        folders["train"],
        "--out",
        out,
        "--seeds",
        "1",
        "--rounds",
        "2",
        "--batch",
        "4",
        "--initial-per-class",
        "1",
    )
    assert simulated.code == 0, simulated.stderr
    curves = json.loads((out / "curves.json").read_text())
    assert set(curves["strategies"]) == {"uncertainty+diversity", "random"}
    assert curves["labels"] == [4, 8, 12] and (out / "curves.png").stat().st_size > 1000
    missing = feedlens("al", "simulate", "--dataset", tmp_path / "nope", "--out", out)
    assert missing.code == 2 and "missing_file" in missing.stderr
