"""Schema-driven fuzzing of a running feedlens server: schemathesis over every operation of its OpenAPI
schema (patched by api_schemas: Google Cloud Vision's bodies, bodies the served schema lacks), plus a
hypothesis strategy of SigV4-signed AWS Rekognition requests on `POST /`.

Checks, for every response: no 5xx; a 4xx of feedlens's own routes is `application/problem+json` with a
`code`; a 4xx of images:annotate is Google's `{"error": {code, message, status}}`; a 4xx of `POST /` is
Rekognition's `{"__type", "Message"}` as application/x-amz-json-1.1.

    python -m tests.fuzz.fuzz_api --budget 600 --examples 200     # its own server (make fuzz)
    python -m tests.fuzz.fuzz_api --url http://127.0.0.1:8000 --key fl_... --budget 120
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from tests.fuzz.api_schemas import (
    GCV_PATH,
    REKOGNITION_JSON,
    image_contents,
    patched_openapi,
    rekognition_requests,
    sigv4_headers,
)

PROBLEM_JSON = "application/problem+json"
# Limits a fuzzing client must not hit; everything else is the server's defaults.
SERVER_ENV = {
    "FEEDLENS_API__RATE_PER_MINUTE": "1000000",
    "FEEDLENS_API__BURST": "100000",
    "FEEDLENS_API__QUEUE_SIZE": "64",
    "FEEDLENS_FETCH__ENABLED": "false",
}
REKOGNITION = "POST / (Rekognition, signed)"


@dataclass
class Failure:
    operation: str
    status: int
    reason: str
    reproduce: str  # a curl command, or the request's target and body


@dataclass
class Report:
    """Per operation: cases sent and their statuses; every failed check."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    unsatisfiable: list[str] = field(default_factory=list)  # operations/modes with no case to generate
    planned: int = 0  # operations to reach: the schema's, plus Rekognition's
    seconds: float = 0.0

    def record(self, operation: str, status: int) -> None:
        self.cases[operation] += 1
        self.statuses.setdefault(operation, Counter())[status] += 1

    def table(self) -> str:
        """Each operation's cases and statuses, one line each."""
        return "\n".join(
            f"  {op}: {n} cases, " + ", ".join(f"{s}x{c}" for s, c in sorted(self.statuses[op].items()))
            for op, n in sorted(self.cases.items())
        )

    def summary(self) -> str:
        total = sum(self.cases.values())
        by_op = Counter(f.operation for f in self.failures)
        lines = [
            f"{len(self.cases)} operations, {total} cases, {len(self.failures)} failures "
            f"in {self.seconds:.0f} s"
        ]
        lines += [f"  FAIL {op}: {n}" for op, n in by_op.most_common()]
        for failure in self.failures[:20]:
            lines.append(f"  - {failure.operation} -> {failure.status}: {failure.reason}")
            lines.append(f"    {failure.reproduce[:600]}")
        return "\n".join(lines)


def problem_of(operation: str, status: int, content_type: str, body: bytes) -> str | None:
    """What is wrong with this answer (None: nothing)."""
    if status >= 500:
        return f"server error {status}: {body[:300]!r}"
    if not 400 <= status < 500:
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return f"{status} body is not JSON ({content_type}): {body[:200]!r}"
    if operation == REKOGNITION:
        if content_type != REKOGNITION_JSON or not isinstance(parsed, dict) or "__type" not in parsed:
            return f"{status} is not a Rekognition error ({content_type}): {body[:200]!r}"
        return None
    if GCV_PATH in operation:
        error = parsed.get("error") if isinstance(parsed, dict) else None
        if not isinstance(error, dict) or not {"code", "message", "status"} <= error.keys():
            return f"{status} is not a Google error: {body[:200]!r}"
        return None
    if not content_type.startswith(PROBLEM_JSON) or not isinstance(parsed, dict) or "code" not in parsed:
        return f"{status} is not problem+json with a code ({content_type}): {body[:200]!r}"
    return None


def _first(value: Any) -> str:
    """A header as schemathesis gives it (a list of values) or as a plain string."""
    if isinstance(value, list):
        return str(value[0]) if value else ""
    return str(value or "")


def _quiet_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is recorded, not raised
        suppress_health_check=list(HealthCheck),
    )


def _drive(
    strategy: st.SearchStrategy[Any], examples: int, until: float, send: Callable[[Any], None]
) -> None:
    """Send up to `examples` draws of `strategy`: the first always, later ones until `until`
    (time.monotonic), so every operation is reached however slow the ones before it were."""
    sent = [0]

    @_quiet_settings(examples)
    @given(strategy)
    def run(value: Any) -> None:
        if sent[0] == 0 or time.monotonic() < until:
            sent[0] += 1
            send(value)

    run()


def _modes(operation: Any) -> tuple[GenerationMode, ...]:
    """Negative cases exist only where something typed can be broken: a body or query parameters (a
    path of free strings has none, and hypothesis spends seconds proving it)."""
    if len(operation.body) or len(operation.query):
        return (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    return (GenerationMode.POSITIVE,)


def fuzz_schema(url: str, key: str, report: Report, examples: int, until: float) -> None:
    """Every operation of the patched schema, positive then negative cases, within `until`."""
    served = httpx.get(f"{url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(patched_openapi(served))
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Ok):
            operations.append(result.ok())
        else:  # an operation no tool can generate for is a bug of the served schema
            report.failures.append(Failure("schema", 0, f"invalid operation: {result.err()}", ""))
    report.planned += len(operations)
    session = requests.Session()
    headers = {"X-API-Key": key, "Authorization": f"Bearer {key}"}  # images:annotate takes the Bearer one
    for n, operation in enumerate(operations):
        name = f"{operation.method.upper()} {operation.path}"
        share = (until - time.monotonic()) / (len(operations) - n)  # the time left, split evenly
        op_until = time.monotonic() + max(share, 0.0)

        def send(case: Any, name: str = name) -> None:
            try:
                response = case.call(base_url=url, session=session, headers=headers, timeout=120)
                status, body = response.status_code, response.content or b""
                content_type = _first(response.headers.get("content-type"))
                reason = problem_of(name, status, content_type, body)
            except requests.RequestException as exc:  # a dropped connection or a 2-minute answer
                status, reason = 0, f"no answer: {exc!r}"
            report.record(name, status)
            if reason:
                curl = case.as_curl_command(headers=headers, base_url=url)
                report.failures.append(Failure(name, status, reason, curl))

        for mode in _modes(operation):
            try:
                _drive(operation.as_strategy(generation_mode=mode), examples // 2 or 1, op_until, send)
            except Unsatisfiable:  # nothing of this mode exists (a GET without parameters has no negatives)
                report.unsatisfiable.append(f"{name} ({mode.value})")


def fuzz_rekognition(url: str, pair: tuple[str, str], report: Report, examples: int, until: float) -> None:
    """Signed Rekognition requests of every operation (and unknown ones), valid and invalid bodies."""
    client = httpx.Client(base_url=url, timeout=120)
    report.planned += 1

    def send(request: tuple[str, bytes]) -> None:
        target, body = request
        headers = sigv4_headers(f"{url}/", pair, target, body)
        try:
            response = client.post("/", content=body, headers=headers)
            status, content_type = response.status_code, response.headers.get("content-type", "")
            reason = problem_of(REKOGNITION, status, content_type, response.content)
        except httpx.HTTPError as exc:
            status, reason = 0, f"no answer: {exc!r}"
        report.record(REKOGNITION, status)
        if reason:
            report.failures.append(Failure(REKOGNITION, status, reason, f"{target!r} {body[:400]!r}"))

    with client:
        _drive(rekognition_requests(image_contents()), examples, until, send)


def run(url: str, key: str, pair: tuple[str, str], budget_s: float, examples: int) -> Report:
    """Schemathesis over the schema (80% of the budget), then signed Rekognition requests."""
    report = Report()
    began = time.monotonic()
    fuzz_schema(url, key, report, examples, began + 0.8 * budget_s)
    fuzz_rekognition(url, pair, report, examples * 2, began + budget_s)
    report.seconds = time.monotonic() - began
    return report


@dataclass(frozen=True)
class Running:
    """A server this module started: where it listens, a write key, that key's AWS pair, its pid."""

    url: str
    key: str
    pair: tuple[str, str]
    pid: int
    log: Path


@contextmanager
def own_server(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Running]:
    """A `feedlens serve` with SERVER_ENV (and `env`) in `data_dir`, stopped on exit."""
    from feedlens.services.access import AccessService
    from feedlens.storage.database import Database
    from tests.e2e.server import Server

    server = Server(data_dir, {**SERVER_ENV, **(env or {})}).start()
    try:
        key = server.key("fuzz", "write")
        database = Database(server.database_url)
        try:
            pair = AccessService(database).aws_credentials(key)
        finally:
            database.dispose()
        assert pair is not None and server.process is not None
        yield Running(server.url, key, pair, server.process.pid, server.log)
    finally:
        server.stop()


def write_markdown(out: Path, report: Report, budget: float, examples: int) -> None:
    """The run as the `api-fuzz` section of docs/benchmarks.md (issue "hostile input")."""
    from benchmarks.run import write_section

    statuses: Counter[int] = Counter()
    for counts in report.statuses.values():
        statuses.update(counts)
    failed = Counter(f.operation for f in report.failures)
    lines = [
        "<!-- bench:api-fuzz:start -->",
        "## API fuzzing (schemathesis over the served OpenAPI document, signed Rekognition calls)",
        "",
        f"`python -m tests.fuzz.fuzz_api --budget {budget:.0f} --examples {examples}` (`make fuzz`; "
        f"`make test` runs a shorter budget), run {time.strftime('%Y-%m-%d')} against a real "
        "`feedlens serve` on loopback with every default analyzer. "
        "Positive and negative cases per operation from the served schema (Google Cloud Vision's and "
        "Rekognition's bodies included), steered to images that decode. A failure is a 5xx, no answer, "
        "or a 4xx outside the route's own error shape.",
        "",
        f"- {len(report.cases)} operations, {sum(report.cases.values())} cases in {report.seconds:.0f} s; "
        f"**{len(report.failures)} failures**"
        + (": " + ", ".join(f"{op} x{n}" for op, n in failed.most_common()) if failed else ""),
        "- statuses: " + ", ".join(f"{s} x{n}" for s, n in sorted(statuses.items())),
        f"- operations or modes with nothing to generate: {len(report.unsatisfiable)}",
        "",
        "<!-- bench:api-fuzz:end -->",
    ]
    write_section(out, "\n".join(lines), "<!-- bench:api-fuzz:start -->", "<!-- bench:api-fuzz:end -->")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a running server (default: start one on a temporary data folder)")
    parser.add_argument("--key", help="a write key of that server")
    parser.add_argument("--aws", nargs=2, metavar=("ACCESS_KEY", "SECRET"), help="`feedlens keys aws KEY`")
    parser.add_argument("--budget", type=float, default=600, help="seconds of fuzzing (after start-up)")
    parser.add_argument("--examples", type=int, default=200, help="cases per operation, at most")
    parser.add_argument("-v", "--verbose", action="store_true", help="statuses of every operation")
    parser.add_argument("--out", type=Path, help="markdown file whose api-fuzz section is (re)written")
    args = parser.parse_args(argv)
    if args.url:
        if not (args.key and args.aws):
            parser.error("--url needs --key and --aws")
        report = run(args.url, args.key, tuple(args.aws), args.budget, args.examples)
    else:
        with tempfile.TemporaryDirectory(prefix="feedlens-fuzz-") as tmp, own_server(Path(tmp)) as found:
            report = run(found.url, found.key, found.pair, args.budget, args.examples)
    if args.verbose:
        print(report.table())
    print(report.summary())
    if args.out:
        write_markdown(args.out, report, args.budget, args.examples)
    return 1 if report.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
