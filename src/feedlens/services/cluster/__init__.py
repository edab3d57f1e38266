"""Analysis on a Ray cluster (docs/scale.md): the nodes decode and analyse, this process stores.

Nothing here is imported unless `feedlens ingest --ray` (or FEEDLENS_RAY_ADDRESS) asks for a cluster: Ray
is an optional extra (`pip install feedlens[cluster]`).
"""
