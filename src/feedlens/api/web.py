"""The web app (docs/ui.md) and the API docs: a page at `/`, its scripts and styles under `/static`, the
interactive API docs at `/docs` (Swagger UI) and `/redoc` (ReDoc), and the third-party bundles they use
(Chart.js, Swagger UI, ReDoc) from the npm packages `make setup` installs (their lockfile:
src/feedlens/web/package-lock.json). Nothing any of these pages loads comes from outside this server;
their Content-Security-Policy says so."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from feedlens.api.inputs import AnalyzeBody
from feedlens.api.problems import Problem
from feedlens.api.routers.batches import BatchBody
from feedlens.api.routers.brands import BrandBody

WEB = Path(__file__).resolve().parents[1] / "web"
STATIC = WEB / "static"
MODULES = WEB / "node_modules"
# /vendor/<name> -> (file in node_modules, media type); served as is, never copied into the repository
VENDOR = {
    "chart.js": (MODULES / "chart.js" / "dist" / "chart.umd.min.js", "text/javascript"),
    "swagger-ui.js": (MODULES / "swagger-ui-dist" / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (MODULES / "swagger-ui-dist" / "swagger-ui.css", "text/css"),
    "redoc.js": (MODULES / "redoc" / "bundles" / "redoc.standalone.js", "text/javascript"),
}
# ReDoc's menu shows its maker's logo from their CDN (no option turns it off): the CSP would block it, but
# the bundle is served with that one address emptied, so it is not even tried (the logo hides on error).
REWRITES = {"redoc.js": (b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"data:,")}
# Only this origin's scripts, styles and images: an injected tag could not load or send anything elsewhere.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# The docs pages: still nothing from elsewhere, but ReDoc writes its styles into <style> tags at run time
# and runs its search index in a worker made from a blob.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "worker-src 'self' blob:; font-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def _page(name: str, csp: str) -> FileResponse:
    headers = {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }
    return FileResponse(STATIC / name, media_type="text/html", headers=headers)


# Bodies that routes read by hand and name in `openapi_extra` by $ref: FastAPI never sees them, so their
# schemas are added here, or ReDoc stops at the dangling reference.
REFERENCED_BODIES: tuple[type[BaseModel], ...] = (AnalyzeBody, BrandBody, BatchBody)


def complete_openapi(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """`app.openapi` with the schemas of REFERENCED_BODIES (and the models they use) in components."""

    def openapi() -> dict[str, Any]:
        document = build()  # FastAPI caches it: the schemas are added once
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        if all(model.__name__ in schemas for model in REFERENCED_BODIES):
            return document
        _, extra = models_json_schema(
            [(model, "validation") for model in REFERENCED_BODIES],
            ref_template="#/components/schemas/{model}",
        )
        for name, schema in extra.get("$defs", {}).items():
            schemas.setdefault(name, schema)
        return document

    return openapi


def install(app: FastAPI) -> None:
    """Mount the web app and the docs on `app` (create it with docs_url=None, redoc_url=None)."""
    app.openapi = complete_openapi(app.openapi)  # type: ignore[method-assign]
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return _page("index.html", CSP)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> FileResponse:
        return _page("docs/swagger.html", DOCS_CSP)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> FileResponse:
        return _page("docs/redoc.html", DOCS_CSP)

    @app.get("/vendor/{name}", include_in_schema=False)
    def vendor(name: str) -> Response:
        found = VENDOR.get(name)
        if found is None:
            raise Problem(404, "not_found", f"no vendored file {name!r}")
        path, media_type = found
        if not path.is_file():
            raise Problem(
                404, "not_found", f"{name} is missing: run `make setup` (npm ci in src/feedlens/web)"
            )
        headers = {"Cache-Control": "max-age=3600"}
        if name in REWRITES:
            return Response(_rewritten(name), media_type=media_type, headers=headers)
        return FileResponse(path, media_type=media_type, headers=headers)


@lru_cache(maxsize=len(REWRITES))
def _rewritten(name: str) -> bytes:
    old, new = REWRITES[name]
    return VENDOR[name][0].read_bytes().replace(old, new)
