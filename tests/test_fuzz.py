"""Bounded fuzzing in `make test` (`make fuzz` runs the same harnesses for longer; tests/fuzz/README.md).

1. the decoder's contract on the seeds and on every input the fuzzers ever broke it with;
2. atheris (libFuzzer) on the decoder and the pipeline's decode path, about 30 s;
3. schemathesis over every operation of a real server's OpenAPI schema plus signed Rekognition calls,
   about 2 minutes: no 5xx, and every 4xx in the route's own error shape;
4. the hostile requests and special files that broke the server before.

Known failures of today's src are strict xfails (tests/fuzz/regressions.py names them): the day a fix
lands, its test turns XPASS and fails, and the name comes out of the KNOWN_* set.
"""

from __future__ import annotations

import base64
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fuzz.fuzz_api import Running, own_server
from tests.fuzz.fuzz_api import run as fuzz_api
from tests.fuzz.hostile_requests import DEEP, Attack, image_attack, send
from tests.fuzz.regressions import (
    CASES,
    KNOWN_BUGS,
    KNOWN_FILE_BUGS,
    KNOWN_OPERATION_BUGS,
    KNOWN_REQUEST_BUGS,
)
from tests.fuzz.seeds import seed_images
from tests.support.fresh import fresh

REPO = Path(__file__).resolve().parents[1]
ATHERIS_SECONDS = 60
ATHERIS_RUNS = 5_000  # ~8 s here; `make fuzz` runs for longer
ATHERIS_SEED = 20261206
SCHEMATHESIS_SECONDS = 75
pytestmark = pytest.mark.slow


def known(name: str, bugs: set[str] | dict[str, tuple[str, str]]) -> pytest.MarkDecorator:
    return pytest.mark.xfail(name in bugs, reason=f"known src bug {name!r} (regressions.py)", strict=True)


def test_every_seed_keeps_the_contract() -> None:
    from tests.fuzz.contract import check_input

    for data in seed_images().values():
        check_input(data)


@pytest.mark.parametrize("name", [pytest.param(n, marks=known(n, KNOWN_BUGS)) for n in CASES])
def test_regression_inputs_keep_the_contract(name: str) -> None:
    from tests.fuzz.contract import check_input

    check_input(CASES[name]())


def test_atheris_finds_nothing_new(tmp_path: Path) -> None:
    """libFuzzer from the generated seeds, a fixed seed and run count (ATHERIS_SECONDS at most): the CI
    run is reproducible, `make fuzz` explores at random. Bugs already known are stepped over."""
    command = [
        sys.executable, "-m", "tests.fuzz.fuzz_decoder", "--seed-corpus", str(tmp_path / "corpus"),
        "--tolerate-known", f"-max_total_time={ATHERIS_SECONDS}", f"-runs={ATHERIS_RUNS}",
        f"-seed={ATHERIS_SEED}", "-timeout=20",
        "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1",
    ]  # fmt: skip
    done = subprocess.run(  # fresh(): libFuzzer's RSS limit must count the fuzzer, not pytest's own peak
        fresh(command), cwd=REPO, capture_output=True, text=True, timeout=ATHERIS_SECONDS + 120, check=False
    )
    crashes = {p.name: base64.b64encode(p.read_bytes()).decode() for p in tmp_path.glob("crash-*")}
    crashes |= {
        p.name: base64.b64encode(p.read_bytes()).decode() for p in tmp_path.glob("*-*") if p.is_file()
    }
    assert done.returncode == 0, f"{done.stderr[-6000:]}\ninputs (base64): {crashes}"
    assert "Done" in done.stderr, done.stderr[-3000:]


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[Running]:
    with tempfile.TemporaryDirectory(prefix="feedlens-fuzz-") as tmp, own_server(Path(tmp)) as found:
        yield found


def test_schemathesis_finds_no_server_error(fuzz_server: Running) -> None:
    server = fuzz_server
    report = fuzz_api(server.url, server.key, server.pair, budget_s=SCHEMATHESIS_SECONDS, examples=12)
    print(report.table(), report.summary(), sep="\n")
    assert len(report.cases) == report.planned >= 70, report.summary()  # every operation was reached
    # a 500 on an operation with a known, still open bug is that bug (its own test below is the xfail)
    new = [
        f
        for f in report.failures
        if not (f.status == 500 and KNOWN_OPERATION_BUGS.get(f.operation) in KNOWN_REQUEST_BUGS)
    ]
    assert not new, report.summary()


def _requests() -> dict[str, Attack]:
    """The hostile requests that once had a 5xx answer, by name."""
    deep = DEEP["deep-array-1k"]
    out = {}
    for entry, path in [("analyze", "/v1/analyze"), ("images", "/v1/images"), ("batches", "/v1/batches"),
                        ("similar", "/v1/search/similar"), ("gcv", "/v1/images:annotate")]:  # fmt: skip
        out[f"{entry}:deep-json-no-type"] = Attack(f"{entry}:deep-json-no-type", path, deep)
        out[f"{entry}:deep-json-text"] = Attack(
            f"{entry}:deep-json-text", path, deep, {"Content-Type": "text/plain"}
        )
    seeds = seed_images()
    for kind in ("cmyk", "float"):
        seed = seeds["tiff-packbits-cmyk" if kind == "cmyk" else "tiff-float"]
        out[f"images:tiff-{kind}"] = image_attack("images", f"tiff-{kind}", seed)
    out["brands:logo-id-over-int64"] = Attack(
        "brands:logo-id-over-int64", "/v1/brands/acme/logos/10000000000000000001", b"", method="DELETE"
    )
    out["analyze:avif-missing-item"] = image_attack(
        "analyze", "avif-missing-item", CASES["avif-missing-item"]()
    )
    return out


REQUESTS = _requests()


@pytest.mark.parametrize("name", [pytest.param(n, marks=known(n, KNOWN_REQUEST_BUGS)) for n in REQUESTS])
def test_hostile_request_gets_no_server_error(fuzz_server: Running, name: str) -> None:
    with httpx.Client(base_url=fuzz_server.url, timeout=120) as client:
        response = send(client, REQUESTS[name], fuzz_server.key, fuzz_server.pair)
    assert response.status_code < 500, response.text[:500]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # 2 GiB: enough to decode, not to hoard


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=known(n, KNOWN_FILE_BUGS)) for n in ("dev-zero-symlink", "fifo")]
)
def test_special_files_are_refused(tmp_path: Path, name: str) -> None:
    """A folder may hold links to devices or named pipes (an unpacked archive can): each must be refused
    as unreadable, not read forever. Run in a child with 2 GiB of address space and 15 s."""
    target = tmp_path / "photo.jpg"
    if name == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    script = (
        "import sys; from pathlib import Path; from feedlens.config import DecodeLimits;"
        "from feedlens.core.errors import ImageError; from feedlens.images import ImageDecoder\n"
        "try: ImageDecoder(DecodeLimits()).decode(Path(sys.argv[1]))\n"
        "except ImageError as e: print(e.code); sys.exit(0)\n"
        "sys.exit(3)"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=15,
            preexec_fn=_limit_memory, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: still reading after 15 s")
    assert done.returncode == 0 and done.stdout.strip() == "unreadable", done.stderr[-2000:]
