"""Perplexity methods on the ``edge-lingua compress`` command (``--method``).

``add_arguments`` adds their flags to ``compress``; ``compress_from_args`` runs a method other
than ``llmlingua2``. Nothing heavy is imported until a compression runs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from edge_lingua.perplexity.options import CONDITIONS, REORDERS

if TYPE_CHECKING:
    from edge_lingua.result import CompressionResult

CLASSIFIER_METHOD = "llmlingua2"
_FLAGS: tuple[tuple[str, dict], ...] = (
    ("--instruction", {"default": "", "help": "instruction kept in front, never compressed"}),
    ("--question", {"default": "", "help": "the question about the text: a question-aware "
                    "classifier reads it beside every window and never outputs it; perplexity "
                    "methods keep it at the end and longllmlingua ranks by it"}),
    ("--condition-in-question", {"choices": CONDITIONS, "default": "none"}),
    ("--condition-compare", {"action": "store_true",
                             "help": "contrastive perplexity: score tokens by how much the "
                                     "question makes them predictable"}),
    ("--reorder-context", {"choices": REORDERS, "default": "original"}),
    ("--dynamic-context-compression-ratio", {"type": float, "default": 0.0}),
    ("--context-budget", {"default": "+100", "help": "slack of the context filter: +N, -N, *F"}),
    ("--iterative-size", {"type": int, "default": 200, "help": "tokens per segment"}),
    ("--n-ctx", {"type": int, "default": 1024, "help": "llama.cpp context length (GGUF)"}),
)


def add_arguments(compress: argparse.ArgumentParser) -> None:
    """Add the perplexity methods' flags to the ``compress`` subcommand."""
    for flag, spec in _FLAGS:
        compress.add_argument(flag, **spec)


def compress_from_args(args: argparse.Namespace, text: str) -> CompressionResult:
    """Load ``args.bundle`` and compress ``text`` with ``args.method``; returns the result."""
    from edge_lingua.errors import InvalidArgumentError
    from edge_lingua.perplexity.compressor import PerplexityCompressor

    if not args.bundle:
        raise InvalidArgumentError(f"--method {args.method} needs --bundle (causal-lm or .gguf)")
    compressor = PerplexityCompressor.load(
        args.bundle,
        providers=args.provider,
        threads=args.threads,
        n_ctx=args.n_ctx,
        target_tokenizer=args.target_tokenizer,
    )
    return compressor.compress(
        text,
        method=args.method,
        rate=args.rate,
        target_token=args.target_token,
        instruction=args.instruction,
        question=args.question,
        force_tokens=args.force_token,
        condition_in_question=args.condition_in_question,
        condition_compare=args.condition_compare,
        reorder_context=args.reorder_context,
        dynamic_context_compression_ratio=args.dynamic_context_compression_ratio,
        context_budget=args.context_budget,
        iterative_size=args.iterative_size,
    )
