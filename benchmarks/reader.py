"""The reader: Gemma 3 270M (llama.cpp) judging what a compressed prompt still tells it.

* ``answer_nll(context, answer)``: nats of ``answer`` given ``context``, computed by
  ``training.evaluate.reader_nll`` (the default model's own evaluation: ``<context>\n<answer>``,
  BOS alone for no context), so the reader-benefit retention here is the one defined there;
* ``read(story)`` then ``ask(base, question, options)``: the log-probability of every option's
  tokens after the story and the question (QuALITY multiple choice by likelihood); the story
  is fed once and every question rewinds the cache to its end.

The scorer is ``edge_lingua.perplexity.LlamaCppScorer``, the same one the perplexity
compressors use, so one loaded model serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_lingua.errors import InvalidArgumentError
from edge_lingua.perplexity.llama_scorer import LlamaCppScorer


def benefit_retention(none: float, full: float, compressed: float) -> float:
    """(NLL(a | nothing) - NLL(a | compressed)) / (NLL(a | nothing) - NLL(a | full))."""
    gain = none - full
    return (none - compressed) / gain if gain else float("nan")


@dataclass
class Reader:
    """A causal LM that reads prompts and scores answers."""

    scorer: LlamaCppScorer

    @classmethod
    def load(cls, gguf: Path | None = None, n_ctx: int = 8192, threads: int | None = None
             ) -> Reader:
        from training.teacher import gemma_path

        return cls(LlamaCppScorer(gguf or gemma_path(), n_ctx=n_ctx, threads=threads, window=256))

    def _ids(self, text: str) -> list[int]:
        return self.scorer.encode(text).ids.tolist() if text else []

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def answer_nll(self, context: str | None, answer: str) -> float:
        """Total nats of ``answer`` after ``context`` (``None``: after BOS alone)."""
        from training.evaluate import reader_nll

        return reader_nll(self.scorer, context, answer)

    def read(self, story: str | None) -> int:
        """Feed BOS and ``story`` (nothing for ``None``); returns the cache length for ``ask``."""
        self.scorer.reset()
        if story:
            self.scorer.extend(self._ids(story.strip() + "\n\n"), score=False)
        return self.scorer.cached

    def ask(self, base: int, question: str, options: tuple[str, ...]) -> list[np.ndarray]:
        """Log-probabilities of each option's tokens after what ``read`` fed and ``question``."""
        prefix = self._ids(f"Question: {question.strip()}\nAnswer:")
        encoded = [self._ids(" " + option.strip()) for option in options]
        need = base + len(prefix) + max(len(e) for e in encoded) + 1
        if need > self.scorer.max_context:
            raise InvalidArgumentError(f"story, question and option need {need} tokens; the "
                                       f"reader's context is {self.scorer.max_context}")
        self.scorer.rewind(base)
        self.scorer.extend(prefix, score=False)  # only the options' rows are needed
        after_question = self.scorer.cached
        scores = []
        for ids in encoded:
            self.scorer.rewind(after_question)
            scores.append(self.scorer.extend(ids).astype(np.float64))
        return scores
