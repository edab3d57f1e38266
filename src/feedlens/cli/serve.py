"""`feedlens serve`: the HTTP API under uvicorn; `--demo` first fills a demo workspace and prints a key."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from feedlens.cli.context import open_workspace, services_from
from feedlens.cli.library import ingest_paths, reanalyze_stale
from feedlens.core.access import Scope
from feedlens.core.errors import ConfigError

if TYPE_CHECKING:
    import uvicorn

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


def check_port(host: str, port: int) -> None:
    """Fail in one line (exit 2) when the server could not listen, before seconds of model loading."""
    import errno
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: unknown host ({exc.strerror})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            why = {
                errno.EADDRINUSE: "the port is in use (another feedlens serve?)",
                errno.EACCES: "not allowed (ports below 1024 need root)",
                errno.EADDRNOTAVAIL: "no such address on this machine",
            }.get(exc.errno or 0, exc.strerror or str(exc))
            raise ConfigError(
                f"cannot listen on {host}:{port}: {why}; choose another with --port or FEEDLENS_PORT"
            ) from None


def _demo(ctx: typer.Context, samples: Path, say: Console) -> str:
    """Fill (or finish filling) the demo workspace, bring its results up to date; return a fresh key."""
    services, _ = open_workspace(ctx, DEMO_WORKSPACE, create=True)
    access = services.access
    folder = (services.settings.data_dir or services.settings.home) / "demo"
    say.print(
        f"demo workspace: ingesting the photos in {samples}/ and a feed of posts for them (stored ones "
        "are skipped)"
    )
    # always run: a no-op when complete, and it finishes a first `make run` that was interrupted
    ingest_paths(ctx, [samples, demo_feed(samples, folder)], DEMO_WORKSPACE, "make run")
    for name in services.analyzers:  # results of older analyzer versions are brought up to date
        reanalyze_stale(ctx, name, DEMO_WORKSPACE, quiet=True)
    for key in access.keys(DEMO_WORKSPACE):  # keys are stored hashed: mint a fresh one, retire the old
        if key["name"] == "make-run demo" and not key["revoked_at"]:
            access.revoke_key(DEMO_WORKSPACE, key["id"])
    secret, _ = access.create_key(DEMO_WORKSPACE, Scope.WRITE, "make-run demo")
    return secret


def _announce(console: Console, url: str, samples: Path, secret: str) -> None:
    example = next(iter(sorted(p for p in samples.iterdir() if p.is_file())), samples)
    console.print(f"\n[bold]feedlens API[/] on {url}  (docs: {url}/docs)")
    console.print(f"web app: [bold]{url}/[/]  (log in with the key below)")
    console.print(f"demo workspace key (write scope): [bold]{secret}[/]\n")
    console.print("try:")
    for line in (
        f"curl -s -H 'Authorization: Bearer {secret}' -F file=@{example} {url}/v1/analyze",
        f"curl -s -H 'Authorization: Bearer {secret}' '{url}/v1/images?label=cat&limit=5'",
        f"curl -s -H 'Authorization: Bearer {secret}' '{url}/v1/search?q=coffee'",
    ):
        console.print(f"  {escape(line)}", soft_wrap=True)
    console.print("\nCtrl-C stops the server.")


def _when_started(server: uvicorn.Server, then: Callable[[], None]) -> None:
    """Run `then` once the server listens (so the key and curl lines come when they work)."""

    def wait() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.1)
        if server.started:
            then()

    threading.Thread(target=wait, name="announce", daemon=True).start()


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="default FEEDLENS_HOST (127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="default FEEDLENS_PORT (8000)")] = None,
    demo: Annotated[
        Path | None, typer.Option(help="ingest this folder into workspace 'demo' (if new) and print a key")
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs). Jobs left pending by a previous run resume."""
    import uvicorn

    from feedlens.api.app import create_app

    services = services_from(ctx)
    settings = services.settings
    host = host or settings.host
    port = port or settings.port
    say = Console(stderr=True, highlight=False)
    services.check_storage()  # a full or read-only data folder: one line, exit 2, before listening
    check_port(host, port)  # a busy port: one line, exit 2, before any model loads
    if settings.ray_address and settings.jobs_worker:  # batch jobs would be analysed on the cluster
        from feedlens.services.cluster.ray_ingest import check_cluster_store

        check_cluster_store(settings)  # which needs PostgreSQL: refused here, not on the first job
    if settings.jobs_worker and settings.jobs.replica_id is None:
        # named by host and port: a restarted server takes back at once what its killed self had claimed
        services.jobs.queue.replica = f"{socket.gethostname()[:40]}:{port}"
    if demo is not None and not demo.is_dir():
        raise ConfigError(f"no such folder: {demo} (make samples creates samples/)")
    say.print("checking models ...")
    if settings.clip.enabled:  # a CLIP model that does not fit: one line, exit 2, before listening
        services.text_encoder.load()
    if settings.objects_yolo.enabled and "objects" in services.analyzers:  # the same for a YOLO model
        services.pipeline(["objects"], helpers=False).load()
    secret = _demo(ctx, demo, say) if demo is not None else None
    url = f"http://{host}:{port}"
    say.print(f"starting the API server on {url} (loading models) ...")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The app runs over the services this command already wired: the demo's loaded models are reused.
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, services), host=host, port=port, log_level="info")
    )
    if demo is not None and secret is not None:
        _when_started(server, lambda: _announce(say, url, demo, secret))
    else:
        _when_started(server, lambda: say.print(f"feedlens API ready on {url}  (docs: {url}/docs)"))
    server.run()
    if not server.started:  # uvicorn logged why (e.g. the port was taken meanwhile)
        raise typer.Exit(1)
