"""The test suite's own layout: no module under tests/ imports a test module (`test_*.py`). Shared helpers
live in tests/support/ (or a package's non-test module), shared fixtures in a conftest.py; importing a test
module would collect its tests twice and tie one module's fixtures to another's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def module_name(path: Path) -> str:
    """tests/e2e/webdemo.py -> tests.e2e.webdemo (packages by their __init__.py: tests.e2e)."""
    parts = path.relative_to(TESTS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, importer: str, is_package: bool = False) -> list[str]:
    """Every module an import statement in `source` names, relative imports resolved against `importer`
    (`from a import b` names both a and a.b: b may be a module)."""
    package = importer if is_package else importer.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found += [module, *(f"{module}.{alias.name}" for alias in node.names)]
    return found


def is_test_module(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "tests" and parts[-1].startswith("test_")


def imports_of_test_modules(source: str, importer: str = "tests.e2e.webdemo") -> list[str]:
    return [m for m in imported_modules(source, importer) if is_test_module(m)]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from tests.e2e.test_api import auth", ["tests.e2e.test_api"]),
        ("import tests.services.test_search as search", ["tests.services.test_search"]),
        ("from tests.services import test_search", ["tests.services.test_search"]),
        ("from .test_web import shot", ["tests.e2e.test_web"]),
        ("from ..services.test_categories import meme", ["tests.services.test_categories"]),
        ("from . import test_web", ["tests.e2e.test_web"]),
        ("def f():\n    from tests.e2e.test_api import auth", ["tests.e2e.test_api"]),  # inside a function
        ("from tests.support.api import auth, is_problem", []),
        ("from tests.conftest import encode", []),
        ("from tests.e2e.server import Server", []),
    ],
)
def test_the_check_sees_every_spelling(source: str, expected: list[str]) -> None:
    assert imports_of_test_modules(source) == expected


def test_no_module_imports_a_test_module() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        name = module_name(path)
        source = path.read_text(encoding="utf-8")
        for imported in imported_modules(source, name, is_package=path.name == "__init__.py"):
            if is_test_module(imported):
                offenders.append(f"{path.relative_to(TESTS.parent)} imports {imported}")
    assert offenders == [], "move what is shared to tests/support/ or a conftest.py:\n" + "\n".join(offenders)
