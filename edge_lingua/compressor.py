"""LLMLingua-2 style compression: a token classifier scores every token keep or drop."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from edge_lingua.atoms import Protection, make_protection
from edge_lingua.bundle import Bundle, load_bundle, read_manifest
from edge_lingua.encoder import WindowEncoder
from edge_lingua.errors import (
    EmptyInputError,
    InputEncodingError,
    InvalidArgumentError,
    NoDefaultModelError,
    warn_caller,
)
from edge_lingua.providers import SessionConfig, batch_size_for, create_session
from edge_lingua.question import Question, encode_question, questions_per_prompt
from edge_lingua.relevance import context_relevance
from edge_lingua.result import CompressionResult
from edge_lingua.sections import SECTIONED, SectionMerger, needs_sections, section_bounds
from edge_lingua.segmentation import (
    Segmented,
    join_units,
    segment,
    unknown_token_id,
    window_bounds,
)
from edge_lingua.selection import (
    Budget,
    drop_consecutive_repeats,
    force_phrases,
    forced_words,
    make_budget,
    select,
    trim_to_budget,
)
from edge_lingua.structure import (
    COMPRESS,
    DEFAULT_STRUCTURE,
    FIXED,
    LABEL,
    STRUCTURES,
    KeyConfig,
    Region,
    detect,
    layout,
    make_json_config,
)

if TYPE_CHECKING:
    from edge_lingua.perplexity import PerplexityCompressor

METHOD = "llmlingua2"
DEFAULT_CHUNK_END_TOKENS = (".", "\n")
CONTEXT_SEPARATOR = "\n\n"
# below this share of readable (not unknown) tokens a result warns
LOW_COVERAGE = 0.8
# units with no readable token rank above every scored unit: kept verbatim, in order, while
# the budget lasts, never dropped at random
UNREADABLE_PRIORITY = 2.0


class LowCoverageWarning(UserWarning):
    """Much of the text is unknown to the bundle's tokenizer, so its scores mean little."""


# models shipped inside the package, loadable by name: Compressor.load("small")
SHIPPED_MODELS = ("default", "small", "multilingual")


def pool_word_probs(token_word: np.ndarray, token_readable: np.ndarray,
                    token_probs: np.ndarray, n_words: int) -> tuple[np.ndarray, np.ndarray]:
    """Each word's mean keep probability over its readable tokens (float64;
    :data:`UNREADABLE_PRIORITY` for a word with none), and whether it has one."""
    readable = token_readable.astype(np.float64)
    counts = np.bincount(token_word, weights=readable, minlength=n_words)
    sums = np.bincount(token_word, weights=token_probs * readable, minlength=n_words)
    word_readable = counts > 0
    word_probs = np.where(word_readable, sums / np.maximum(counts, 1), UNREADABLE_PRIORITY)
    return word_probs, word_readable


def shipped_bundle_path(name: str = "default") -> Path:
    """Where the shipped model ``name`` (one of :data:`SHIPPED_MODELS`) lives."""
    return Path(str(resources.files("edge_lingua") / "models" / name))


def default_bundle_path() -> Path:
    """Where the default model shipped inside the package lives."""
    return shipped_bundle_path("default")


@dataclass(frozen=True)
class ContextScores:
    """Everything the classifier says about one context."""

    words: list[str]
    word_spans: np.ndarray  # [n_words, 2]
    word_probs: np.ndarray  # [n_words] mean keep probability of the unit's readable tokens
    word_readable: np.ndarray  # [n_words] bool: the unit has a token the model can read
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
        self._unk = unknown_token_id(tokenizer)

    @classmethod
    def load(
        cls,
        bundle: str | Path | None = None,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        *,
        graph_optimization: str = "all",
        spin_wait: bool = True,
        target_tokenizer: str | Path | Tokenizer | None = None,
        batch_size: int | None = None,
        verify: bool = True,
    ) -> Compressor:
        """Open a token-classifier bundle: a folder, or the name of a shipped model
        (``"default"``, the default; ``"small"``, the 3-layer student; ``"multilingual"``, the
        question-aware model with Gemma 3's vocabulary). A folder of that name
        in the working directory wins over the shipped model."""
        if bundle is None:
            bundle = "default"
        if isinstance(bundle, str) and bundle in SHIPPED_MODELS and not Path(bundle).exists():
            bundle = shipped_bundle_path(bundle)
            if not (bundle / "manifest.json").is_file():
                raise NoDefaultModelError(
                    f"no {bundle.name} model is installed with this package; pass a bundle path"
                )
        loaded = load_bundle(bundle, kind="token-classifier", verify=verify)
        config = SessionConfig(providers=providers, threads=threads,
                               graph_optimization=graph_optimization, spin_wait=spin_wait)
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
        """Keep probabilities (and raw logits) of every token and word of one context."""
        validate_contexts(text)
        asked = None if question is None else self._question(question)
        seg = segment(self._tokenizer, text, unk_id=self._unk)
        return self._score_many([seg], tuple(chunk_end_tokens), keep_logits=True,
                                question=asked)[0][0]

    def _question(self, question: str) -> Question:
        return encode_question(self._tokenizer, self.bundle.manifest, question)

    def _score_many(
        self,
        segs: list[Segmented],
        chunk_end_tokens: tuple[str, ...],
        keep_logits: bool = False,
        question: Question | None = None,
    ) -> tuple[list[ContextScores], list[float]]:
        """Score the contexts of one prompt, window by window; scores and seconds per context.

        Only per-token float32 keep probabilities outlive a window (and the logits, when
        ``keep_logits``: ``score()`` reports them). A ``question`` is read beside every window,
        which shrinks to make room for it.
        """
        room = self._encoder.max_tokens - (0 if question is None else question.window_cost)
        scores, seconds = [], []
        for seg in segs:
            started = time.perf_counter()
            bounds = window_bounds(seg, room, chunk_end_tokens)
            scored = self._encoder.score(seg.token_ids, bounds, keep_logits, question)
            scores.append(self._scores(seg, scored.token_probs, scored.logits, bounds))
            seconds.append(time.perf_counter() - started)
        return scores, seconds

    def _scores(
        self, seg: Segmented, token_probs: np.ndarray, logits: np.ndarray | None,
        bounds: list[tuple[int, int]],
    ) -> ContextScores:
        word_probs, word_readable = pool_word_probs(seg.token_word, seg.token_readable,
                                                    token_probs, seg.n_words)
        return ContextScores(
            words=seg.words(),
            word_spans=seg.word_spans,
            word_probs=word_probs.astype(np.float32),
            word_readable=word_readable,
            token_ids=seg.token_ids,
            token_word=seg.token_word,
            token_probs=token_probs,
            logits=logits,
            windows=bounds,
        )

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
        structure: str = DEFAULT_STRUCTURE,
        protect: str | Iterable[str | re.Pattern[str]] | None = None,
        compress_code_comments: bool = False,
    ) -> CompressionResult:
        """Compress one prompt (a string, or a list of contexts compressed together).

        The output is the input's own text with units removed: atoms whole or absent,
        ``rate=1.0`` the identity, structure kept (``structure``: ``auto`` detects ``json``,
        ``markdown``, ``code`` or ``chat``; ``text`` compresses everything). ``protect``:
        atom categories or regexes kept whatever the budget (default
        :data:`edge_lingua.atoms.DEFAULT_PROTECT`), like structure, on top of the budget.
        ``force_tokens`` (words or phrases) are taken first and count against the budget.
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
            structure=structure,
            protect=protect,
            compress_code_comments=compress_code_comments,
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
        structure: str = DEFAULT_STRUCTURE,
        protect: str | Iterable[str | re.Pattern[str]] | None = None,
        compress_code_comments: bool = False,
    ) -> list[CompressionResult]:
        """Compress several prompts; each gives exactly the result ``compress`` gives it.

        ``question``: one question for every prompt, or a list with one (or None) per prompt.
        """
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise InvalidArgumentError("prompts must be a list of prompts")
        plan = _make_plan(rate, target_token, force_tokens, force_reserve_digit, drop_consecutive,
                          use_context_level_filter, structure, protect, compress_code_comments)
        return self._compress_prompts(prompts, plan, tuple(chunk_end_tokens), question)

    def compress_json(
        self,
        obj: Any,
        *,
        rate: float | None = None,
        target_token: int | None = None,
        json_config: Mapping[str, Mapping[str, Any]] | None = None,
        force_tokens: Iterable[str] = (),
        protect: str | Iterable[str | re.Pattern[str]] | None = None,
    ) -> CompressionResult:
        """Compress the string values of a JSON-serializable object; the result is valid JSON.

        Keys, numbers, booleans, null and nesting are untouched. ``json_config`` maps a key
        to LLMLingua's options for its values: ``rate``, ``compress`` (False keeps them),
        ``value_type`` (only ``"str"`` values are compressed) and ``pair_remove`` (drop the
        pair when nothing of its value is left).
        """
        try:
            text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"compress_json needs a JSON-serializable object: {exc}") from None
        except RecursionError:
            raise InvalidArgumentError("compress_json: the object is nested too deeply") from None
        config = make_json_config(json_config)
        # the strings are data: an ``<llmlingua>`` in them is text, not a tag
        plan = replace(_make_plan(rate, target_token, force_tokens, False, False, False, "json",
                                  protect, False, config), tags=False)
        result = self._compress_prompts([text], plan, DEFAULT_CHUNK_END_TOKENS)[0]
        data = _remove_empty_pairs(json.loads(result.compressed_prompt), config)
        prompt = json.dumps(data, ensure_ascii=False)
        return replace(result, compressed_prompt=prompt, compressed_contexts=[prompt],
                       compressed_tokens=self._count(prompt))

    def _compress_prompts(
        self,
        prompts: Sequence[str | Sequence[str]],
        plan: _Plan,
        chunk_end_tokens: tuple[str, ...],
        question: str | Sequence[str | None] | None = None,
    ) -> list[CompressionResult]:
        per_prompt = [validate_contexts(p) for p in prompts]
        asked = [None if q is None else self._question(q)
                 for q in questions_per_prompt(question, len(prompts))]
        results = []
        for contexts, q in zip(per_prompt, asked, strict=True):  # pragma: no mutate (equal lengths)
            # one prompt at a time: its windows never share a batch with another prompt's
            started = time.perf_counter()
            modes = [_resolve_structure(c, plan.structure) for c in contexts]
            if needs_sections(contexts, modes):
                result = self._compress_sections(contexts[0], plan, chunk_end_tokens, q)
            else:
                result = self._compress_prompt(contexts, modes, plan, chunk_end_tokens, q)
            results.append(replace(
                result, elapsed_s=time.perf_counter() - started,
                question_tokens=0 if q is None else int(q.token_ids.size),
                question_truncated=q is not None and q.truncated,
            ))
        return results

    def _compress_prompt(
        self,
        contexts: list[str],
        modes: list[str],
        plan: _Plan,
        chunk_end_tokens: tuple[str, ...],
        question: Question | None = None,
    ) -> CompressionResult:
        regions = [
            layout(c, m, compress_code_comments=plan.code_comments, json_config=plan.json_config,
                   tags=plan.tags)
            for c, m in zip(contexts, modes, strict=True)  # pragma: no mutate (equal lengths)
        ]
        segs = [
            segment(self._tokenizer, c, plan.protection, self._unk, [(r.start, r.end) for r in rs])
            for c, rs in zip(contexts, regions, strict=True)  # pragma: no mutate (equal lengths)
        ]
        scores, _ = self._score_many(segs, chunk_end_tokens, question=question)
        return self._select(contexts, segs, scores, regions, modes, plan, question is not None)

    def _compress_sections(
        self,
        text: str,
        plan: _Plan,
        chunk_end_tokens: tuple[str, ...],
        question: Question | None = None,
    ) -> CompressionResult:
        """A long plain-text prompt, section by section (:mod:`edge_lingua.sections`)."""
        started = time.perf_counter()
        bounds = section_bounds(text)
        if plan.budget.target_token is not None:
            origin = sum(self._count(text[lo:hi]) for lo, hi in bounds)
            rate = min(1.0, plan.budget.target_token / max(origin, 1))
            plan = replace(plan, budget=Budget(rate=rate, target_token=None))
        merger = SectionMerger()
        for lo, hi in bounds:
            merger.add(self._compress_prompt([text[lo:hi]], [SECTIONED], plan, chunk_end_tokens,
                                             question))
        return merger.result(time.perf_counter() - started)

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
        segs: list[Segmented],
        scores: list[ContextScores],
        regions: list[list[Region]],
        structures: list[str],
        plan: _Plan,
        question_given: bool = False,
    ) -> CompressionResult:
        # without a target tokenizer the segmentation's own encoding is the count
        origin = ([self._count(c) for c in contexts] if self._target_tokenizer is not None
                  else [int(s.token_ids.size) for s in scores])
        origin_tokens = sum(origin)
        budget = plan.budget
        active = np.ones(len(contexts), dtype=bool)
        if plan.use_context_level_filter and len(contexts) > 1:
            active = self._filter_contexts(scores, origin, budget, question_given)
        sizes = [len(s.words) for s in scores]
        words = [w for s in scores for w in s.words]
        probs = np.concatenate([s.word_probs for s in scores]).astype(np.float64)
        costs = np.concatenate([self._word_costs(s) for s in scores])
        total_cost = float(costs.sum())
        # unit costs are estimates for a target tokenizer; scale them to the exact count
        scale = origin_tokens / total_cost if total_cost > 0 else 1.0
        costs = costs * scale
        live = np.repeat(active, sizes)
        role = np.concatenate([
            np.asarray([rs[r].role for r in seg.units.region.tolist()], dtype=object)
            for seg, rs in zip(segs, regions, strict=True)  # pragma: no mutate (equal lengths)
        ]) if words else np.zeros(0, dtype=object)
        own_rate = np.concatenate([
            np.asarray([np.nan if rs[r].rate is None else rs[r].rate
                        for r in seg.units.region.tolist()], dtype=np.float64)
            for seg, rs in zip(segs, regions, strict=True)  # pragma: no mutate (equal lengths)
        ]) if words else np.zeros(0)
        # protected atoms are kept like structure: whatever the budget, and outside it
        protected = np.concatenate([seg.units.protected for seg in segs]) if words else live
        fixed = ((role == FIXED) | ((role == COMPRESS) & protected)) & live
        compressible = (role == COMPRESS) & ~protected & live
        forced = forced_words(words, plan.force_tokens, plan.force_reserve_digit) & compressible
        call_rate = np.isnan(own_rate)
        rates = np.where(call_rate, budget.rate if budget.rate is not None else np.nan, own_rate)
        if budget.target_token is None and np.all(rates[compressible] >= 1.0):
            keep = fixed | compressible  # rate 1.0 is the identity (tag markup aside)
            allowed = np.inf
        else:
            keep, allowed = self._keep_within_budgets(
                probs, costs, fixed, compressible, forced, own_rate, budget)
        if plan.drop_consecutive:
            keep = drop_consecutive_repeats(words, keep, plan.force_tokens)
        labels = (role == LABEL) & live
        untouchable = ~compressible | forced
        while True:
            if labels.any():
                keep = _keep_labels_of_kept_lines(segs, keep, labels, compressible | fixed)
            texts = self._join(contexts, scores, keep, sizes)
            counts = [self._count(t) if t else 0 for t in texts]
            excess = sum(counts) - allowed - float(costs[keep & labels].sum())
            if excess <= 0 or not (keep & ~untouchable).any():
                break
            keep = trim_to_budget(keep, probs, untouchable, int(np.ceil(excess)))
        masks = np.split(keep, np.cumsum(sizes)[:-1])
        coverage = _coverage(segs)
        notes = []
        if coverage < LOW_COVERAGE:
            note = (f"only {coverage:.0%} of the text's tokens are known to this model; "
                    "units it cannot read are kept verbatim first, within the budget")
            warn_caller(note, LowCoverageWarning)
            notes.append(note)
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
            coverage=coverage,
            structures=structures,
            warnings=notes,
        )

    @staticmethod
    def _keep_within_budgets(
        probs: np.ndarray,
        costs: np.ndarray,
        fixed: np.ndarray,
        compressible: np.ndarray,
        forced: np.ndarray,
        own_rate: np.ndarray,
        budget: Budget,
    ) -> tuple[np.ndarray, float]:
        """Fixed units, then each rate group's best units within its budget.

        Units with their own rate (tags, JSON keys) form one group per rate; the rest share
        the call's budget: ``rate`` of their tokens, or ``target_token`` less everything else.
        Returns the mask and the token count the output may reach.
        """
        keep = fixed.copy()
        allowed = float(costs[fixed].sum())
        groups = [(rate, compressible & (own_rate == rate))
                  for rate in np.unique(own_rate[compressible & ~np.isnan(own_rate)])]
        groups.append((None, compressible & np.isnan(own_rate)))
        for rate, members in groups:
            index = np.flatnonzero(members)
            if index.size == 0:
                continue
            if rate is not None:
                limit = float(rate) * float(costs[index].sum())
            elif budget.target_token is not None:
                limit = budget.target_token - allowed
            else:
                assert budget.rate is not None
                limit = budget.rate * float(costs[index].sum())
            chosen = select(probs[index], costs[index], forced[index], limit)
            keep[index[chosen]] = True
            allowed += max(limit, float(costs[index[forced[index]]].sum()))
        return keep, allowed

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
        # (equal lengths)
        for context, score, size in zip(contexts, scores, sizes, strict=True):  # pragma: no mutate
            texts.append(join_units(context, score.word_spans, keep[start : start + size]))
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


@dataclass(frozen=True)
class _Plan:
    """The validated options of one compression call."""

    budget: Budget
    force_tokens: tuple[str, ...]
    force_reserve_digit: bool
    drop_consecutive: bool
    use_context_level_filter: bool
    structure: str
    protection: Protection
    code_comments: bool
    json_config: Mapping[str, KeyConfig]
    tags: bool = True


def _make_plan(
    rate: float | None,
    target_token: int | None,
    force_tokens: Iterable[str],
    force_reserve_digit: bool,
    drop_consecutive: bool,
    use_context_level_filter: bool,
    structure: str,
    protect: str | Iterable[str | re.Pattern[str]] | None,
    code_comments: bool,
    json_config: Mapping[str, KeyConfig] | None = None,
) -> _Plan:
    if structure not in STRUCTURES:
        raise InvalidArgumentError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    force = tuple(force_tokens) if not isinstance(force_tokens, str) else force_tokens
    force_phrases(force)  # validates
    return _Plan(make_budget(rate, target_token), tuple(force), bool(force_reserve_digit),
                 bool(drop_consecutive), bool(use_context_level_filter), structure,
                 make_protection(protect), bool(code_comments), json_config or {})


def _resolve_structure(text: str, structure: str) -> str:
    """The structure mode used for ``text``; ``json`` must parse."""
    if structure == "auto":
        return detect(text)
    if structure == "json":
        try:
            json.loads(text)
        except ValueError as exc:
            raise InvalidArgumentError(
                f"structure='json' but the text is not JSON: {exc}") from None
        except RecursionError:
            raise InvalidArgumentError("structure='json': the JSON is nested too deeply") from None
    return structure


def _keep_labels_of_kept_lines(
    segs: Sequence[Segmented], keep: np.ndarray, labels: np.ndarray, content: np.ndarray
) -> np.ndarray:
    """A label is kept exactly when some content unit of its line (in its context) is kept."""
    keep = keep & ~labels
    line_ids = []
    for index, seg in enumerate(segs):
        newlines = np.asarray([m.start() for m in re.finditer("\n", seg.text)], dtype=np.int64)
        line_ids.append(np.searchsorted(newlines, seg.word_spans[:, 0]) * len(segs) + index)
    line = np.concatenate(line_ids)
    kept_lines = np.unique(line[keep & content])
    return keep | (labels & np.isin(line, kept_lines))


def _coverage(segs: Sequence[Segmented]) -> float:
    """Share of tokens the model can read (not its unknown token)."""
    total = sum(int(s.token_readable.size) for s in segs)
    return sum(int(s.token_readable.sum()) for s in segs) / total if total else 1.0


def _remove_empty_pairs(data: Any, config: Mapping[str, KeyConfig]) -> Any:
    """Drop the pairs whose key asks for ``pair_remove`` and whose value came out empty."""
    if isinstance(data, dict):
        return {
            key: _remove_empty_pairs(value, config)
            for key, value in data.items()
            if not (key in config and config[key].pair_remove and value == ""
                    and isinstance(value, str))
        }
    if isinstance(data, list):
        return [_remove_empty_pairs(value, config) for value in data]
    return data
