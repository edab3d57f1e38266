"""`feedlens taxonomy`, `label`, `categories`, `recategorize` and the categories `analyze` shows, run
in-process through the console entry point (exit codes and messages as a user sees them) over one set of
loaded models and a module-wide data folder."""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feedlens.core.taxonomy import parse_taxonomy
from feedlens.services.factory import Services
from tests.support.cli import Cli, Run, image_ids

FOOD, PETS = "food & drink", "animals & pets"
# ImageFolder-style: folder names spell categories loosely (slugs), as exported datasets do
FOLDERS = {
    "animals_and_pets": ["chelsea.png"],
    "Food-Drink": ["coffee.png"],
    "vehicles": ["motorcycle.png", "rocket.jpg"],
    "people & selfies": ["astronaut.png", "grace_hopper.jpg"],
    "technology": ["camera.png"],
    "travel_outdoors": ["flower.jpg", "china.jpg"],
}
CUSTOM = """
name: brand-team
categories:
  - name: coffee
    description: a cup of coffee, espresso or latte
    phrases: [an espresso, a latte, a coffee cup]
    keywords: [coffee, latte, espresso]
  - name: pets
    description: a cat or a dog
    concepts: [n02121808]  # domestic cat
  - name: space
    description: rockets, astronauts and the night sky
    phrases: [a rocket launch, an astronaut]
"""


def categories_of(run: Run) -> dict[str, dict[str, Any]]:
    """`analyze -f json` output -> file name -> its `categories` result."""
    return {Path(r["path"]).name: r["results"]["categories"] for r in run.json()}


def score(result: dict[str, Any], name: str) -> float:
    return float(next(c["score"] for c in result["categories"] if c["name"] == name))


# -- analyze -------------------------------------------------------------------------------------------
def test_analyze_shows_zero_shot_categories(feedlens: Cli, sample_dir: Path) -> None:
    files = (sample_dir / "chelsea.png", sample_dir / "coffee.png")
    found = categories_of(feedlens("analyze", *files, "-f", "json"))
    assert PETS in found["chelsea.png"]["assigned"] and FOOD not in found["chelsea.png"]["assigned"]
    assert FOOD in found["coffee.png"]["assigned"] and PETS not in found["coffee.png"]["assigned"]
    cat = found["chelsea.png"]
    assert (cat["taxonomy"], cat["taxonomy_version"], cat["model_version"]) == ("social-media", 0, None)
    assert cat["categories"][0]["name"] == PETS and cat["categories"][0]["evidence"]["labels"] > 0
    table = feedlens("analyze", *files)
    assert table.code == 0, table.stderr
    assert "categories" in table.stdout and re.search(rf"{PETS} [01]\.\d\d", table.stdout), table.stdout
    # no labels, no categories (and the category options say why they cannot apply)
    plain = feedlens("analyze", files[0], "-a", "properties", "-f", "json").json()
    assert "categories" not in plain[0]["results"]
    refused = feedlens("analyze", files[0], "-a", "properties", "--caption", "#foodie")
    assert refused.code == 2 and "needs the labels analyzer" in refused.stderr


def test_a_caption_moves_an_ambiguous_image_into_food(feedlens: Cli, sample_dir: Path) -> None:
    # the camera photo is ambiguous: no category is confident, and food is far from the top
    photo = sample_dir / "camera.png"
    [alone] = categories_of(feedlens("analyze", photo, "-f", "json")).values()
    [captioned] = categories_of(
        feedlens("analyze", photo, "-f", "json", "--caption", "#foodie brunch")
    ).values()
    assert alone["categories"][0]["name"] != FOOD and score(alone, FOOD) < 0.2
    assert score(captioned, FOOD) - score(alone, FOOD) > 0.3
    assert FOOD not in alone["assigned"] and FOOD in captioned["assigned"]
    food = next(c for c in captioned["categories"] if c["name"] == FOOD)
    assert food["evidence"]["caption"] > 0 and food["evidence"]["keywords"] > 0  # why, per source


def test_analyze_with_a_custom_taxonomy_file(feedlens: Cli, sample_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "brand.yaml").write_text(CUSTOM)
    run = feedlens(
        "analyze",
        sample_dir / "coffee.png",
        sample_dir / "chelsea.png",
        "-f",
        "json",
        "--taxonomy",
        tmp_path / "brand.yaml",
    )
    found = categories_of(run)
    assert found["coffee.png"]["assigned"] == ["coffee"] and found["coffee.png"]["taxonomy"] == "brand-team"
    assert found["chelsea.png"]["assigned"] == ["pets"]
    (tmp_path / "bad.yaml").write_text("categories: [{name: a, concepts: [no such concept]}]")
    bad = feedlens("analyze", sample_dir / "coffee.png", "--taxonomy", tmp_path / "bad.yaml")
    assert bad.code == 2 and "unknown concept 'no such concept'" in bad.stderr


# -- taxonomy ------------------------------------------------------------------------------------------
def test_taxonomy_default_show_set_versions(
    feedlens: Cli, cli_services: Services, sample_dir: Path, tmp_path: Path
) -> None:
    default = feedlens("taxonomy", "default")
    assert default.code == 0 and default.stdout.startswith("# ")  # the commented file, to start from
    shipped = parse_taxonomy(default.stdout)
    assert {PETS, FOOD, "vehicles"} <= set(shipped.names) and len(shipped.names) >= 12

    for name in ("chelsea.png", "coffee.png", "rocket.jpg"):
        shutil.copy(sample_dir / name, tmp_path / name)
    assert feedlens("ingest", tmp_path, "-w", "brand").code == 0
    shown = feedlens("taxonomy", "show", "-w", "brand")
    assert shown.code == 0 and "version 1 of workspace brand" in shown.stderr
    assert parse_taxonomy(shown.stdout) == shipped  # what `show` prints, `set` takes back

    (tmp_path / "brand.yaml").write_text(CUSTOM)
    changed = feedlens("taxonomy", "set", tmp_path / "brand.yaml", "-w", "brand")
    assert changed.code == 0, changed.stderr
    assert "taxonomy brand-team version 2: 3 categories" in changed.stdout
    assert "3 images recategorised" in changed.stderr
    as_json = feedlens("taxonomy", "show", "-w", "brand", "--format", "json").json()
    assert [c["name"] for c in as_json["categories"]] == ["coffee", "pets", "space"]
    versions = feedlens("taxonomy", "versions", "-w", "brand")
    assert versions.code == 0 and "2 (current)" in versions.stdout and "brand-team" in versions.stdout
    assert "social-media" in versions.stdout
    # the stored results follow the new taxonomy: counted under its categories
    counts = feedlens("categories", "counts", "-w", "brand", "--format", "json").json()
    counted = {row["category"]: row["images"] for row in counts}
    assert counted.get("coffee") == 1 and counted.get("pets") == 1 and PETS not in counted

    unknown = feedlens("taxonomy", "show", "-w", "nobody")
    assert unknown.code == 2 and "no workspace named 'nobody'" in unknown.stderr


BAD_FILES: dict[str, tuple[bytes, str]] = {
    "duplicate": (
        b"categories: [{name: Pets, phrases: [a pet]}, {name: pets, phrases: [a dog]}]",
        "duplicate category name 'pets'",
    ),
    "cycle": (
        b"categories:\n- {name: a, parent: b, phrases: [x]}\n- {name: b, parent: a, phrases: [y]}\n",
        "parent cycle: a -> b -> a",
    ),
    "unknown-parent": (
        b"categories: [{name: a, parent: nowhere, phrases: [x]}]",
        "names unknown parent 'nowhere'",
    ),
    "empty": (b"  \n", "the document is empty"),
    "no-categories": (b"name: x\ncategories: []\n", "`categories` must be a non-empty list"),
    "invalid-yaml": (b"categories: [a, b\n", "not valid YAML"),
    "invalid-json": (b'{"categories": [}', "not valid JSON"),
    "not-utf8": ("categories: [café]".encode("latin-1"), "not UTF-8 text"),
    "unknown-concept": (b"categories: [{name: a, concepts: [unicorn]}]", "unknown concept 'unicorn'"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_taxonomy_file_is_refused_with_its_problems(feedlens: Cli, tmp_path: Path, case: str) -> None:
    content, problem = BAD_FILES[case]
    path = tmp_path / (f"{case}.json" if case == "invalid-json" else f"{case}.yaml")
    path.write_bytes(content)
    assert feedlens("workspaces", "create", "strict").code == 0
    before = feedlens("taxonomy", "versions", "-w", "strict").stdout
    result = feedlens("taxonomy", "set", path, "-w", "strict")
    assert result.code == 2, result
    assert "[taxonomy_invalid]" in result.stderr and problem in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert feedlens("taxonomy", "versions", "-w", "strict").stdout == before  # nothing stored


def test_every_problem_of_a_file_is_listed(feedlens: Cli, tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        "categories:\n- {name: a, phrases: [x]}\n- {name: A, parent: b, phrases: [y]}\n"
        "- {name: c, parent: ghost, phrases: [z]}\n"
    )
    result = feedlens("taxonomy", "set", path)
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert result.code == 2 and len(problems) == 3, result.stderr
    missing = feedlens("taxonomy", "set", tmp_path / "nope.yaml")
    assert missing.code == 2 and "no such file" in missing.stderr


def test_taxonomy_concepts_lists_usable_names(feedlens: Cli) -> None:
    tabby = feedlens("taxonomy", "concepts", "tabby")
    assert tabby.code == 0 and "n02123045\ttabby\tclass" in tabby.stdout.splitlines()
    crane = feedlens("taxonomy", "concepts", "crane").stdout.splitlines()
    assert len([line for line in crane if "\tcrane\t" in line]) == 2 and all("ambiguous" in x for x in crane)
    assert "concept" in feedlens("taxonomy", "concepts", "n02121808").stdout  # by id: domestic cat


# -- labels, training, counts --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photo_folder(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labelled")
    for folder, names in FOLDERS.items():
        (root / folder).mkdir()
        for name in names:
            shutil.copy(sample_dir / name, root / folder / name)
    return root


@pytest.fixture(scope="module")
def labelled(feedlens: Cli, photo_folder: Path) -> Run:
    """Workspace `team`: the photos ingested and labelled by `label --folder`."""
    return feedlens("label", "--folder", photo_folder, "-w", "team")


def test_label_folder_ingests_and_labels(labelled: Run, cli_services: Services) -> None:
    assert labelled.code == 0, labelled.stderr
    rows = dict(line.split("\t") for line in labelled.stdout.splitlines())
    assert rows == {
        PETS: "1",
        FOOD: "1",
        "vehicles": "2",
        "people & selfies": "2",
        "technology": "1",
        "travel & outdoors": "2",
    }
    assert "9 labels recorded, 9 images added, 0 errors" in labelled.stderr
    assert len(image_ids(cli_services, "team")) == 9


def test_label_folder_refuses_unknown_folders(feedlens: Cli, tmp_path: Path, sample_dir: Path) -> None:
    (tmp_path / "memes-of-2024").mkdir()
    shutil.copy(sample_dir / "coffee.png", tmp_path / "memes-of-2024" / "coffee.png")
    result = feedlens("label", "--folder", tmp_path, "-w", "folders")
    assert result.code == 2 and "folders that name no category: memes-of-2024" in result.stderr


def test_label_one_image(feedlens: Cli, labelled: Run, cli_services: Services) -> None:
    coffee = image_ids(cli_services, "team")["coffee.png"]
    done = feedlens("label", coffee, "Food & Drink", "--not", "vehicles", "-w", "team")
    assert done.code == 0, done.stderr
    assert {tuple(line.split("\t")[:2]) for line in done.stdout.splitlines()} >= {
        (FOOD, "yes"),
        ("vehicles", "no"),
    }
    unknown = feedlens("label", coffee, "memes", "-w", "team")
    assert unknown.code == 2 and "[unknown_category]" in unknown.stderr and "'memes'" in unknown.stderr
    conflict = feedlens("label", coffee, "vehicles", "--not", "vehicles", "-w", "team")
    assert conflict.code == 2 and "[label_conflict]" in conflict.stderr
    no_image = feedlens("label", "img_nope", FOOD, "-w", "team")
    assert no_image.code == 2 and "no image 'img_nope'" in no_image.stderr
    both = feedlens("label", coffee, FOOD, "--csv", "x.csv", "-w", "team")
    assert both.code == 2 and "exactly one of" in both.stderr


def test_label_csv_reports_bad_rows_by_line(
    feedlens: Cli, labelled: Run, cli_services: Services, photo_folder: Path
) -> None:
    ids = image_ids(cli_services, "team")
    sha = hashlib.sha256((photo_folder / "vehicles" / "rocket.jpg").read_bytes()).hexdigest()
    path = photo_folder / "labels.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "category", "positive"])
        writer.writerow([ids["chelsea.png"], PETS, "yes"])  # line 2: by id
        writer.writerow(["Food-Drink/coffee.png", PETS, "no"])  # 3: by path, a negative
        writer.writerow([sha, "vehicles", ""])  # 4: by sha256, positive by default
        writer.writerow(["missing.png", FOOD, "yes"])  # 5: no such image
        writer.writerow([ids["camera.png"], "memes", "yes"])  # 6: no such category
        writer.writerow([ids["camera.png"], "technology", "maybe"])  # 7: not a yes/no
    result = feedlens("label", "--csv", path, "-w", "team")
    assert result.code == 0, result.stderr
    # positives are counted per category (in the taxonomy's spelling); the negative separately
    assert dict(line.split("\t") for line in result.stdout.splitlines()) == {PETS: "1", "vehicles": "1"}
    assert f"{path}:5: [image_not_found]" in result.stderr
    assert f"{path}:6: [unknown_category]" in result.stderr
    assert f"{path}:7: [label_import_invalid]" in result.stderr
    assert "2 labels recorded (and 1 'not' labels), 0 images added, 3 errors" in result.stderr


def test_train_models_counts_recategorize(feedlens: Cli, labelled: Run) -> None:
    assert labelled.code == 0
    trained = feedlens("categories", "train", "-w", "team")
    assert trained.code == 0, trained.stderr
    # the registry's route: version 1 of `feedlens models`, production at once
    assert re.match(
        r"model version 1 \(probe, now production; taxonomy version 1\): \d+ labelled", trained.stdout
    )
    assert f"  {PETS}\t1 labelled" in trained.stdout and "zero-shot only" in trained.stdout
    assert "9 images recategorised" in trained.stderr and "feedlens models report 1" in trained.stdout
    models = feedlens("categories", "models", "-w", "team")
    assert models.code == 0 and re.search(r"│ 1 +│ registry +│ yes +│", models.stdout), models.stdout
    assert "vehicles" in models.stdout
    production = feedlens("models", "list", "-w", "team", "--json").json()
    assert [(m["version"], m["aliases"]) for m in production] == [(1, ["production"])]
    too_few = feedlens("categories", "train", "-w", "team", "--mode", "finetune")
    assert too_few.code == 2 and "[not_enough_labels]" in too_few.stderr and "at least 10" in too_few.stderr

    today = datetime.now(UTC).date()
    rows = list(
        csv.DictReader(feedlens("categories", "counts", "-w", "team", "-f", "csv").stdout.splitlines())
    )
    assert rows and {r["date"] for r in rows} == {today.isoformat()}
    assert {r["category"] for r in rows} >= {PETS, FOOD, "vehicles"}
    assert sum(int(r["images"]) for r in rows if r["category"] == "vehicles") >= 2
    tomorrow, yesterday = (today + timedelta(days=1)).isoformat(), (today - timedelta(days=1)).isoformat()
    assert feedlens("categories", "counts", "-w", "team", "--since", tomorrow, "-f", "json").json() == []
    assert feedlens("categories", "counts", "-w", "team", "--until", yesterday, "-f", "json").json() == []
    same_day = feedlens(
        "categories",
        "counts",
        "-w",
        "team",
        "--since",
        today.isoformat(),
        "--until",
        today.isoformat(),
        "-f",
        "json",
    ).json()
    assert sum(r["images"] for r in same_day) == sum(int(r["images"]) for r in rows)
    table = feedlens("categories", "counts", "-w", "team")
    assert table.code == 0 and PETS in table.stdout and today.isoformat() in table.stdout
    bad_date = feedlens("categories", "counts", "-w", "team", "--since", "last week")
    assert bad_date.code == 2

    again = feedlens("recategorize", "-w", "team")
    assert again.code == 0 and again.stdout.strip() == "9 images recategorised"


def test_train_without_labels_is_a_clear_error(feedlens: Cli) -> None:
    assert feedlens("workspaces", "create", "unlabelled").code == 0
    result = feedlens("categories", "train", "-w", "unlabelled")
    assert result.code == 2 and "[not_enough_labels]" in result.stderr
