"""FEEDLENS_ANALYZERS switches analyzers off: never loaded, never run as a helper, refused when asked for;
optional helpers (`uses`) join pipelines only when switched on, what an analyzer only `reads` never does."""

from __future__ import annotations

import pytest

from feedlens.analyzers.registry import DEFAULT_ANALYZERS, enabled_analyzers, resolve
from feedlens.config import Settings, load_settings
from feedlens.core.errors import ConfigError, UnknownAnalyzerError
from feedlens.services.factory import Services, build_services


def test_the_setting_reads_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDLENS_ANALYZERS", " labels, safety ,faces")
    assert load_settings().analyzers == ("labels", "safety", "faces")
    monkeypatch.setenv("FEEDLENS_ANALYZERS", " , ")
    with pytest.raises(ConfigError, match="FEEDLENS_ANALYZERS"):
        load_settings()


def test_enabled_analyzers_checks_names_and_hard_dependencies() -> None:
    assert enabled_analyzers(None) == DEFAULT_ANALYZERS
    assert enabled_analyzers(("safety", "labels")) == ("labels", "safety")  # registry order
    with pytest.raises(UnknownAnalyzerError, match="unknown analyzer 'lables'"):
        enabled_analyzers(("lables",))
    with pytest.raises(UnknownAnalyzerError, match="needs labels"):
        enabled_analyzers(("embedding",))


def test_helpers_join_only_when_switched_on_and_reads_never_do() -> None:
    assert resolve(["labels"]) == ["labels"]
    assert resolve(["labels"], ("faces", "objects")) == ["body_regions", "faces", "objects", "labels"]
    assert "text" not in resolve(["embedding"], DEFAULT_ANALYZERS)
    both = resolve(["embedding", "text"], DEFAULT_ANALYZERS)
    assert both.index("text") < both.index("embedding")


def test_a_switched_off_analyzer_is_not_run_and_is_refused(settings: Settings, services: Services) -> None:
    off = build_services(settings.model_copy(update={"analyzers": ("labels", "safety", "properties")}))
    assert off.analyzers == ("labels", "safety", "properties")
    names = [a.name for a in off.ingest_pipeline.analyzers]
    assert "objects" not in names and "pose" not in names and "faces" not in names
    assert names[-1] == "properties" and "body_regions" in names  # safety's own detector stays
    with pytest.raises(UnknownAnalyzerError, match="switched off"):
        off.pipeline(["objects"])
    assert off.followers("text") == []  # embedding, which reads text, is off
    off.close()
