"""Checks an answer against botocore's own model of a Rekognition response shape."""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.model import Shape

MODEL = botocore.session.get_session().get_service_model("rekognition")


def conforms(value: Any, shape: Shape, where: str = "$") -> None:
    """Every key is a member of botocore's shape and every value of its type (a misspelt field fails)."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), where
        for key, item in value.items():
            assert key in shape.members, f"{where}.{key} is not in {shape.name}"
            conforms(item, shape.members[key], f"{where}.{key}")
    elif kind == "list":
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            conforms(item, shape.member, f"{where}[{i}]")
    elif kind == "string":
        assert isinstance(value, str), where
        assert not shape.enum or value in shape.enum, f"{where}: {value!r} not in {shape.enum}"
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), where
    elif kind in ("float", "double"):
        assert isinstance(value, int | float) and not isinstance(value, bool), where
    elif kind == "boolean":
        assert isinstance(value, bool), where
    else:  # pragma: no cover - no other kinds in these responses
        raise AssertionError(f"{where}: unexpected shape {kind}")
    if kind in ("float", "double", "integer") and "min" in shape.metadata:
        assert value >= shape.metadata["min"], where
    if kind in ("float", "double") and "max" in shape.metadata:
        assert value <= shape.metadata["max"], where


def output(operation: str) -> Shape:
    shape = MODEL.operation_model(operation).output_shape
    assert shape is not None
    return shape
