"""`feedlens serve`: the HTTP API under uvicorn; `--demo` first fills a demo workspace and prints a key."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from feedlens.cli.context import open_workspace, services_from
from feedlens.cli.library import ingest, reanalyze
from feedlens.core.access import Scope

DEMO_WORKSPACE = "demo"


# Posts for the sample photos, so the demo's trends, engagement and hashtag charts have something to show:
# (file, author, caption, likes, comments, shares, days before today). Invented, and said to be.
DEMO_POSTS = (
    ("chelsea.png", "catlover", "lazy sunday with chelsea #caturday #cats", 1840, 96, 40, 2),
    ("coffee.png", "brewbar", "morning flat white #coffee #latteart", 920, 31, 12, 3),
    ("coffee.png", "brewbar", "same cup, new week #coffee #mondaymotivation", 610, 18, 5, 10),
    ("astronaut.png", "spacefan", "suited up #space #nasa", 2400, 150, 310, 5),
    ("rocket.jpg", "spacefan", "launch day #space #rocket", 5100, 420, 880, 6),
    ("motorcycle.png", "ridersclub", "new ride #motorcycle #bikelife", 760, 44, 9, 8),
    ("china.jpg", "wanderer", "temple at dawn #travel #china", 1320, 60, 75, 12),
    ("flower.jpg", "wanderer", "spring is here #flowers #travel", 880, 22, 30, 15),
    ("grace_hopper.jpg", "historybits", "Grace Hopper, computing pioneer #history #tech", 3100, 210, 640, 18),
    ("camera.png", "photoclub", "old school #photography #camera", 450, 27, 6, 20),
    (
        "hubble_deep_field.jpg",
        "spacefan",
        "thousands of galaxies in one frame #space #hubble",
        6900,
        380,
        1500,
        25,
    ),
)


def demo_feed(samples: Path, folder: Path, today: datetime | None = None) -> Path:
    """Write the demo's feed export (JSONL, docs/feeds.md) for the sample photos present; returns its path.
    Posts are dated back from `today`, so the trends dashboard's recent weeks have data."""
    today = today or datetime.now(UTC)
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "id": f"demo-{n}",
            "platform": "instagram",
            "image": str((samples / name).resolve()),
            "author": author,
            "caption": caption,
            "likes": likes,
            "comments": comments,
            "shares": shares,
            "created_at": (today - timedelta(days=days)).isoformat(),
        }
        for n, (name, author, caption, likes, comments, shares, days) in enumerate(DEMO_POSTS)
        if (samples / name).is_file()
    ]
    path = folder / "demo-feed.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _demo(ctx: typer.Context, samples: Path, host: str, port: int) -> None:
    services, workspace_id = open_workspace(ctx, DEMO_WORKSPACE, create=True)
    access = services.access
    if not services.library.count(workspace_id):
        folder = (services.settings.data_dir or services.settings.home) / "demo"
        ingest(ctx, [samples, demo_feed(samples, folder)], workspace=DEMO_WORKSPACE)
    else:  # a demo from an older feedlens: bring results (and search vectors) up to the current analyzers
        for name in services.analyzers:
            reanalyze(ctx, analyzer=name, workspace=DEMO_WORKSPACE)
    for key in access.keys(DEMO_WORKSPACE):  # keys are stored hashed: mint a fresh one, retire the old
        if key["name"] == "make-run demo" and not key["revoked_at"]:
            access.revoke_key(DEMO_WORKSPACE, key["id"])
    secret, _ = access.create_key(DEMO_WORKSPACE, Scope.WRITE, "make-run demo")
    url = f"http://{host}:{port}"
    example = next(iter(sorted(p for p in samples.iterdir() if p.is_file())), samples)
    console = Console(stderr=True, highlight=False)
    console.print(f"\n[bold]feedlens API[/] on {url}  (docs: {url}/docs)")
    console.print(f"web app: [bold]{url}/[/]  (log in with the key below)")
    console.print(f"demo workspace key (write scope): [bold]{secret}[/]\n")
    console.print("try:")
    console.print(
        f"  curl -s -H 'Authorization: Bearer {secret}' -F file=@{example} {url}/v1/analyze", soft_wrap=True
    )
    console.print(
        f"  curl -s -H 'Authorization: Bearer {secret}' '{url}/v1/images?label=cat&limit=5'", soft_wrap=True
    )
    console.print(
        f"  curl -s -H 'Authorization: Bearer {secret}' '{url}/v1/search?q=coffee'\n", soft_wrap=True
    )


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="default FEEDLENS_HOST (127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="default FEEDLENS_PORT (8000)")] = None,
    demo: Annotated[
        Path | None, typer.Option(help="ingest this folder into workspace 'demo' (if empty) and print a key")
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs). Jobs left pending by a previous run resume."""
    import uvicorn

    from feedlens.api.app import create_app

    services = services_from(ctx)
    settings = services.settings
    host = host or settings.host
    port = port or settings.port
    services.check_storage()  # a full or read-only data folder: one line, exit 2, before listening
    if settings.clip.enabled:  # a CLIP model that does not fit: one line, exit 2, before listening
        services.text_encoder.load()
    if settings.objects_yolo.enabled and "objects" in services.analyzers:  # the same for a YOLO model
        services.pipeline(["objects"], helpers=False).load()
    if demo is not None:
        _demo(ctx, demo, host, port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The app runs over the services this command already wired: the demo's loaded models are reused.
    uvicorn.run(create_app(settings, services), host=host, port=port, log_level="info")
