"""LLMLingua-2 style compression: a token classifier scores every token keep or drop."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from edge_lingua.bundle import Bundle, load_bundle, read_manifest
from edge_lingua.encoder import WindowEncoder
from edge_lingua.errors import (
    EmptyInputError,
    InputEncodingError,
    InvalidArgumentError,
    NoDefaultModelError,
)
from edge_lingua.providers import SessionConfig, batch_size_for, create_session
from edge_lingua.result import CompressionResult
from edge_lingua.segmentation import Segmented, join_words, segment, window_bounds
from edge_lingua.selection import (
    Budget,
    drop_consecutive_repeats,
    forced_words,
    make_budget,
    select,
    trim_to_budget,
)

if TYPE_CHECKING:
    from edge_lingua.perplexity import PerplexityCompressor

METHOD = "llmlingua2"
DEFAULT_CHUNK_END_TOKENS = (".", "\n")
CONTEXT_SEPARATOR = "\n\n"


def default_bundle_path() -> Path:
    """Where the model shipped inside the package lives."""
    return Path(str(resources.files("edge_lingua") / "models" / "default"))


@dataclass(frozen=True)
class ContextScores:
    """Everything the classifier says about one context."""

    words: list[str]
    word_spans: np.ndarray  # [n_words, 2]
    word_probs: np.ndarray  # [n_words] mean keep probability of the word's tokens
    token_ids: np.ndarray  # [n_tokens]
    token_word: np.ndarray  # [n_tokens]
    token_probs: np.ndarray  # [n_tokens] keep probability
    logits: np.ndarray | None  # [n_tokens, n_labels] raw logits (``score()`` only, else None)
    windows: list[tuple[int, int]]  # token ranges the encoder saw together


def load_tokenizer(source: str | Path | Tokenizer) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` from a tokenizer.json path (or one already loaded)."""
    if isinstance(source, Tokenizer):
        return source
    path = Path(source)
    if not path.is_file():
        raise InvalidArgumentError(f"tokenizer file {path} does not exist")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise InvalidArgumentError(f"{path} is not a valid tokenizer.json: {exc}") from None
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def validate_contexts(context: str | Sequence[str]) -> list[str]:
    """The contexts of a prompt as a list; typed errors for empty, non-text or broken input."""
    if isinstance(context, str):
        contexts = [context]
    elif isinstance(context, Sequence) and all(isinstance(c, str) for c in context):
        contexts = list(context)
    else:
        raise InvalidArgumentError("context must be a string or a list of strings")
    if not contexts or all(not c.strip() for c in contexts):
        raise EmptyInputError("nothing to compress: the text is empty or whitespace only")
    for c in contexts:
        try:
            c.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputEncodingError(f"text is not valid Unicode: {exc.reason}") from None
    return contexts


class Compressor:
    """Compress prompts with a token-classification bundle on onnxruntime.

    ``Compressor.load(bundle).compress(text, rate=0.33)``; ``load()`` with no bundle uses the
    model shipped inside the package.
    """

    def __init__(
        self,
        bundle: Bundle,
        session: ort.InferenceSession,
        provider: str,
        tokenizer: Tokenizer,
        target_tokenizer: Tokenizer | None,
        batch_size: int,
    ) -> None:
        self.bundle = bundle
        self.provider = provider
        self._session = session
        self._tokenizer = tokenizer
        self._target_tokenizer = target_tokenizer
        self._encoder = WindowEncoder(session, bundle.manifest, batch_size)

    @classmethod
    def load(
        cls,
        bundle: str | Path | None = None,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        *,
        graph_optimization: str = "all",
        target_tokenizer: str | Path | Tokenizer | None = None,
        batch_size: int | None = None,
        verify: bool = True,
    ) -> Compressor:
        """Open a token-classifier bundle (default: the shipped model)."""
        if bundle is None:
            bundle = default_bundle_path()
            if not (Path(bundle) / "manifest.json").is_file():
                raise NoDefaultModelError(
                    "no default model is installed with this package; pass a bundle path"
                )
        loaded = load_bundle(bundle, kind="token-classifier", verify=verify)
        config = SessionConfig(providers=providers, threads=threads,
                               graph_optimization=graph_optimization)
        session, provider = create_session(loaded.model_path, config)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size!r}")
        return cls(
            bundle=loaded,
            session=session,
            provider=provider,
            tokenizer=load_tokenizer(loaded.tokenizer_path),
            target_tokenizer=None if target_tokenizer is None else load_tokenizer(target_tokenizer),
            batch_size=batch_size or batch_size_for(provider),
        )

    # --- scoring ----------------------------------------------------------------------------
    def score(
        self, text: str, chunk_end_tokens: Iterable[str] = DEFAULT_CHUNK_END_TOKENS
    ) -> ContextScores:
        """Keep probabilities (and raw logits) of every token and word of one context."""
        validate_contexts(text)
        seg = segment(self._tokenizer, text)
        return self._score_many([seg], tuple(chunk_end_tokens), keep_logits=True)[0][0]

    def _score_many(
        self, segs: list[Segmented], chunk_end_tokens: tuple[str, ...], keep_logits: bool = False
    ) -> tuple[list[ContextScores], list[float]]:
        """Score the contexts of one prompt; returns scores and seconds per context."""
        scores, seconds = [], []
        for seg in segs:
            started = time.perf_counter()
            bounds = window_bounds(seg, self._encoder.max_tokens, chunk_end_tokens)
            scored = self._encoder.score(seg.token_ids, bounds, keep_logits)
            counts = np.bincount(seg.token_word, minlength=seg.n_words)
            sums = np.bincount(seg.token_word, weights=scored.token_probs, minlength=seg.n_words)
            scores.append(ContextScores(
                words=seg.words(),
                word_spans=seg.word_spans,
                word_probs=(sums / np.maximum(counts, 1)).astype(np.float32),
                token_ids=seg.token_ids,
                token_word=seg.token_word,
                token_probs=scored.token_probs,
                logits=scored.logits,
                windows=bounds,
            ))
            seconds.append(time.perf_counter() - started)
        return scores, seconds

    # --- compression -------------------------------------------------------------------------
    def compress(
        self,
        context: str | Sequence[str],
        *,
        rate: float | None = None,
        target_token: int | None = None,
        force_tokens: Iterable[str] = (),
        force_reserve_digit: bool = False,
        drop_consecutive: bool = False,
        use_context_level_filter: bool = False,
        chunk_end_tokens: Iterable[str] = DEFAULT_CHUNK_END_TOKENS,
    ) -> CompressionResult:
        """Compress one prompt (a string, or a list of contexts compressed together)."""
        return self.compress_many(
            [context],
            rate=rate,
            target_token=target_token,
            force_tokens=force_tokens,
            force_reserve_digit=force_reserve_digit,
            drop_consecutive=drop_consecutive,
            use_context_level_filter=use_context_level_filter,
            chunk_end_tokens=chunk_end_tokens,
        )[0]

    def compress_many(
        self,
        prompts: Sequence[str | Sequence[str]],
        *,
        rate: float | None = None,
        target_token: int | None = None,
        force_tokens: Iterable[str] = (),
        force_reserve_digit: bool = False,
        drop_consecutive: bool = False,
        use_context_level_filter: bool = False,
        chunk_end_tokens: Iterable[str] = DEFAULT_CHUNK_END_TOKENS,
    ) -> list[CompressionResult]:
        """Compress several prompts; each gives the result ``compress`` gives it alone."""
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise InvalidArgumentError("prompts must be a list of prompts")
        budget = make_budget(rate, target_token)
        force = tuple(force_tokens)
        chunk_ends = tuple(chunk_end_tokens)
        results = []
        for prompt in prompts:  # one prompt at a time: its windows never share a batch
            started = time.perf_counter()
            contexts = validate_contexts(prompt)
            segs = [segment(self._tokenizer, c) for c in contexts]
            scores, _ = self._score_many(segs, chunk_ends)
            del segs
            result = self._select(
                contexts, scores, budget, force, force_reserve_digit,
                drop_consecutive, use_context_level_filter,
            )
            results.append(replace(result, elapsed_s=time.perf_counter() - started))
        return results

    def _count(self, text: str) -> int:
        tokenizer = self._target_tokenizer or self._tokenizer
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    def _word_costs(self, score: ContextScores) -> np.ndarray:
        if self._target_tokenizer is None:  # the bundle's own pieces are the cost
            return np.bincount(score.token_word, minlength=len(score.words)).astype(np.float64)
        encoded = self._target_tokenizer.encode_batch(score.words, add_special_tokens=False)
        return np.asarray([len(e.ids) for e in encoded], dtype=np.float64)

    def _select(
        self,
        contexts: list[str],
        scores: list[ContextScores],
        budget: Budget,
        force_tokens: tuple[str, ...],
        force_reserve_digit: bool,
        drop_consecutive: bool,
        use_context_level_filter: bool,
    ) -> CompressionResult:
        origin = [self._count(c) for c in contexts]
        origin_tokens = sum(origin)
        active = np.ones(len(contexts), dtype=bool)
        if use_context_level_filter and len(contexts) > 1:
            active = self._filter_contexts(scores, origin, budget)
        # one ranking over the words of every active context
        sizes = [len(s.words) for s in scores]
        words = [w for s in scores for w in s.words]
        probs = np.concatenate([s.word_probs for s in scores]) if words else np.zeros(0)
        costs = np.concatenate([self._word_costs(s) for s in scores]) if words else np.zeros(0)
        owner = np.repeat(np.arange(len(contexts)), sizes)
        live = active[owner]
        forced = forced_words(words, force_tokens, force_reserve_digit) & live
        limit = budget.tokens(sum(o for o, a in zip(origin, active, strict=True) if a))
        keep = select(np.where(live, probs, -1.0), np.where(live, costs, np.inf), forced, limit)
        keep &= live
        if drop_consecutive:
            keep = drop_consecutive_repeats(words, keep, force_tokens)
        allowed = limit + float(costs[forced].sum())
        while True:
            texts = self._join(contexts, scores, keep, sizes)
            counts = [self._count(t) if t else 0 for t in texts]
            excess = sum(counts) - allowed
            if excess <= 0 or not (keep & ~forced).any():
                break
            keep = trim_to_budget(keep, probs, forced, int(excess))
        masks = np.split(keep, np.cumsum(sizes)[:-1])
        return CompressionResult(
            compressed_prompt=CONTEXT_SEPARATOR.join(t for t in texts if t),
            compressed_contexts=texts,
            words=[s.words for s in scores],
            kept_mask=[m.tolist() for m in masks],
            origin_tokens=origin_tokens,
            compressed_tokens=sum(counts),
            elapsed_s=0.0,
            provider=self.provider,
            method=METHOD,
        )

    def _filter_contexts(
        self, scores: list[ContextScores], origin: list[int], budget: Budget
    ) -> np.ndarray:
        """LLMLingua-2's coarse step: keep the contexts with the highest mean keep probability."""
        context_probs = np.asarray(
            [float(s.token_probs.mean()) if s.token_probs.size else 0.0 for s in scores]
        )
        if budget.target_token is not None:
            level = min(2 * budget.target_token / max(sum(origin), 1), 1.0)
        else:
            assert budget.rate is not None
            level = (budget.rate + 1.0) / 2
        threshold = np.percentile(context_probs, int(100 * (1 - level)))
        return context_probs >= threshold

    @staticmethod
    def _join(
        contexts: list[str], scores: list[ContextScores], keep: np.ndarray, sizes: list[int]
    ) -> list[str]:
        texts = []
        start = 0
        for context, score, size in zip(contexts, scores, sizes, strict=True):
            texts.append(join_words(context, score.word_spans, keep[start : start + size]))
            start += size
        return texts


def load_compressor(
    bundle: str | Path | None = None, **options: Any
) -> Compressor | PerplexityCompressor:
    """Open whatever compressor ``bundle`` holds.

    A token-classifier bundle (or none: the shipped model) gives a :class:`Compressor`; a
    causal-LM bundle or a bare ``.gguf`` file gives a
    :class:`~edge_lingua.perplexity.PerplexityCompressor`. Both answer
    ``compress(context, rate=..., target_token=...)`` with a :class:`CompressionResult`.
    """
    if bundle is not None:
        path = Path(bundle)
        if path.suffix == ".gguf" or (
            (path / "manifest.json").is_file() and read_manifest(path).kind == "causal-lm"
        ):
            from edge_lingua.perplexity import PerplexityCompressor

            return PerplexityCompressor.load(path, **options)
    options.pop("n_ctx", None)
    return Compressor.load(bundle, **options)
