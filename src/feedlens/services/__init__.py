"""Orchestration over analyzers, runtime, storage, indexes and training; `factory.build_services` wires it.
The API and CLI call only this layer."""
