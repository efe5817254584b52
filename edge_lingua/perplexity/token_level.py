"""Word level: which words of each context survive, scored by the causal LM.

``iterative`` is LLMLingua's token-level step at word granularity: the kept contexts are
fed segment by segment (about ``iterative_size`` tokens each); every segment is scored
conditioned on the *compressed* text before it, its most surprising words are kept at the
segment's rate, and the KV cache is rewound and refilled with only the kept tokens before
the next segment. ``self_information`` is Selective-Context: one unconditioned pass, phrases
ranked by their summed self-information.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from edge_lingua.perplexity.scorer import CausalLMScorer
from edge_lingua.perplexity.units import Context, phrase_ids
from edge_lingua.selection import select


def segments(context: Context, size: int) -> list[tuple[int, int]]:
    """Word ranges whose tokens add up to at most ``size`` (a longer word stands alone)."""
    costs = context.word_costs()
    bounds: list[tuple[int, int]] = []
    start, total = 0, 0.0
    for w, cost in enumerate(costs.tolist()):
        if w > start and total + cost > size:
            bounds.append((start, w))
            start, total = w, 0.0
        total += cost
    if start < context.n_words:
        bounds.append((start, context.n_words))
    return bounds


def iterative(
    scorer: CausalLMScorer,
    contexts: Sequence[Context],
    order: Sequence[int],
    rates: Mapping[int, float],
    forced: Mapping[int, np.ndarray],
    iterative_size: int,
    prefix: Sequence[int],
    separator: Sequence[int],
    reference: Mapping[int, np.ndarray] | None = None,
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Keep masks and word scores for the contexts in ``order``.

    ``prefix`` (e.g. the question) conditions every score and is never compressed.
    With ``reference`` (each context's token surprisal without the prefix), a token's score
    is how much the prefix lowers its surprisal (LongLLMLingua's contrastive perplexity).
    """
    scorer.reset()
    scorer.extend(prefix, score=False)
    keeps: dict[int, np.ndarray] = {}
    scores: dict[int, np.ndarray] = {}
    for position, idx in enumerate(order):
        context = contexts[idx]
        if position:
            scorer.reserve(len(separator))
            scorer.extend(separator, score=False)
        keep = np.zeros(context.n_words, dtype=bool)
        word_scores = np.zeros(context.n_words, dtype=np.float64)
        costs = context.word_costs()
        for w0, w1 in segments(context, min(iterative_size, scorer.max_context // 2)):
            in_seg = (context.token_word >= w0) & (context.token_word < w1)
            scorer.reserve(int(in_seg.sum()))
            mark = scorer.cached
            surprisal = -scorer.extend(context.token_ids[in_seg]).astype(np.float64)
            if reference is not None:
                surprisal = reference[idx][in_seg] - surprisal
            local = context.token_word[in_seg] - w0
            seg_costs = costs[w0:w1]
            sums = np.bincount(local, weights=surprisal, minlength=w1 - w0)
            density = np.divide(sums, seg_costs, out=np.zeros_like(sums), where=seg_costs > 0)
            seg_keep = select(density, seg_costs, forced[idx][w0:w1], rates[idx] * seg_costs.sum())
            keep[w0:w1] = seg_keep
            word_scores[w0:w1] = density
            scorer.rewind(mark)
            scorer.extend(context.token_ids[in_seg][seg_keep[local]], score=False)
        keeps[idx], scores[idx] = keep, word_scores
    return keeps, scores


def surprisal(scorer: CausalLMScorer, context: Context) -> np.ndarray:
    """Self-information (-log p, nats) of every token of a context read on its own."""
    return -scorer.token_logprobs(context.token_ids).astype(np.float64)


def self_information(
    scorer: CausalLMScorer, contexts: Sequence[Context]
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per context: phrase id of each word, each phrase's self-information and token cost."""
    phrases, values, costs = [], [], []
    for context in contexts:
        ids = phrase_ids(context)
        n = int(ids.max()) + 1 if ids.size else 0
        token_phrase = ids[context.token_word]
        values.append(np.bincount(token_phrase, weights=surprisal(scorer, context), minlength=n))
        costs.append(np.bincount(token_phrase, minlength=n).astype(np.float64))
        phrases.append(ids)
    return phrases, values, costs
