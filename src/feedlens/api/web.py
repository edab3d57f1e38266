"""The web app (docs/ui.md): a page at `/`, its scripts and styles under `/static`, and Chart.js from the
npm package `make setup` installs (src/feedlens/web/package-lock.json); nothing comes from the internet."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from feedlens.api.problems import Problem

WEB = Path(__file__).resolve().parents[1] / "web"
STATIC = WEB / "static"
CHART_JS = WEB / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js"
# Only this origin's scripts, styles and images: an injected tag could not load or send anything elsewhere.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        headers = {
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
        }
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=headers)

    @app.get("/vendor/chart.js", include_in_schema=False)
    def chart_js() -> FileResponse:
        if not CHART_JS.is_file():
            raise Problem(
                404, "not_found", "Chart.js is missing: run `make setup` (npm ci in src/feedlens/web)"
            )
        return FileResponse(CHART_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})
