"""Text to tokens, words and encoder windows.

Words are the pre-tokenizer's words of the bundle's ``tokenizer.json`` (for BERT-style
tokenizers: runs of letters/digits, single punctuation marks, single CJK characters),
located by character offsets in the original text, so the output can always be rebuilt
from the input's own characters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer


@dataclass(frozen=True)
class Segmented:
    """One context cut into tokens and words."""

    text: str
    token_ids: np.ndarray  # [n_tokens] int64
    token_word: np.ndarray  # [n_tokens] index of the word each token belongs to
    word_spans: np.ndarray  # [n_words, 2] character start/end in ``text``

    @property
    def n_words(self) -> int:
        return int(self.word_spans.shape[0])

    def word(self, index: int) -> str:
        start, end = self.word_spans[index]
        return self.text[start:end]

    def words(self) -> list[str]:
        return [self.text[s:e] for s, e in self.word_spans.tolist()]


def segment(tokenizer: Tokenizer, text: str) -> Segmented:
    """Tokenize ``text`` (no special tokens) and group its tokens into words."""
    encoding = tokenizer.encode(text, add_special_tokens=False)
    ids = np.asarray(encoding.ids, dtype=np.int64)
    if ids.size == 0:
        empty = np.zeros((0,), dtype=np.int64)
        return Segmented(text, empty, empty, np.zeros((0, 2), dtype=np.int64))
    offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)
    raw_words = np.asarray(
        [-1 if w is None else w for w in encoding.word_ids], dtype=np.int64
    )
    # A new word starts where the pre-tokenizer's word id changes (a token without a
    # word id stands alone).
    starts = np.ones(ids.size, dtype=bool)
    starts[1:] = (raw_words[1:] != raw_words[:-1]) | (raw_words[1:] < 0)
    token_word = np.cumsum(starts) - 1
    n_words = int(token_word[-1]) + 1
    spans = np.empty((n_words, 2), dtype=np.int64)
    spans[:, 0] = np.full(n_words, np.iinfo(np.int64).max)
    spans[:, 1] = -1
    np.minimum.at(spans[:, 0], token_word, offsets[:, 0])
    np.maximum.at(spans[:, 1], token_word, offsets[:, 1])
    return Segmented(text, ids, token_word, spans)


def window_bounds(
    seg: Segmented, max_tokens: int, chunk_end_tokens: Iterable[str]
) -> list[tuple[int, int]]:
    """Cut a context's tokens into windows of at most ``max_tokens``.

    Windows end at a word that is a chunk-end token (or, for ``"\\n"``, a word followed by a
    line break) when one lies inside the window, else at the last whole word that fits; only
    a single word longer than a window is split inside.
    """
    n = int(seg.token_ids.size)
    if n <= max_tokens:
        return [(0, n)] if n else []
    ends = set(chunk_end_tokens)
    split_on_newline = "\n" in ends
    word_starts = np.flatnonzero(np.r_[True, seg.token_word[1:] != seg.token_word[:-1]])
    # token index after which a window may end: the start of the next word
    boundary = np.r_[word_starts[1:], n]
    is_chunk_end = np.zeros(seg.n_words, dtype=bool)
    text = seg.text
    for w, (s, e) in enumerate(seg.word_spans.tolist()):
        if text[s:e] in ends:
            is_chunk_end[w] = True
        elif split_on_newline:
            nxt = seg.word_spans[w + 1, 0] if w + 1 < seg.n_words else len(text)
            is_chunk_end[w] = "\n" in text[e:nxt]
    chunk_cuts = boundary[is_chunk_end]
    windows: list[tuple[int, int]] = []
    start = 0
    while n - start > max_tokens:
        limit = start + max_tokens
        cut = _last_in(chunk_cuts, start, limit)
        if cut is None:
            cut = _last_in(boundary, start, limit)
        if cut is None:
            cut = limit
        windows.append((start, cut))
        start = cut
    windows.append((start, n))
    return windows


def _last_in(sorted_cuts: np.ndarray, low: int, high: int) -> int | None:
    """Largest value v in ``sorted_cuts`` with low < v <= high."""
    idx = int(np.searchsorted(sorted_cuts, high, side="right")) - 1
    if idx >= 0 and sorted_cuts[idx] > low:
        return int(sorted_cuts[idx])
    return None


def join_words(text: str, spans: np.ndarray, keep: np.ndarray) -> str:
    """Rebuild a context from its kept words.

    Kept words that touched in the input touch in the output; otherwise they are separated
    by a line break if the gap between them held one, else by a space.
    """
    pieces: list[str] = []
    prev_end: int | None = None
    for start, end in spans[keep].tolist():
        if prev_end is not None and start > prev_end:
            pieces.append("\n" if "\n" in text[prev_end:start] else " ")
        elif prev_end is not None and start < prev_end:  # overlapping spans: never repeat text
            start = prev_end
        pieces.append(text[start:end])
        prev_end = max(end, prev_end or 0)
    return "".join(pieces)
