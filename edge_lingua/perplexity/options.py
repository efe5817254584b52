"""Validation of the perplexity methods' arguments (LLMLingua's names), in one place."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

from edge_lingua.errors import InvalidArgumentError

METHODS = ("perplexity", "self-information", "longllmlingua")
CONDITIONS = ("none", "before", "after")
REORDERS = ("original", "sort", "two_stage")
_CONTEXT_BUDGET = re.compile(r"^\s*([+\-*])\s*(\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Options:
    """Everything ``PerplexityCompressor.compress`` takes besides the text and the budget."""

    method: str
    instruction: str
    question: str
    force_tokens: tuple[str, ...]
    force_context_ids: tuple[int, ...]
    force_context_number: int | None
    use_context_level_filter: bool
    condition_in_question: str
    condition_compare: bool
    reorder_context: str
    dynamic_context_compression_ratio: float
    context_budget: Callable[[float], float]
    iterative_size: int
    concate_question: bool


def make_options(
    method: str,
    instruction: str,
    question: str,
    force_tokens: Iterable[str],
    force_context_ids: Sequence[int] | None,
    force_context_number: int | None,
    use_context_level_filter: bool,
    condition_in_question: str,
    condition_compare: bool,
    reorder_context: str,
    dynamic_context_compression_ratio: float,
    context_budget: str,
    iterative_size: int,
    concate_question: bool,
    n_contexts: int,
) -> Options:
    """Check every argument; raise :class:`InvalidArgumentError` naming the bad one."""
    _one_of("method", method, METHODS)
    _one_of("condition_in_question", condition_in_question, CONDITIONS)
    _one_of("reorder_context", reorder_context, REORDERS)
    for name, value in (("instruction", instruction), ("question", question)):
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{name} must be a string, got {type(value).__name__}")
    if method == "longllmlingua" and not question.strip():
        raise InvalidArgumentError("method 'longllmlingua' ranks contexts by a question: give one")
    if isinstance(force_tokens, str):
        raise InvalidArgumentError("force_tokens must be a list of strings, not one string")
    force = tuple(force_tokens)
    if not all(isinstance(t, str) and t for t in force):
        raise InvalidArgumentError("force_tokens must be non-empty strings")
    ids = tuple(force_context_ids or ())
    if not all(_is_int(i) and 0 <= i < n_contexts for i in ids):
        raise InvalidArgumentError(
            f"force_context_ids must be context indices in [0, {n_contexts}), got {list(ids)}"
        )
    if force_context_number is not None and not (
        _is_int(force_context_number) and force_context_number >= 1
    ):
        raise InvalidArgumentError(
            f"force_context_number must be >= 1, got {force_context_number!r}"
        )
    ratio = dynamic_context_compression_ratio
    if isinstance(ratio, bool) or not isinstance(ratio, Real) or not 0.0 <= float(ratio) <= 1.0:
        raise InvalidArgumentError(
            f"dynamic_context_compression_ratio must be in [0, 1], got {ratio!r}"
        )
    if not _is_int(iterative_size) or iterative_size < 8:
        raise InvalidArgumentError(
            f"iterative_size must be an integer >= 8, got {iterative_size!r}"
        )
    return Options(
        method=method,
        instruction=instruction,
        question=question,
        force_tokens=force,
        force_context_ids=tuple(int(i) for i in ids),
        force_context_number=force_context_number,
        use_context_level_filter=bool(use_context_level_filter),
        condition_in_question=condition_in_question,
        condition_compare=bool(condition_compare),
        reorder_context=reorder_context,
        dynamic_context_compression_ratio=float(ratio),
        context_budget=parse_context_budget(context_budget),
        iterative_size=int(iterative_size),
        concate_question=bool(concate_question),
    )


def parse_context_budget(spec: str) -> Callable[[float], float]:
    """LLMLingua's ``context_budget`` ("+100", "*1.5", "-20") as a function, without eval."""
    match = _CONTEXT_BUDGET.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise InvalidArgumentError(
            f"context_budget must look like '+100', '-50' or '*1.5', got {spec!r}"
        )
    op, value = match.group(1), float(match.group(2))
    if not math.isfinite(value):
        raise InvalidArgumentError(f"context_budget value must be finite, got {spec!r}")
    if op == "+":
        return lambda tokens: tokens + value
    if op == "-":
        return lambda tokens: tokens - value
    return lambda tokens: tokens * value


def _one_of(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidArgumentError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)
