"""Hostile inputs against every entry point (issue "hostile input"): what untrusted bytes make feedlens do.

The corpus (tests/fuzz/hostile_images.py, hostile_requests.py) is generated: decompression bombs of every
format at the 75 Mpx limit, 16x20000 / 16x50000 PNGs, huge dimensions claimed by tiny files, truncated
and corrupt files, the fuzzers' regression inputs, NUL bytes, non-images; and per HTTP entry point deep
JSON (1,000 to 100,000 brackets, as JSON, text/plain and untyped), base64 bombs, wrong content types,
oversize bodies (declared and chunked). Every other JSON route gets the deep JSON too.

Entry points: `feedlens analyze` (one run over a folder of the files; special files in guarded runs),
`POST /v1/analyze`, `POST /v1/images`, Google Cloud Vision `POST /v1/images:annotate` and SigV4-signed
Rekognition `POST /`, on a real `feedlens serve` at its default limits (rate limits aside). Per entry
point: cases, 5xx (or CLI crashes), the slowest refusal, and the peak extra RSS (VmRSS sampled every
10 ms, minus the RSS before the first case). Figures are measured, never asserted; failures are listed.

    .venv/bin/python benchmarks/hostile_input.py --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from run import machine, write_section
from tests.fuzz.fuzz_api import Running, own_server
from tests.fuzz.hostile_cli import run_cli
from tests.fuzz.hostile_images import hostile_images
from tests.fuzz.hostile_requests import (
    ENTRY_POINTS,
    PATHS,
    Attack,
    deep_json,
    image_attack,
    request_attacks,
    send,
)
from tests.fuzz.measure import Outcome, RssSampler

from feedlens.config import load_settings

START, END = "<!-- bench:hostile:start -->", "<!-- bench:hostile:end -->"
NAMES = {
    "cli": "`feedlens analyze`",
    "analyze": "`POST /v1/analyze`",
    "images": "`POST /v1/images`",
    "gcv": "GCV `POST /v1/images:annotate`",
    "rekognition": "Rekognition `POST /`",
    "json-routes": "every other JSON route (deep JSON)",
}
# The four HTTP entry points run the labels analyzer only: the decoder, not the model mix, is under test.
ANALYZERS = {"analyze": "?analyzers=labels", "images": "?analyzers=labels"}


def run_http(server: Running, sampler: RssSampler, entry: str, attacks: list[Attack]) -> Outcome:
    out = Outcome(entry)
    sampler.reset()
    # A connection per case: after a 500 the server closes its side, and a kept-alive connection would
    # make the NEXT case look unanswered.
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=server.url, timeout=httpx.Timeout(300.0), limits=fresh) as client:
        for attack in attacks:
            sampler.current = attack.name
            began = time.perf_counter()
            try:
                response = send(client, attack, server.key, server.pair)
                status, detail = response.status_code, response.text[:160].replace("\n", " ")
            except httpx.HTTPError as exc:
                status, detail = 0, repr(exc)[:160]
            failed = status >= 500 or status <= 0
            out.record(attack.name, status, time.perf_counter() - began, detail if failed else "")
    out.peak_extra_mb, out.peak_case = sampler.peak - sampler.baseline, sampler.peak_case
    return out


def http_attacks(entry: str, images: dict[str, bytes], max_body: int) -> list[Attack]:
    attacks = [image_attack(entry, name, data) for name, data in images.items()]
    suffix = ANALYZERS.get(entry, "")
    attacks = [Attack(a.name, a.path + suffix, a.content, a.headers, a.method, a.sign_as) for a in attacks]
    return attacks + request_attacks(entry, max_body)


def json_route_attacks(server: Running) -> list[Attack]:
    """Deep JSON on every JSON-accepting operation of the served schema but the entry points."""
    schema = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
    out = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            types = (operation.get("requestBody") or {}).get("content", {})
            if path in PATHS.values() or (not any("json" in t for t in types) and path != "/v1/batches"):
                continue
            concrete = path.replace("{", "").replace("}", "")  # /v1/images/image_id/labels
            for attack in deep_json("other", concrete, method.upper()):
                out.append(
                    Attack(
                        f"{method.upper()} {path} {attack.name}",
                        concrete,
                        attack.content,
                        attack.headers,
                        attack.method,
                    )
                )
    return out


@contextmanager
def serving(data: Path) -> Iterator[tuple[Running, RssSampler]]:
    with own_server(data, {"FEEDLENS_API__QUEUE_SIZE": "4"}) as server, RssSampler(server.pid) as sampler:
        yield server, sampler


def render(outcomes: list[Outcome], lines: list[str]) -> str:
    rows = [
        "| entry point | cases | 5xx / crashes | slowest refusal | slowest answer | peak extra RSS |",
        "|---|---:|---:|---|---|---|",
    ]
    for o in outcomes:
        slow, case = o.slowest_refusal()
        any_slow, any_case = max(((s, c) for c, s in o.seconds.items()), default=(0.0, ""))
        rows.append(
            f"| {NAMES[o.entry]} | {o.cases} | {len(o.failures)} | {1000 * slow:,.0f} ms (`{case}`) | "
            f"{1000 * any_slow:,.0f} ms (`{any_case}`) | {o.peak_extra_mb:,.0f} MB (`{o.peak_case}`) |"
        )
    failures = [f"- {NAMES[o.entry]}: {f}" for o in outcomes for f in o.failures]
    notes = [f"- {NAMES[o.entry]}: {n}" for o in outcomes for n in o.notes]
    return "\n".join(
        [
            START,
            '## Hostile input (issue "hostile input")',
            "",
            "`benchmarks/hostile_input.py`: a generated corpus of hostile files and requests "
            "(tests/fuzz/hostile_*.py) thrown at each entry point of a real server at its default limits "
            "and at the CLI. A 5xx (or a CLI that dies) is a failure; a refusal is any 4xx. Peak extra RSS: "
            "VmRSS sampled every 10 ms, minus the RSS before the entry point's first case, with the case "
            "in flight at the peak. The HTTP image cases run the labels analyzer only.",
            "",
            *[f"- {line}" for line in lines],
            "",
            *rows,
            "",
            "Failures (every case answered 5xx, not at all, or that ended the CLI):"
            if failures
            else "No failures.",
            "",
            *failures,
            *(["", *notes] if notes else []),
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="hostile inputs against every entry point")
    parser.add_argument("--out", type=Path, help="markdown file whose hostile section is (re)written")
    parser.add_argument("--skip-cli", action="store_true", help="HTTP entry points only")
    args = parser.parse_args(argv)
    settings = load_settings()
    began, load = time.perf_counter(), os.getloadavg()[0]
    images = hostile_images()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="feedlens-hostile-") as tmp:
        if not args.skip_cli:
            print("cli ...", flush=True)
            outcomes.append(run_cli(images, Path(tmp) / "cli"))
        with serving(Path(tmp) / "server") as (server, sampler):
            for entry in ENTRY_POINTS:
                print(f"{entry} ...", flush=True)
                outcomes.append(
                    run_http(
                        server, sampler, entry, http_attacks(entry, images, settings.api.max_request_bytes)
                    )
                )
            outcomes.append(run_http(server, sampler, "json-routes", json_route_attacks(server)))
            tracebacks = server.log.read_text(errors="replace").count("Traceback")
    lines = [
        *machine(settings),
        f"wall time {time.perf_counter() - began:,.0f} s; load average (1 min) {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (other processes on the same cores make times upper bounds)",
        f"{len(images)} hostile files; the server's log holds {tracebacks} tracebacks after the run",
    ]
    section = render(outcomes, lines)
    print(section)
    if args.out:
        write_section(args.out, section, START, END)


if __name__ == "__main__":
    main()
