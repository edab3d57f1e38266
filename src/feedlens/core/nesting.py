"""How deeply a JSON or YAML document nests, found without parsing it: Python's parsers recurse, so a
2 KB body of 1,000 brackets would otherwise end in RecursionError (a 500) or seconds of work."""

from __future__ import annotations

import re

from feedlens.core.errors import FeedlensError

MAX_DEPTH = 64  # feedlens's own documents nest 5 levels at most; 64 leaves room for any real client
# A JSON string (escapes included) is one token, so a base64 image inside one costs a single match.
# (the "unrolled loop" form: a run of plain characters at a time, so a 25 MB string is scanned in ~50 ms).
_JSON_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_YAML_FLOW = re.compile(r"""'[^']*(?:''[^']*)*'|"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]""")


class NestingError(FeedlensError):
    """A document nested deeper than feedlens accepts."""

    code = "too_deeply_nested"
    http_status = 400


def json_depth(data: bytes, limit: int = MAX_DEPTH) -> int:
    """The bracket depth of a JSON text, stopping early once past `limit`. Malformed text is not an error
    here (the parser says so later); only depth is."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif token in (b"]", b"}"):
            depth = max(0, depth - 1)
    return deepest


def yaml_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """A bound on how deeply a YAML text nests: distinct indentation levels in block style plus flow
    bracket depth, whichever is larger (comments and blank lines ignored)."""
    levels: list[int] = []
    deepest = 0
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(stripped) + _dash_indent(stripped)
        while levels and levels[-1] >= indent:
            levels.pop()
        levels.append(indent)
        deepest = max(deepest, len(levels))
        if deepest > limit:
            return deepest
    flow = depth = 0
    for match in _YAML_FLOW.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            flow = max(flow, depth)
            if flow > limit:
                break
        elif token in "]}":
            depth = max(0, depth - 1)
    return max(deepest, flow)


def _dash_indent(stripped: str) -> int:
    """`- - - a` nests three sequences on one line: count each dash as a level of indentation."""
    count = 0
    while stripped.startswith("- "):
        count += 2
        stripped = stripped[2:].lstrip(" ")
    return count


def check_json(data: bytes, what: str = "the request body", limit: int = MAX_DEPTH) -> None:
    if json_depth(data, limit) > limit:
        raise NestingError(f"{what} nests more than {limit} levels deep")


def check_yaml(text: str, what: str = "the document", limit: int = MAX_DEPTH) -> None:
    if yaml_depth(text, limit) > limit:
        raise NestingError(f"{what} nests more than {limit} levels deep")
