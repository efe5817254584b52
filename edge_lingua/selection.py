"""Budgeted word selection: which words survive, given their keep probabilities.

LLMLingua-2 keeps the words whose probability clears a token-weighted percentile. Here the
percentile is found exactly: units are ranked by probability (ties by position) and taken
while their tokens fit the budget, so the threshold is the probability of the last unit
taken. Forced units (force-token phrases, protected atoms, digits on request) are taken
first and count against the budget; when they alone exceed it they are all kept anyway,
and nothing else is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from edge_lingua.errors import InvalidArgumentError
from edge_lingua.segmentation import split_units

DEFAULT_RATE = 0.5
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Budget:
    """A target size in target-LLM tokens: ``rate`` of the original, or ``target_token``."""

    rate: float | None
    target_token: int | None

    def tokens(self, origin_tokens: int) -> float:
        if self.target_token is not None:
            return float(self.target_token)
        assert self.rate is not None
        return self.rate * origin_tokens


def make_budget(rate: float | None, target_token: int | None) -> Budget:
    """Validate ``rate`` / ``target_token`` (LLMLingua names); target_token wins when both."""
    if target_token is not None:
        if isinstance(target_token, bool) or not isinstance(target_token, Integral):
            raise InvalidArgumentError(f"target_token must be an integer, got {target_token!r}")
        if target_token <= 0:
            raise InvalidArgumentError(f"target_token must be > 0, got {target_token}")
        return Budget(rate=None, target_token=int(target_token))
    if rate is None:
        return Budget(rate=DEFAULT_RATE, target_token=None)
    if isinstance(rate, bool) or not isinstance(rate, Real):
        raise InvalidArgumentError(f"rate must be a number in (0, 1], got {rate!r}")
    value = float(rate)
    if not math.isfinite(value) or not 0.0 < value <= 1.0:
        raise InvalidArgumentError(f"rate must be in (0, 1], got {rate!r}")
    return Budget(rate=value, target_token=None)


def force_phrases(force_tokens: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    """Each force token as the sequence of units it is made of (``"The answer is"`` is three).

    A force token of whitespace only (``"\\n"``) has no units: line breaks of kept lines are
    always kept, so it needs none.
    """
    if isinstance(force_tokens, str):
        raise InvalidArgumentError("force_tokens must be a list of strings, not one string")
    phrases = []
    for token in force_tokens:
        if not isinstance(token, str):
            raise InvalidArgumentError(f"force_tokens must be strings, got {token!r}")
        units = tuple(split_units(token).words())
        if units:
            phrases.append(units)
    return tuple(phrases)


def forced_words(
    words: Sequence[str], force_tokens: Iterable[str], force_reserve_digit: bool
) -> np.ndarray:
    """Mask of units kept first: every occurrence of a force phrase, and digits when asked."""
    forced = np.zeros(len(words), dtype=bool)
    if force_reserve_digit:
        forced |= np.fromiter((_DIGIT.search(w) is not None for w in words), dtype=bool,
                              count=len(words))
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for phrase in force_phrases(force_tokens):
        by_first.setdefault(phrase[0], []).append(phrase)
    if not by_first:
        return forced
    for index, word in enumerate(words):
        for phrase in by_first.get(word, ()):
            if tuple(words[index : index + len(phrase)]) == phrase:
                forced[index : index + len(phrase)] = True
    return forced


def select(probs: np.ndarray, costs: np.ndarray, forced: np.ndarray, budget: float) -> np.ndarray:
    """Keep forced words, then the most probable others while their tokens fit ``budget``."""
    keep = forced.copy()
    remaining = budget - float(costs[forced].sum())
    candidates = np.flatnonzero(~forced)
    if remaining <= 0 or candidates.size == 0:
        return keep
    order = candidates[np.argsort(-probs[candidates], kind="stable")]
    fits = np.cumsum(costs[order]) <= remaining
    # a threshold: stop at the first word that does not fit
    n_take = int(np.argmin(fits)) if not fits.all() else fits.size
    keep[order[:n_take]] = True
    return keep


def drop_consecutive_repeats(
    words: Sequence[str], keep: np.ndarray, force_tokens: Iterable[str]
) -> np.ndarray:
    """Drop a kept single-unit force token that repeats the kept force token right before it."""
    force = {p[0] for p in force_phrases(force_tokens) if len(p) == 1}
    keep = keep.copy()
    previous: str | None = None
    for index in np.flatnonzero(keep):
        word = words[index]
        if word in force and word == previous:
            keep[index] = False
            continue
        previous = word if word in force else None
    return keep


def trim_to_budget(keep: np.ndarray, probs: np.ndarray, forced: np.ndarray, n: int) -> np.ndarray:
    """Drop the ``n`` least probable kept units that are not in ``forced``."""
    keep = keep.copy()
    removable = np.flatnonzero(keep & ~forced)
    if removable.size:
        order = removable[np.argsort(probs[removable], kind="stable")]
        keep[order[: max(1, n)]] = False
    return keep
