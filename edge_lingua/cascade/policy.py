"""The routing policy: when is the on-device answer good enough, how hard to compress."""

from __future__ import annotations

import math
from dataclasses import dataclass

from edge_lingua.errors import InvalidArgumentError


@dataclass(frozen=True)
class LocalAnswer:
    """What the on-device model said and how sure it was."""

    text: str
    mean_logprob: float  # mean log-probability of the generated tokens (-inf when none)
    completion_tokens: int
    prompt_tokens: int
    elapsed_s: float


@dataclass(frozen=True)
class Policy:
    """Answer locally when the local model's mean token log-probability reaches
    ``min_confidence``; otherwise escalate the prompt, compressed at ``rate`` (or to
    ``target_token`` tokens), to the remote.

    ``try_local=False`` sends every request up and uses the local model only as the
    fallback when the remote is unreachable.
    """

    min_confidence: float = -0.5
    try_local: bool = True
    rate: float | None = 0.5
    target_token: int | None = None
    force_tokens: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.min_confidence, (int, float)) or math.isnan(self.min_confidence):
            raise InvalidArgumentError(
                f"min_confidence must be a number, got {self.min_confidence!r}"
            )
        if self.min_confidence > 0:
            raise InvalidArgumentError(
                f"min_confidence is a mean log-probability, so <= 0; got {self.min_confidence}"
            )

    def accept(self, answer: LocalAnswer | None) -> bool:
        """Whether to return the local answer instead of escalating."""
        return (
            answer is not None
            and answer.completion_tokens > 0
            and bool(answer.text.strip())
            and answer.mean_logprob >= self.min_confidence
        )
