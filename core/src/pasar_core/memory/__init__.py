"""Agent memory: embedding providers, knowledge (chunked documents and past exchanges in
pgvector) and its recall into runs."""
