"""Cutting a document into overlapping chunks that fit an embedding model's input (LangChain's
recursive splitter: paragraphs, then lines, sentences, words)."""

from __future__ import annotations

CHUNK_CHARS = 1000
"""About 250 tokens: all-MiniLM-L6-v2 reads 256 word pieces and cuts the rest."""
CHUNK_OVERLAP = 150


def chunk_text(text: str) -> list[str]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=CHUNK_CHARS, chunk_overlap=CHUNK_OVERLAP, strip_whitespace=True
    )
    return [chunk for chunk in splitter.split_text(text) if chunk.strip()]
