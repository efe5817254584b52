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
from edge_lingua.errors import (
    EmptyInputError,
    InferenceError,
    InputEncodingError,
    InvalidArgumentError,
    ManifestError,
    NoDefaultModelError,
)
from edge_lingua.providers import SessionConfig, batch_size_for, create_session
from edge_lingua.question import Question, encode_question, encoder_rows, questions_per_prompt
from edge_lingua.relevance import context_relevance
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
    logits: np.ndarray  # [n_tokens, n_labels] raw logits
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
        self._batch_size = batch_size
        manifest = bundle.manifest
        self._max_tokens = manifest.max_seq_len - 2
        self._keep_label = manifest.keep_label
        special = manifest.special_tokens
        try:
            self._bos, self._eos = special["bos"], special["eos"]
        except KeyError:
            raise ManifestError(
                "token-classifier manifest needs special_tokens bos and eos"
            ) from None
        self._pad = special.get("pad", 0)
        self._inputs = {i.name: i.type for i in session.get_inputs()}
        if "input_ids" not in self._inputs:
            raise ManifestError("the model has no 'input_ids' input")

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

    @property
    def question_aware(self) -> bool:
        """Whether the bundle reads a question beside the text (``compress(question=...)``)."""
        return self.bundle.manifest.question_aware

    # --- scoring ----------------------------------------------------------------------------
    def score(
        self,
        text: str,
        chunk_end_tokens: Iterable[str] = DEFAULT_CHUNK_END_TOKENS,
        *,
        question: str | None = None,
    ) -> ContextScores:
        """Keep probabilities of every token and word of one context."""
        validate_contexts(text)
        asked = None if question is None else self._question(question)
        segs = [segment(self._tokenizer, text)]
        return self._score_many(segs, tuple(chunk_end_tokens), [asked])[0][0]

    def _question(self, question: str) -> Question:
        return encode_question(self._tokenizer, self.bundle.manifest, question)

    def _score_many(
        self,
        segs: list[Segmented],
        chunk_end_tokens: tuple[str, ...],
        questions: Sequence[Question | None] | None = None,
    ) -> tuple[list[ContextScores], list[float]]:
        """Score many contexts, batching their windows; returns scores and seconds per context.

        ``questions`` (one per context, or None) are read beside every window of their context,
        whose windows shrink to make room."""
        asked = list(questions) if questions is not None else [None] * len(segs)
        bounds = [
            window_bounds(s, self._max_tokens - (0 if q is None else q.window_cost),
                          chunk_end_tokens)
            for s, q in zip(segs, asked, strict=True)
        ]
        jobs = [(i, lo, hi) for i, b in enumerate(bounds) for lo, hi in b]
        logits = [np.zeros((s.token_ids.size, 0), dtype=np.float32) for s in segs]
        seconds = [0.0] * len(segs)
        for first in range(0, len(jobs), self._batch_size):
            batch = jobs[first : first + self._batch_size]
            started = time.perf_counter()
            out = self._run([segs[i].token_ids[lo:hi] for i, lo, hi in batch],
                            [asked[i] for i, _, _ in batch])
            share = (time.perf_counter() - started) / len(batch)
            for (i, lo, hi), window_logits in zip(batch, out, strict=True):
                if logits[i].shape[1] == 0:
                    shape = (segs[i].token_ids.size, window_logits.shape[1])
                    logits[i] = np.empty(shape, np.float32)
                logits[i][lo:hi] = window_logits
                seconds[i] += share
        scores = [self._scores(s, lg, b) for s, lg, b in zip(segs, logits, bounds, strict=True)]
        return scores, seconds

    def _scores(
        self, seg: Segmented, logits: np.ndarray, bounds: list[tuple[int, int]]
    ) -> ContextScores:
        if logits.shape[0]:
            # softmax in float64, rounded once to float32: numpy's float32 exp is not correctly
            # rounded and differs between SIMD levels, so float32 probabilities would not be
            # reproducible on other machines or in the Java/Android port
            wide = logits.astype(np.float64)
            exp = np.exp(wide - wide.max(axis=1, keepdims=True))
            token_probs = (exp[:, self._keep_label] / exp.sum(axis=1)).astype(np.float32)
            counts = np.bincount(seg.token_word, minlength=seg.n_words)
            sums = np.bincount(seg.token_word, weights=token_probs, minlength=seg.n_words)
            word_probs = (sums / np.maximum(counts, 1)).astype(np.float32)
        else:
            token_probs = np.zeros((0,), np.float32)
            word_probs = np.zeros((0,), np.float32)
        return ContextScores(
            words=seg.words(),
            word_spans=seg.word_spans,
            word_probs=word_probs,
            token_ids=seg.token_ids,
            token_word=seg.token_word,
            token_probs=token_probs,
            logits=logits,
            windows=bounds,
        )

    def _run(
        self, windows: list[np.ndarray], questions: Sequence[Question | None] | None = None
    ) -> list[np.ndarray]:
        """One onnxruntime call over a batch of windows (each with its question or None);
        logits of the window tokens only."""
        asked = list(questions) if questions is not None else [None] * len(windows)
        rows = encoder_rows(windows, asked, self._bos, self._eos, self._pad)
        width = rows.input_ids.shape[1]
        feed = {"input_ids": rows.input_ids, "attention_mask": rows.attention_mask,
                "token_type_ids": rows.token_type_ids}
        feed = {
            name: value.astype(np.int32) if self._inputs[name] == "tensor(int32)" else value
            for name, value in feed.items()
            if name in self._inputs
        }
        try:
            (logits,) = self._session.run(["logits"], feed)
        except Exception as exc:
            raise InferenceError(
                f"onnxruntime failed on a window of {width} tokens: {exc}"
            ) from None
        return [
            logits[row, start : start + w.size].astype(np.float32)
            for row, (start, w) in enumerate(zip(rows.starts, windows, strict=True))
        ]

    # --- compression -------------------------------------------------------------------------
    def compress(
        self,
        context: str | Sequence[str],
        *,
        question: str | None = None,
        rate: float | None = None,
        target_token: int | None = None,
        force_tokens: Iterable[str] = (),
        force_reserve_digit: bool = False,
        drop_consecutive: bool = False,
        use_context_level_filter: bool = False,
        chunk_end_tokens: Iterable[str] = DEFAULT_CHUNK_END_TOKENS,
    ) -> CompressionResult:
        """Compress one prompt (a string, or a list of contexts compressed together).

        ``question`` (question-aware bundles only, see :attr:`question_aware`) is read beside
        every window and ranks the contexts for ``use_context_level_filter``; it is never part
        of the output. An empty question, or one given to a bundle that is not question-aware,
        raises a typed error; a question longer than the bundle reads is cut, with a
        ``QuestionTruncatedWarning`` and ``question_truncated`` in the result.
        """
        return self.compress_many(
            [context],
            question=question,
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
        question: str | Sequence[str | None] | None = None,
        rate: float | None = None,
        target_token: int | None = None,
        force_tokens: Iterable[str] = (),
        force_reserve_digit: bool = False,
        drop_consecutive: bool = False,
        use_context_level_filter: bool = False,
        chunk_end_tokens: Iterable[str] = DEFAULT_CHUNK_END_TOKENS,
    ) -> list[CompressionResult]:
        """Compress several prompts, batching their encoder windows together.

        ``question``: one question for every prompt, or a list with one (or None) per prompt.
        """
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise InvalidArgumentError("prompts must be a list of prompts")
        budget = make_budget(rate, target_token)
        force = tuple(force_tokens)
        started = time.perf_counter()
        per_prompt = [validate_contexts(p) for p in prompts]
        asked = [None if q is None else self._question(q)
                 for q in questions_per_prompt(question, len(prompts))]
        segs = [segment(self._tokenizer, c) for contexts in per_prompt for c in contexts]
        seg_questions = [q for contexts, q in zip(per_prompt, asked, strict=True)
                         for _ in contexts]
        prep_share = (time.perf_counter() - started) / max(len(prompts), 1)
        scores, seconds = self._score_many(segs, tuple(chunk_end_tokens), seg_questions)
        results = []
        offset = 0
        for contexts, q in zip(per_prompt, asked, strict=True):
            n = len(contexts)
            t0 = time.perf_counter()
            result = self._select(
                contexts, scores[offset : offset + n], budget, force, force_reserve_digit,
                drop_consecutive, use_context_level_filter, q is not None,
            )
            elapsed = prep_share + sum(seconds[offset : offset + n]) + time.perf_counter() - t0
            results.append(replace(
                result, elapsed_s=elapsed,
                question_tokens=0 if q is None else int(q.token_ids.size),
                question_truncated=q is not None and q.truncated,
            ))
            offset += n
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
        question_given: bool = False,
    ) -> CompressionResult:
        origin = [self._count(c) for c in contexts]
        origin_tokens = sum(origin)
        active = np.ones(len(contexts), dtype=bool)
        if use_context_level_filter and len(contexts) > 1:
            active = self._filter_contexts(scores, origin, budget, question_given)
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
        self, scores: list[ContextScores], origin: list[int], budget: Budget, question_given: bool
    ) -> np.ndarray:
        """The coarse step: keep the contexts ranked highest by
        :func:`~edge_lingua.relevance.context_relevance` (with a question: by relevance to it)."""
        context_probs = context_relevance([s.token_probs for s in scores], question_given)
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
