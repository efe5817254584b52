"""Question-aware input: the question read beside every window, and encoder rows for it.

A question-aware bundle (manifest ``input_format: "question-pair"``) sees
``[CLS] question [SEP] window [SEP]`` with token types 0 up to the question's ``[SEP]`` and 1
after it; the window shrinks by the question's length so the pair fits ``max_seq_len``. A
question longer than the manifest's ``max_question_tokens`` is cut to its first tokens, with a
:class:`QuestionTruncatedWarning` and ``question_truncated`` in the result. The question is
only ever read, never compressed or returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from edge_lingua.bundle import Manifest
from edge_lingua.errors import (
    EmptyQuestionError,
    InputEncodingError,
    InvalidArgumentError,
    QuestionNotSupportedError,
    warn_caller,
)


class QuestionTruncatedWarning(UserWarning):
    """A question was longer than the bundle reads; only its first tokens were used."""


@dataclass(frozen=True)
class Question:
    """A question as the classifier reads it."""

    token_ids: np.ndarray  # [n] int64, already cut to max_question_tokens
    truncated: bool

    @property
    def window_cost(self) -> int:
        """Tokens the question takes from every window: itself and its [SEP]."""
        return int(self.token_ids.size) + 1


def encode_question(tokenizer: Tokenizer, manifest: Manifest, question: str) -> Question:
    """Check and tokenize a question for ``manifest``'s bundle (typed errors for bad input)."""
    if not isinstance(question, str):
        raise InvalidArgumentError(f"question must be a string, got {type(question).__name__}")
    if not manifest.question_aware:
        raise QuestionNotSupportedError(
            "this bundle is not question-aware (its manifest has no input_format "
            "'question-pair'); compress without question= or load a question-aware bundle"
        )
    if not question.strip():
        raise EmptyQuestionError("the question is empty or whitespace only; pass question=None "
                                 "to compress without one")
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputEncodingError(f"question is not valid Unicode: {exc.reason}") from None
    ids = np.asarray(tokenizer.encode(question, add_special_tokens=False).ids, dtype=np.int64)
    limit = manifest.max_question_tokens
    if ids.size > limit:
        warn_caller(
            f"the question has {ids.size} tokens; the classifier reads its first {limit}",
            QuestionTruncatedWarning,
        )
        return Question(ids[:limit], truncated=True)
    return Question(ids, truncated=False)


def questions_per_prompt(
    question: str | Sequence[str | None] | None, n_prompts: int
) -> list[str | None]:
    """One question (or None) per prompt: a single question applies to every prompt."""
    if question is None or isinstance(question, str):
        return [question] * n_prompts
    if not isinstance(question, Sequence) or len(question) != n_prompts:
        raise InvalidArgumentError(
            "question must be a string, None, or a list with one entry per prompt"
        )
    return list(question)


@dataclass(frozen=True)
class EncoderRows:
    """A padded batch of encoder inputs and where each window starts in its row."""

    input_ids: np.ndarray  # [batch, width]
    attention_mask: np.ndarray  # [batch, width]
    token_type_ids: np.ndarray  # [batch, width]
    starts: list[int]  # index of each window's first token in its row


def encoder_rows(
    windows: Sequence[np.ndarray],
    questions: Sequence[Question | None],
    bos: int,
    eos: int,
    pad: int,
) -> EncoderRows:
    """``[CLS] window [SEP]``, or ``[CLS] question [SEP] window [SEP]`` where a row has one."""
    heads = [np.r_[bos] if q is None else np.r_[bos, q.token_ids, eos] for q in questions]
    width = max(h.size + w.size + 1 for h, w in zip(heads, windows, strict=True))
    ids = np.full((len(windows), width), pad, dtype=np.int64)
    mask = np.zeros((len(windows), width), dtype=np.int64)
    types = np.zeros((len(windows), width), dtype=np.int64)
    for row, (head, window, question) in enumerate(zip(heads, windows, questions, strict=True)):
        end = head.size + window.size
        ids[row, : head.size] = head
        ids[row, head.size : end] = window
        ids[row, end] = eos
        mask[row, : end + 1] = 1
        if question is not None:
            types[row, head.size : end + 1] = 1
    return EncoderRows(ids, mask, types, [int(h.size) for h in heads])
