"""Every shell command in README.md, run as printed, in order, against a demo workspace made the way
`make run` makes it (`feedlens serve --demo samples`, here on a free port and a temporary data folder).

`feedlens` lines run in-process through the console entry point (one set of loaded models; the arguments
are split as a shell splits them, `> file` is honoured); `curl` lines run the real curl against the demo
server; `VAR=$(...)` keeps a command's output for the `$VAR`s after it. What cannot run here is listed
below with the reason, and a README command that is neither run nor listed fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from feedlens.config import Settings
from feedlens.services.factory import Services, build_services
from tests.e2e.server import FEEDLENS, free_port
from tests.support.cli import Cli, Run, image_ids, in_process_cli
from tests.support.logos import logo, png

README = Path(__file__).resolve().parents[2] / "README.md"
README_PORT = "8000"

# Not run, and why. Keyed by the command's first two words.
SKIPPED = {
    "make run": "sets the machine up (venv, packages, models), then runs `feedlens serve --demo samples` "
    "until Ctrl-C: that command is what serves the demo here",
    "make test": "the whole test suite, this test included",
    "make bench": "tens of minutes of benchmarks that rewrite docs/benchmarks.md",
}
# The reader's own files that README commands name (a checkout has none): made here.
USER_FILES = {
    "labelled/": "one folder per category of the default taxonomy, with sample photos",
    "zorblax.png": "the made-up brand mark of tests/support/logos.py",
}
# Placeholders the reader fills in, and what fills them here.
PLACEHOLDERS = {"IMAGE_ID": "the id of samples/chelsea.png in the demo workspace"}
LABELLED = {
    "animals & pets": ["chelsea.png"],
    "food & drink": ["coffee.png"],
    "vehicles": ["motorcycle.png", "rocket.jpg"],
    "people & selfies": ["astronaut.png", "grace_hopper.jpg"],
    "technology": ["camera.png"],
    "travel & outdoors": ["china.jpg", "flower.jpg"],
}


def split_commands(line: str) -> list[str]:
    """The commands on one line of a shell block: a comment (`#` after a blank, outside quotes) is
    dropped, unquoted `;` separates commands."""
    commands, current, quote = [], "", ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            break
        elif char == ";":
            commands.append(current)
            current = ""
            continue
        current += char
    return [c.strip() for c in [*commands, current] if c.strip()]


def readme_blocks() -> list[list[str]]:
    return [block.splitlines() for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)]


def readme_commands() -> list[str]:
    return [command for block in readme_blocks() for line in block for command in split_commands(line)]


def test_readme_is_parsed_as_a_shell_reads_it() -> None:
    assert split_commands("a b  # c; d") == ["a b"]
    assert split_commands("a '#x'; b \"y;z\" # c") == ["a '#x'", 'b "y;z"']
    assert split_commands("#   feedlens API on ...") == []
    commands = readme_commands()
    assert len(commands) > 30 and any(c.startswith("curl ") for c in commands)


def _user_files(work: Path, samples: Path) -> None:
    for category, names in LABELLED.items():
        folder = work / "labelled" / category
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).write_bytes((samples / name).read_bytes())
    (work / "zorblax.png").write_bytes(png(logo()))


def _wait_for_demo(process: subprocess.Popen[bytes], log: Path, url: str, timeout: float = 420) -> str:
    """The demo server's output once it has printed its key (it does once it listens)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "demo workspace key (write scope): " in text:
            assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
            return text
        assert process.poll() is None, f"serve --demo exited with {process.returncode}:\n{text}"
        time.sleep(0.5)
    raise AssertionError(f"serve --demo printed no key in {timeout} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def demo(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """(work folder with samples/ and the user's files, demo server URL, its output so far)."""
    root = tmp_path_factory.mktemp("readme")
    work, data = root / "work", root / "data"
    work.mkdir()
    (work / "samples").symlink_to(sample_dir)
    _user_files(work, sample_dir)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "FEEDLENS_DATABASE_URL"}
    env.update(FEEDLENS_DATA_DIR=str(data), FEEDLENS_HOST="127.0.0.1", FEEDLENS_PORT=str(port))
    log = root / "serve.log"
    with log.open("wb") as out:  # make run's last step, as the Makefile spells it
        process = subprocess.Popen(
            [FEEDLENS, "serve", "--demo", "samples"], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        yield work, url, _wait_for_demo(process, log, url)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def readme_services(settings: Settings, demo: tuple[Path, str, str]) -> Services:
    data = demo[0].parent / "data"
    return build_services(settings.model_copy(update={"data_dir": data, "database_url": None}))


def test_make_run_prints_what_the_readme_says(demo: tuple[Path, str, str]) -> None:
    _, url, printed = demo
    [make_run] = [b for b in readme_blocks() if any(line.startswith("#   feedlens API") for line in b)]
    for line in (line[4:] for line in make_run if line.startswith("#   ")):
        pattern = re.escape(line.replace(f"127.0.0.1:{README_PORT}", url.removeprefix("http://")))
        assert re.search(pattern.replace(re.escape("fl_..."), r"fl_\S+"), printed), (line, printed)
    for step in ("checking models", "demo workspace: ingesting", "starting the API server"):
        assert step in printed  # `make run` says what it does between the model checks and the key


def _feedlens(cli: Cli, words: list[str], work: Path) -> tuple[Run, Path | None]:
    target = None
    if ">" in words:  # `command > file`
        at = words.index(">")
        target, words = work / words[at + 1], words[:at]
    done = cli(*words)
    if target is not None and done.code == 0:
        target.write_text(done.stdout)
    return done, target


def _curl(words: list[str], url: str) -> None:
    words = [w.replace(f"http://127.0.0.1:{README_PORT}", url) for w in words]
    done = subprocess.run(words, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, (words, done.stderr)
    body = json.loads(done.stdout)
    assert "items" in body, (words, body)  # an answer, not a problem+json error


def test_every_readme_command_works_as_printed(
    demo: tuple[Path, str, str], readme_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    work, url, _ = demo
    monkeypatch.chdir(work)
    cli = in_process_cli(readme_services)
    variables = {"IMAGE_ID": image_ids(readme_services, "demo")["chelsea.png"]}
    outputs: dict[str, Run] = {}
    skipped, timings = [], []
    for command in readme_commands():
        started = time.monotonic()
        captured = re.fullmatch(r"(\w+)=\$\((.*)\)", command)
        text = captured.group(2) if captured else command
        for name, value in variables.items():
            text = text.replace(f"${name}", value)
            text = text.replace(name, value) if name in PLACEHOLDERS else text
        words = shlex.split(text)
        head = " ".join(words[:2])
        if words[0] == "make":
            assert head in SKIPPED, f"README command {command!r} is neither run nor listed as skipped"
            skipped.append(head)
            continue
        if words[0] == "curl":
            _curl(words, url)
        else:
            assert words[0] == ".venv/bin/feedlens", f"README command {command!r}: what runs it here?"
            done, _ = _feedlens(cli, words[1:], work)
            assert done.code == 0, f"{command!r} exited {done.code}:\n{done.stdout}\n{done.stderr}"
            outputs[" ".join(words[1:3])] = done
            if captured:
                variables[captured.group(1)] = done.stdout.strip()
        timings.append((time.monotonic() - started, command))
    assert set(skipped) == set(SKIPPED)
    # what the first hour met, now as the README says
    assert "coffee.png" in outputs["search coffee"].stdout
    assert "in 2 posts" in outputs["duplicates -w"].stdout  # readable groups, not raw JSON
    assert "clusters" in outputs["clusters -w"].stderr or "cluster" in outputs["clusters -w"].stdout
    assert "images: 10 added, 0 already stored, 0 failed" in outputs["ingest samples/"].stderr
    # `categories train` made version 1 production (one route); `train` added version 2, promoted here
    assert "now production" in outputs["categories train"].stdout
    assert "version 2 is now production" in outputs["models promote"].stdout
    assert "recategorised with the production model" in outputs["models promote"].stderr
    # the one sample photo that labelled/ leaves unlabelled, named (not a bare id)
    assert "hubble_deep_field.jpg" in outputs["al next"].stdout
    print("slowest README commands:", sorted(timings, reverse=True)[:5])
