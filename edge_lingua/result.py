"""The result every compression method returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class CompressionResult:
    """A compressed prompt and how it was made.

    ``kept_mask[i][j]`` says whether word ``j`` of context ``i`` (``words[i][j]``) was kept.
    Token counts use the target-LLM tokenizer (the bundle's unless the caller gave one).
    With a question, ``question_tokens`` is how many of the question's tokens the classifier
    read and ``question_truncated`` says it was cut to the bundle's ``max_question_tokens``;
    the question itself is never part of the output or of the token counts.
    ``ratio`` is origin/compressed tokens (3.0 means 3x smaller); ``rate`` is its inverse.
    ``coverage`` is the share of input tokens the model can read (not unknown to its
    tokenizer); ``structures`` the structure mode used for each context; ``warnings`` what
    the caller should know (low coverage, a truncated question).
    """

    compressed_prompt: str
    compressed_contexts: list[str]
    words: list[list[str]]
    kept_mask: list[list[bool]]
    origin_tokens: int
    compressed_tokens: int
    elapsed_s: float
    provider: str
    method: str
    coverage: float = 1.0
    structures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    question_tokens: int = 0
    question_truncated: bool = False

    @property
    def ratio(self) -> float:
        if not self.compressed_tokens:
            return float("inf")
        return self.origin_tokens / self.compressed_tokens

    @property
    def rate(self) -> float:
        return self.compressed_tokens / self.origin_tokens if self.origin_tokens else 1.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = None if self.compressed_tokens == 0 else round(self.ratio, 4)
        data["rate"] = round(self.rate, 4)
        return data
