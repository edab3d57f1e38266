"""The HTTP API (FastAPI): app factory, dependencies, problem+json errors, one router per resource."""
