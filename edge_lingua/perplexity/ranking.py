"""Context level: rank contexts (LLMLingua / LongLLMLingua) and keep the best within budget."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_lingua.perplexity.scorer import CausalLMScorer
from edge_lingua.perplexity.units import Context

# LongLLMLingua appends this to the question before scoring it against each document
QUESTION_SUFFIX = " We can get the answer to this question in the given documents."
SEPARATOR = "\n\n"


def rank_contexts(
    scorer: CausalLMScorer, contexts: Sequence[Context], question: str, condition: str
) -> list[int]:
    """Context indices, most useful first.

    ``condition="none"``: by the context's own perplexity, highest first (LLMLingua's
    demonstration filter). ``"after"``: by the perplexity of the question following the
    context, lowest first; ``"before"``: by the context's perplexity after the question,
    lowest first (LongLLMLingua's question-aware ranking).
    """
    if condition == "none":
        scores = [-_mean(-scorer.token_logprobs(c.token_ids)) for c in contexts]
        return _order(scores)
    if condition == "after":
        tail = scorer.encode(SEPARATOR + question + QUESTION_SUFFIX).ids
        scores = []
        for c in contexts:
            scorer.reset()
            scorer.extend(c.token_ids, score=False)
            scores.append(_mean(-scorer.extend(tail)))
        return _order(scores)
    query = scorer.encode(question + QUESTION_SUFFIX).ids
    sep = scorer.encode(SEPARATOR).ids
    scorer.reset()
    scorer.extend(np.concatenate([query, sep]), score=False)
    mark = scorer.cached
    scores = []
    for c in contexts:
        scorer.rewind(mark)
        scores.append(_mean(-scorer.extend(c.token_ids)))
    return _order(scores)


def select_contexts(
    ranking: Sequence[int],
    lengths: Sequence[int],
    target: float,
    force_ids: Sequence[int],
    force_number: int | None,
) -> list[int]:
    """LLMLingua's budget controller: forced contexts, then ranked ones until ``target`` is
    spent (the context that crosses it is kept). Returned in order of priority."""
    used = list(dict.fromkeys(force_ids))
    left = target
    for idx in ranking:
        if force_number is not None and len(used) >= force_number:
            break
        left -= lengths[idx]
        if idx not in used:
            used.append(idx)
        if left < 0:
            break
    return used


def reorder(used: Sequence[int], how: str) -> list[int]:
    """``original`` order, ``sort`` (priority order) or ``two_stage`` (best at both ends)."""
    if how == "original":
        return sorted(used)
    if how == "sort":
        return list(used)
    return list(used[0::2]) + list(used[1::2])[::-1]


def dynamic_ratios(used: Sequence[int], spread: float) -> dict[int, float]:
    """Rate offsets by priority: the first context gets ``+spread``, the last ``-spread``."""
    n = len(used)
    if spread <= 0 or n < 2:
        return dict.fromkeys(used, 0.0)
    return {idx: spread * (1 - 2 * rank / (n - 1)) for rank, idx in enumerate(used)}


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else 0.0


def _order(scores: Sequence[float]) -> list[int]:
    """Indices by ascending score, ties by position."""
    return [int(i) for i in np.argsort(np.asarray(scores), kind="stable")]
