"""Start a child whose peak-memory figures are its own.

Linux keeps a process's peak RSS (`ru_maxrss`) across exec, and a child forked from pytest starts with
pytest's pages mapped, so a program started straight from a test reports at least pytest's own peak
(gigabytes late in a run): getrusage budgets would pass whatever happens and libFuzzer's RSS limit would
trip at once. A shell that forks the program (it cannot exec it: a command follows) gives a clean start.
"""

from __future__ import annotations

from collections.abc import Sequence


def fresh(command: Sequence[str]) -> list[str]:
    """`command` run by /bin/sh as a forked child, with its exit status passed through."""
    return ["/bin/sh", "-c", '"$@"; exit $?', "sh", *command]
