"""The scorer contract: log-probabilities of tokens under a causal LM with a KV cache.

A backend (ONNX, llama.cpp) supplies a tokenizer and one primitive, ``_forward``: append a
few tokens to its KV cache and return their logits. Everything else lives here: feeding
long inputs window by window, turning each window's logits into the log-probability of the
token that actually follows (the full ``[n_tokens, vocab]`` matrix is never built for more
than one window), rewinding the cache for LLMLingua's iterative compression, and rolling
the cache over when an input is longer than the model's context.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edge_lingua.errors import InvalidArgumentError


@dataclass(frozen=True)
class Encoded:
    """Token ids of a text and each token's character span in it."""

    ids: np.ndarray  # [n] int64
    offsets: np.ndarray  # [n, 2] character start/end


_LSE_ROWS = 8  # rows per log-sum-exp block: bounds the temporaries to 8 x vocab floats


def logsumexp_rows(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-sum-exp of each row, computed a few rows at a time."""
    out = np.empty(logits.shape[0], dtype=np.float64)
    for start in range(0, logits.shape[0], _LSE_ROWS):
        block = logits[start : start + _LSE_ROWS].astype(np.float64)
        peak = block.max(axis=1, keepdims=True)
        out[start : start + _LSE_ROWS] = peak[:, 0] + np.log(np.exp(block - peak).sum(axis=1))
    return out


class CausalLMScorer(ABC):
    """Scores token sequences with a causal LM, keeping one sequence in a KV cache.

    The cache always starts with the model's BOS token (when it has one). ``extend`` appends
    tokens and returns ``log p(token | everything before it)`` for each; ``rewind`` drops the
    cache back to a prefix so a shorter continuation can be fed instead.
    """

    provider: str
    bos_id: int | None
    max_context: int  # tokens the model can attend to at once
    window: int  # tokens per forward pass (bounds the logits held in memory)

    def __init__(self) -> None:
        self._cached: list[int] = []  # tokens in the backend's KV cache
        self._next_logprobs: np.ndarray | None = None  # log-softmax after the last cached token

    # --- backend --------------------------------------------------------------
    @abstractmethod
    def encode(self, text: str) -> Encoded:
        """Tokenize without special tokens, with character offsets."""

    @abstractmethod
    def _forward(self, ids: Sequence[int], n_past: int, all_rows: bool) -> np.ndarray:
        """Append ``ids`` after the first ``n_past`` cached tokens; return their logits,
        [n, vocab], or only the last row, [1, vocab], when ``all_rows`` is false."""

    @abstractmethod
    def _reset_cache(self) -> None:
        """Empty the backend's KV cache."""

    # --- public ---------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """How many tokens the model's tokenizer makes of ``text``."""
        return int(self.encode(text).ids.size) if text else 0

    @property
    def cached(self) -> int:
        """Number of tokens (BOS included) in the KV cache."""
        return len(self._cached)

    def reset(self) -> None:
        """Empty the cache and feed BOS, so the next token is scored from the start of text."""
        self._reset_cache()
        self._cached = []
        self._next_logprobs = None
        if self.bos_id is not None:
            self._feed([self.bos_id], None)

    def token_logprobs(self, ids: Sequence[int]) -> np.ndarray:
        """``log p(ids[i] | BOS, ids[:i])`` for every token, from a fresh cache."""
        self.reset()
        return self.extend(ids)

    def extend(self, ids: Sequence[int], score: bool = True) -> np.ndarray:
        """Append ``ids`` to the cache; returns the log-probability of each.

        The first token of a text with no BOS before it has nothing to be predicted from; it
        gets log-probability 0. With ``score=False`` the tokens only condition what follows
        (the model computes one output row per window instead of one per token) and the
        result is all zeros.
        """
        ids = [int(i) for i in ids]
        out = np.zeros(len(ids), dtype=np.float32)
        if not ids:
            return out
        done = 0
        if self._next_logprobs is not None and score:
            out[0] = self._next_logprobs[ids[0]]
        while done < len(ids):
            room = self.max_context - len(self._cached)
            if room <= 0:
                self._roll_over(self.max_context // 2)
                continue
            step = ids[done : done + min(self.window, room)]
            # row j of the window predicts the token after step[j]
            follow = ids[done + 1 : done + 1 + len(step)]
            chosen = self._feed(step, follow if score else None)
            out[done + 1 : done + 1 + len(chosen)] = chosen
            done += len(step)
        return out

    def reserve(self, n: int) -> None:
        """Roll the cache over now if ``n`` more tokens would not fit, so that ``rewind`` to
        the current length stays possible while those tokens are fed."""
        if n >= self.max_context - 1:
            raise InvalidArgumentError(f"{n} tokens do not fit a context of {self.max_context}")
        if len(self._cached) + n > self.max_context:
            self._roll_over(self.max_context - n - 1)

    def rewind(self, n: int) -> None:
        """Keep only the first ``n`` cached tokens (BOS included)."""
        if not 0 <= n <= len(self._cached):
            raise InvalidArgumentError(f"cannot rewind a cache of {len(self._cached)} to {n}")
        if n == len(self._cached):
            return
        keep = self._cached[:n]
        if n == 0:
            self._reset_cache()
            self._cached, self._next_logprobs = [], None
            return
        # the distribution after token n-1 is needed again: re-feed that one token
        self._cached = keep[:-1]
        self._next_logprobs = None
        self._feed(keep[-1:], None)

    # --- internals ------------------------------------------------------------
    def _feed(self, ids: list[int], follow: list[int] | None) -> np.ndarray:
        """Run one window; returns log p(follow[j]) from row j (nothing when ``follow`` is
        None) and keeps the last row's distribution for the next token."""
        logits = self._forward(ids, len(self._cached), all_rows=follow is not None)
        lse = logsumexp_rows(logits)
        chosen = np.zeros(0, dtype=np.float32)
        if follow:
            rows = np.arange(len(follow))
            chosen = (logits[rows, follow].astype(np.float64) - lse[rows]).astype(np.float32)
        self._cached.extend(ids)
        self._next_logprobs = (logits[-1].astype(np.float64) - lse[-1]).astype(np.float32)
        return chosen

    def _roll_over(self, keep: int) -> None:
        """The context is full: restart from BOS plus the ``keep`` most recent tokens."""
        tail = self._cached[len(self._cached) - keep :]
        if self.bos_id is not None and tail and tail[0] == self.bos_id:
            tail = tail[1:]
        self.reset()
        self.extend(tail, score=False)
