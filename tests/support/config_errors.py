"""The README's promise for a configuration problem: exit 2 and one line that says what is wrong (progress
lines such as "checking models ..." may come before it), never a traceback."""

from __future__ import annotations

import subprocess


def assert_one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if not line.endswith(" ...")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in result.stderr, result.stderr
