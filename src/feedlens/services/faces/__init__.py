"""Faces beyond detection: identity (opt-in per workspace, erasable)."""
