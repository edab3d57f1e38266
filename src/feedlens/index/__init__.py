"""Vector indexes over image embeddings: one Protocol, an exact numpy backend and FAISS backends."""
