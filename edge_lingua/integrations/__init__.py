"""Thin adapters that plug edge-lingua into other frameworks (LangChain, LlamaIndex).

Each adapter module imports its framework at import time and raises an ImportError naming the
extra to install when the framework is missing.
"""

from __future__ import annotations

from typing import Any

from edge_lingua.result import CompressionResult

ORIGIN_TOKENS_KEY = "edge_lingua_origin_tokens"
COMPRESSED_TOKENS_KEY = "edge_lingua_compressed_tokens"


def is_question_aware(compressor: Any) -> bool:
    """Whether the compressor's bundle conditions its keep/drop decisions on a question."""
    bundle = getattr(compressor, "bundle", None)
    return bool(getattr(getattr(bundle, "manifest", None), "question_aware", False))


def compress_for_query(
    compressor: Any, text: str, query: str | None, *, rate: float | None = None,
    target_token: int | None = None, structure: str | None = None,
) -> CompressionResult:
    """Compress ``text`` to ``target_token`` if given, else ``rate``; ``query`` goes in as
    ``question=`` when the bundle is question-aware; ``structure`` as ``compress`` takes it
    (default: its own default, ``auto``)."""
    budget: dict[str, Any] = (
        {"target_token": target_token} if target_token is not None else {"rate": rate})
    if structure is not None:
        budget["structure"] = structure
    if query and is_question_aware(compressor):
        return compressor.compress(text, question=query, **budget)
    return compressor.compress(text, **budget)
