"""Labels people can fix, and one image read without the HTTP API: `feedlens show`, `unlabel`, `relabel`
in-process against real models, and the same edits through the API of a real server."""

from __future__ import annotations

from pathlib import Path

import httpx

from feedlens.services.factory import Services
from tests.support.api import auth, is_problem, store
from tests.support.category_stack import FOOD, PETS
from tests.support.cli import Cli, image_ids


def test_show_unlabel_relabel(feedlens: Cli, sample_dir: Path, cli_services: Services) -> None:
    assert feedlens("ingest", sample_dir / "chelsea.png", "-w", "fix").code == 0
    [image] = image_ids(cli_services, "fix").values()
    assert feedlens("label", image, PETS, "-w", "fix").code == 0
    shown = feedlens("show", image, "-w", "fix")
    assert shown.code == 0, shown.stderr
    for said in ("chelsea.png", "categories: ", f"labels: shows {PETS}", "labels (labels-", "Cat "):
        assert said in shown.stdout, (said, shown.stdout)
    assert feedlens("show", image, "-w", "fix", "--json").json()["labels"][0]["category"] == PETS

    replaced = feedlens("relabel", image, PETS, FOOD, "-w", "fix")
    assert replaced.code == 0 and f"labels now: shows {FOOD}; does not show -" in replaced.stdout
    unknown = feedlens("relabel", image, FOOD, "pets", "-w", "fix")
    assert unknown.code == 2 and "unknown_category" in unknown.stderr  # nothing changed
    removed = feedlens("unlabel", image, FOOD, "-w", "fix")
    assert removed.code == 0 and "labels now: shows -; does not show -" in removed.stdout
    again = feedlens("unlabel", image, FOOD, "-w", "fix")
    assert again.code == 2 and "not_labelled" in again.stderr
    after = feedlens("show", image, "-w", "fix")
    assert "labels: none" in after.stdout and "corrections: 2" in after.stdout
    assert feedlens("show", "no-such-image", "-w", "fix").code == 2


def test_labels_are_removed_and_replaced_through_the_api(
    client: httpx.Client, keys: dict[str, str], sample_dir: Path
) -> None:
    key = keys["write"]
    image = store(client, key, (sample_dir / "coffee.png").read_bytes(), "coffee.png")
    path = f"/v1/images/{image}/labels"
    assert client.post(path, headers=auth(key), json={"categories": [PETS]}).status_code == 200
    swapped = client.post(f"{path}/{PETS}/replace", headers=auth(key), json={"with": FOOD})
    assert swapped.status_code == 200, swapped.text
    assert [(lab["category"], lab["positive"]) for lab in swapped.json()["labels"]] == [(FOOD, True)]
    gone = client.delete(f"{path}/{FOOD}", headers=auth(key))
    assert gone.status_code == 200 and gone.json()["labels"] == []
    is_problem(client.delete(f"{path}/{FOOD}", headers=auth(key)), 404, "not_labelled")
    history = client.get(f"/v1/images/{image}/corrections", headers=auth(key)).json()["corrections"]
    assert [c["kind"] for c in history][:2] == ["labels", "labels"]
    assert history[0]["value"] == {"removed": [FOOD]}
    is_problem(client.delete(f"{path}/{FOOD}", headers=auth(keys["read"])), 403, "forbidden")
