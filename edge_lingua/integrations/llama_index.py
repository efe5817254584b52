"""LlamaIndex node postprocessor: ``EdgeLinguaPostprocessor`` compresses and ranks each node.

    from edge_lingua.integrations.llama_index import EdgeLinguaPostprocessor

    query_engine = index.as_query_engine(
        node_postprocessors=[EdgeLinguaPostprocessor.load(rate=0.5)])

Unlike LLMLingua's ``LongLLMLinguaPostprocessor``, which joins every node into one string and
returns unscored nodes, each node stays a node: compressed on its own, metadata kept, and scored
against the query.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from edge_lingua.integrations import (
    COMPRESSED_TOKENS_KEY,
    ORIGIN_TOKENS_KEY,
    compress_for_query,
)
from edge_lingua.optional import requires_extra

with requires_extra("llama-index"):
    from llama_index.core.bridge.pydantic import Field
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

RETRIEVAL_SCORE_KEY = "edge_lingua_retrieval_score"
_TERM = re.compile(r"\w+")


def query_coverage(query: str, text: str) -> float:
    """Share of the query's distinct words (case-folded) that ``text`` still contains."""
    wanted = set(_TERM.findall(query.casefold()))
    if not wanted:
        return 0.0
    return len(wanted & set(_TERM.findall(text.casefold()))) / len(wanted)


class EdgeLinguaPostprocessor(BaseNodePostprocessor):
    """Compress every node on device and rank the nodes by what survived for the query.

    Each node is compressed on its own (with the query as ``question=`` when the bundle is
    question-aware). Its new score is :func:`query_coverage` of the compressed text; ties keep
    the retriever's order. The retriever's score moves to metadata
    ``edge_lingua_retrieval_score`` and token counts are added. Empty nodes pass through
    untouched, after the others. ``top_n`` keeps only the best nodes.
    """

    compressor: Any = Field(description="an edge-lingua compressor (Compressor.load())",
                            exclude=True)
    rate: float | None = Field(default=0.5, description="share of tokens to keep")
    target_token: int | None = Field(default=None, description="token budget per node")
    top_n: int | None = Field(default=None, description="how many nodes to return (all)")

    @classmethod
    def class_name(cls) -> str:
        return "EdgeLinguaPostprocessor"

    @classmethod
    def load(cls, bundle: str | Path | None = None, **fields: Any) -> EdgeLinguaPostprocessor:
        """Open ``bundle`` (default: the shipped model) and wrap it."""
        from edge_lingua.compressor import load_compressor

        return cls(compressor=load_compressor(bundle), **fields)

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        query = query_bundle.query_str if query_bundle is not None else ""
        ranked: list[NodeWithScore] = []
        empty: list[NodeWithScore] = []
        for item in nodes:
            text = item.node.get_content(metadata_mode=MetadataMode.NONE)
            if not text.strip():
                empty.append(item)
            else:
                ranked.append(self._compress(item, text, query))
        ranked.sort(key=lambda n: -(n.score or 0.0))  # stable: ties keep the retriever's order
        out = ranked + empty
        return out if self.top_n is None else out[: self.top_n]

    def _compress(self, item: NodeWithScore, text: str, query: str) -> NodeWithScore:
        result = compress_for_query(self.compressor, text, query or None, rate=self.rate,
                                    target_token=self.target_token)
        node = item.node.model_copy(deep=True)
        node.set_content(result.compressed_prompt)
        node.metadata[ORIGIN_TOKENS_KEY] = result.origin_tokens
        node.metadata[COMPRESSED_TOKENS_KEY] = result.compressed_tokens
        node.metadata[RETRIEVAL_SCORE_KEY] = item.score
        return NodeWithScore(node=node, score=query_coverage(query, result.compressed_prompt))
