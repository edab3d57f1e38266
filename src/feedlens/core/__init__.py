"""Pure building blocks: error codes, result dataclasses, image ops. Imports nothing else of feedlens."""
