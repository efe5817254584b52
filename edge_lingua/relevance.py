"""How relevant each context of a prompt is, for the context-level filter (the coarse step)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# with a question, a context is as relevant as the top tenth of its tokens say
TOP_SHARE = 0.1


def context_relevance(token_probs: Sequence[np.ndarray], question_given: bool) -> np.ndarray:
    """One score per context; higher is kept first.

    Without a question: the mean keep probability of its tokens (LLMLingua-2's coarse step).
    With one (a question-aware classifier's probabilities): the mean of the highest
    :data:`TOP_SHARE` of them. The context that answers a question holds a few tokens the
    classifier is sure of; a mean over every token would let a long context dilute them.
    """
    scores = np.zeros(len(token_probs), dtype=np.float64)
    for i, probs in enumerate(token_probs):
        if not probs.size:
            continue
        if question_given:
            k = max(1, round(TOP_SHARE * probs.size))
            scores[i] = float(np.sort(probs)[-k:].mean())
        else:
            scores[i] = float(probs.mean())
    return scores
