"""Words and phrases of a context, and which model token belongs to which word.

Words are the units of :mod:`edge_lingua.segmentation`, the same the token classifier keeps
or drops (atoms whole, CJK phrases), so any set of kept words rebuilds the input's own text
(``join_units``). A token belongs to the unit holding its first non-space character; a token
of whitespace only goes with the unit after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_lingua.perplexity.scorer import Encoded
from edge_lingua.segmentation import attach_tokens, split_units

# a phrase ends after a word ending in one of these
_PHRASE_END = tuple(".,;:!?)]}\"'")
_MAX_PHRASE_WORDS = 5
# function words open a new phrase ("the big dog" | "of the house" | "and" ...)
_FUNCTION_WORDS_TEXT = (
    "a an the and or but nor so yet of to in on at by for with from into onto over under "
    "about after before between through during without within as than that which who whom "
    "whose what when where why how if then because while although is are was were be been "
    "being has have had do does did will would shall should can could may might must it its "
    "this these those he she they we you i his her their our your my not no"
)
_FUNCTION_WORDS = frozenset(_FUNCTION_WORDS_TEXT.split())


@dataclass(frozen=True)
class Context:
    """One context: its words and its tokens, each token tied to a word."""

    text: str
    word_spans: np.ndarray  # [n_words, 2] character start/end
    token_ids: np.ndarray  # [n_tokens]
    token_word: np.ndarray  # [n_tokens] word index of each token

    @property
    def words(self) -> list[str]:
        return [self.text[s:e] for s, e in self.word_spans.tolist()]

    @property
    def n_words(self) -> int:
        return int(self.word_spans.shape[0])

    def word_costs(self) -> np.ndarray:
        """Model tokens per word."""
        return np.bincount(self.token_word, minlength=self.n_words).astype(np.float64)

    def tokens_of(self, keep: np.ndarray) -> list[int]:
        """Token ids of the kept words, in order."""
        return self.token_ids[keep[self.token_word]].tolist() if self.n_words else []


def build_context(text: str, encoded: Encoded) -> Context:
    """Split ``text`` into words and attach each of its tokens to one."""
    units = split_units(text)
    spans = units.spans
    if spans.shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Context(text, spans, empty, empty)
    token_word = attach_tokens(units, np.asarray(encoded.offsets, dtype=np.int64).reshape(-1, 2))
    return Context(text, spans, encoded.ids.astype(np.int64), token_word)


def phrase_ids(context: Context) -> np.ndarray:
    """Phrase index of every word: short chunks cut at punctuation, line breaks and
    function words (a dependency-free stand-in for Selective-Context's noun phrases)."""
    ids = np.zeros(context.n_words, dtype=np.int64)
    current, length = 0, 0
    text = context.text
    prev_end = 0
    for w, (start, end) in enumerate(context.word_spans.tolist()):
        word = text[start:end]
        new = w > 0 and (
            length >= _MAX_PHRASE_WORDS
            or "\n" in text[prev_end:start]
            or text[prev_end - 1] in _PHRASE_END
            or word.lower().strip("\"'([{") in _FUNCTION_WORDS
        )
        if new:
            current, length = current + 1, 0
        ids[w] = current
        length += 1
        prev_end = end
    return ids

