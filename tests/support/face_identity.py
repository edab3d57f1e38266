"""Helpers of the face identity tests: boto3's Rekognition client for a key of a test server, and the
operator's switch (`feedlens faces identity on`) done in-process against the server's database."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from feedlens.services.access import AccessService
from feedlens.services.faces.identity import build_identity
from feedlens.services.factory import Services
from feedlens.storage.database import Database
from tests.e2e.server import Server


def rekognition_client(server: Server, key: str) -> Any:
    """boto3's client as a user makes one (`feedlens keys aws KEY`'s pair), pointed at the server."""
    database = Database(server.database_url)
    try:
        pair = AccessService(database).aws_credentials(key)
    finally:
        database.dispose()
    assert pair is not None
    return boto3.client(
        "rekognition",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=pair[0],
        aws_secret_access_key=pair[1],
        config=Config(retries={"total_max_attempts": 1}),
    )


def switch_on(server: Server, services: Services, workspace: str) -> None:
    database = Database(server.database_url)
    try:
        ws = AccessService(database).workspace_id(workspace)
        build_identity(database, services.store, 1).enable(ws, "test")
    finally:
        database.dispose()
