"""Running the `feedlens` CLI in-process through its console entry point: exit codes and output as a user
sees them, over one set of already loaded models (the e2e conftest's `feedlens` fixture)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from feedlens.cli.app import main
from feedlens.services.access import AccessService
from feedlens.services.factory import Services
from feedlens.storage.tables import Image as ImageRow


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)


Cli = Callable[..., Run]


def in_process_cli(services: Services) -> Cli:
    runner = CliRunner()

    def run(*args: str | Path) -> Run:
        with runner.isolation(env={"COLUMNS": "250"}) as (out, err, _):
            try:
                main([str(a) for a in args], services)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            sys.stdout.flush()  # the isolated streams buffer what was written without a flush
            sys.stderr.flush()
            return Run(code, out.getvalue().decode(), err.getvalue().decode())

    return run


def image_ids(services: Services, workspace: str) -> dict[str, str]:
    """File name -> image id of a workspace's images (what the CLI ingested, read in-process)."""
    workspace_id = AccessService(services.database).workspace_id(workspace)
    with services.database.session() as session:
        rows = session.execute(
            select(ImageRow.id, ImageRow.source).where(ImageRow.workspace_id == workspace_id)
        )
        return {Path(source).name: image_id for image_id, source in rows}
