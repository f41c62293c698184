"""Embeddings for search by meaning: the endpoint seam, the background worker, query vectors."""
