"""Vector indexes over image embeddings: one Protocol, an exact numpy backend and FAISS backends."""

from feedlens.index.base import Match, VectorIndex, VectorIndexError
from feedlens.index.exact import ExactIndex
from feedlens.index.faiss_index import FaissIndex, FaissParams
from feedlens.index.store import IndexStore, load_index, new_index

__all__ = [
    "ExactIndex",
    "FaissIndex",
    "FaissParams",
    "IndexStore",
    "Match",
    "VectorIndex",
    "VectorIndexError",
    "load_index",
    "new_index",
]
