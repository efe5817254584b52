"""LangChain document compressor: ``EdgeLinguaCompressor`` for ``ContextualCompressionRetriever``.

    from langchain_classic.retrievers import ContextualCompressionRetriever
    from edge_lingua.integrations.langchain import EdgeLinguaCompressor

    retriever = ContextualCompressionRetriever(
        base_compressor=EdgeLinguaCompressor.load(rate=0.5), base_retriever=my_retriever)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_lingua.integrations import (
    COMPRESSED_TOKENS_KEY,
    ORIGIN_TOKENS_KEY,
    compress_for_query,
)
from edge_lingua.optional import requires_extra

with requires_extra("langchain"):
    from langchain_core.callbacks import Callbacks
    from langchain_core.documents import BaseDocumentCompressor, Document
    from pydantic import ConfigDict, Field



class EdgeLinguaCompressor(BaseDocumentCompressor):
    """Compress each retrieved document on device, keeping its metadata and id.

    The query is passed to the model as ``question=`` when the bundle is question-aware.
    Each compressed document's metadata gains ``edge_lingua_origin_tokens`` and
    ``edge_lingua_compressed_tokens``; empty documents pass through untouched.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    compressor: Any = Field(description="an edge-lingua compressor (Compressor.load())",
                            exclude=True)
    rate: float | None = Field(default=0.5, description="share of tokens to keep")
    target_token: int | None = Field(default=None, description="token budget per document")

    @classmethod
    def load(cls, bundle: str | Path | None = None, **fields: Any) -> EdgeLinguaCompressor:
        """Open ``bundle`` (default: the shipped model) and wrap it."""
        from edge_lingua.compressor import load_compressor

        return cls(compressor=load_compressor(bundle), **fields)

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """The documents, each compressed for ``query``, in their original order."""
        return [self._compress(doc, query) for doc in documents]

    def _compress(self, doc: Document, query: str) -> Document:
        if not doc.page_content.strip():
            return doc
        result = compress_for_query(self.compressor, doc.page_content, query, rate=self.rate,
                                    target_token=self.target_token)
        metadata = {
            **doc.metadata,
            ORIGIN_TOKENS_KEY: result.origin_tokens,
            COMPRESSED_TOKENS_KEY: result.compressed_tokens,
        }
        return Document(page_content=result.compressed_prompt, metadata=metadata, id=doc.id)
