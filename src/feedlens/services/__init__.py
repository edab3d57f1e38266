"""Orchestration over analyzers, runtime and (later) storage. The API and CLI call only this layer."""
