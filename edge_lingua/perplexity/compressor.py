"""``PerplexityCompressor``: LLMLingua, LongLLMLingua and Selective-Context on a small causal LM."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from edge_lingua.bundle import load_bundle
from edge_lingua.compressor import load_tokenizer, validate_contexts
from edge_lingua.errors import InvalidArgumentError
from edge_lingua.perplexity import ranking, token_level
from edge_lingua.perplexity.options import Options, make_options
from edge_lingua.perplexity.scorer import CausalLMScorer
from edge_lingua.perplexity.units import Context, build_context
from edge_lingua.providers import SessionConfig
from edge_lingua.result import CompressionResult
from edge_lingua.segmentation import join_units
from edge_lingua.selection import forced_words, make_budget, select, trim_to_budget

SEPARATOR = ranking.SEPARATOR
DEFAULT_N_CTX = 1024


class PerplexityCompressor:
    """Compress prompts by what a small causal LM finds surprising.

    ``PerplexityCompressor.load("gemma.gguf").compress(text, rate=0.5)``; ``method`` picks
    ``"perplexity"`` (LLMLingua), ``"longllmlingua"`` (question-aware) or
    ``"self-information"`` (Selective-Context).
    """

    def __init__(self, scorer: CausalLMScorer, target_tokenizer: Tokenizer | None = None) -> None:
        self.scorer = scorer
        self.provider = scorer.provider
        self._target_tokenizer = target_tokenizer

    @classmethod
    def load(
        cls,
        path: str | Path,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        n_ctx: int = DEFAULT_N_CTX,
        target_tokenizer: str | Path | Tokenizer | None = None,
        verify: bool = True,
    ) -> PerplexityCompressor:
        """Open a causal-LM bundle (ONNX or GGUF inside) or a bare ``.gguf`` file."""
        root = Path(path)
        if root.is_file() and root.suffix == ".gguf":
            from edge_lingua.perplexity.llama_scorer import LlamaCppScorer

            scorer: CausalLMScorer = LlamaCppScorer(root, n_ctx=n_ctx, threads=threads)
        else:
            bundle = load_bundle(root, kind="causal-lm", verify=verify)
            if bundle.manifest.model_format == "gguf":
                from edge_lingua.perplexity.llama_scorer import LlamaCppScorer

                scorer = LlamaCppScorer(bundle.model_path, n_ctx=n_ctx, threads=threads)
            else:
                from edge_lingua.perplexity.onnx_scorer import OnnxCausalLMScorer

                config = SessionConfig(providers=providers, threads=threads)
                scorer = OnnxCausalLMScorer(bundle, config)
        target = None if target_tokenizer is None else load_tokenizer(target_tokenizer)
        return cls(scorer, target)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` for the target LLM (the scorer's tokenizer unless one was given)."""
        if not text:
            return 0
        if self._target_tokenizer is not None:
            return len(self._target_tokenizer.encode(text, add_special_tokens=False).ids)
        return self.scorer.count_tokens(text)

    def rank(self, context: Sequence[str], question: str, condition: str = "after") -> list[int]:
        """Indices of ``context`` by relevance to ``question`` (LongLLMLingua), best first."""
        contexts = validate_contexts(context)
        if not isinstance(question, str) or not question.strip():
            raise InvalidArgumentError("rank() needs a non-empty question")
        if condition not in ("before", "after"):
            raise InvalidArgumentError(f"condition must be 'before' or 'after', got {condition!r}")
        return ranking.rank_contexts(self.scorer, self._units(contexts), question, condition)

    def compress(
        self,
        context: str | Sequence[str],
        *,
        method: str = "perplexity",
        rate: float | None = None,
        target_token: int | None = None,
        instruction: str = "",
        question: str = "",
        force_tokens: Iterable[str] = (),
        force_context_ids: Sequence[int] | None = None,
        force_context_number: int | None = None,
        use_context_level_filter: bool = True,
        condition_in_question: str = "none",
        condition_compare: bool = False,
        reorder_context: str = "original",
        dynamic_context_compression_ratio: float = 0.0,
        context_budget: str = "+100",
        iterative_size: int = 200,
        concate_question: bool = True,
    ) -> CompressionResult:
        """Compress ``context`` (a string or a list of contexts) to ``rate`` or ``target_token``.

        The budget covers the whole prompt (instruction + contexts + question), as in
        LLMLingua; forced words are kept on top of it. Every output context is a subsequence
        of the input's words.
        """
        started = time.perf_counter()
        contexts = validate_contexts(context)
        budget = make_budget(rate, target_token)
        opts = make_options(
            method, instruction, question, force_tokens, force_context_ids, force_context_number,
            use_context_level_filter, condition_in_question, condition_compare, reorder_context,
            dynamic_context_compression_ratio, context_budget, iterative_size, concate_question,
            len(contexts),
        )
        units = self._units(contexts)
        origin_tokens = self.count_tokens(self._prompt(opts, contexts))
        fixed = self.count_tokens(opts.instruction) + (
            self.count_tokens(opts.question) if opts.concate_question else 0
        )
        target = budget.tokens(origin_tokens)
        forced = [forced_words(u.words, opts.force_tokens, False) for u in units]
        if opts.method == "self-information":
            order = list(range(len(units)))
            keeps, scores = self._self_information(units, forced, target - fixed)
        else:
            order, keeps, scores = self._llmlingua(units, forced, target - fixed, opts)
        return self._finish(units, order, keeps, scores, forced, target, opts, started,
                            origin_tokens)

    # --- methods --------------------------------------------------------------
    def _self_information(
        self, units: list[Context], forced: list[np.ndarray], target: float
    ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
        phrases, values, costs = token_level.self_information(self.scorer, units)
        sizes = [v.size for v in values]
        all_values = np.concatenate(values)
        all_costs = np.concatenate(costs)
        free = target - sum(  # budget left after the forced words
            float(u.word_costs()[f].sum()) for u, f in zip(units, forced, strict=True)
        )
        kept = select(all_values, all_costs, np.zeros(all_values.size, dtype=bool), free)
        kept_parts = np.split(kept, np.cumsum(sizes)[:-1])
        keeps = {i: kept_parts[i][phrases[i]] | forced[i] for i in range(len(units))}
        scores = {i: values[i][phrases[i]] for i in range(len(units))}
        return keeps, scores

    def _llmlingua(
        self, units: list[Context], forced: list[np.ndarray], target: float, opts: Options
    ) -> tuple[list[int], dict[int, np.ndarray], dict[int, np.ndarray]]:
        lengths = [int(u.token_ids.size) for u in units]
        condition = opts.condition_in_question
        if opts.method == "longllmlingua" and condition == "none":
            condition = "after"
        if len(units) > 1 and opts.use_context_level_filter:
            ranked = ranking.rank_contexts(self.scorer, units, opts.question, condition)
            used = ranking.select_contexts(
                ranked, lengths, opts.context_budget(max(target, 0.0)),
                opts.force_context_ids, opts.force_context_number,
            )
        else:
            used = list(range(len(units)))
        order = ranking.reorder(used, opts.reorder_context)
        tau = max(target, 0.0) / (sum(lengths[i] for i in used) + 1)
        deltas = ranking.dynamic_ratios(used, opts.dynamic_context_compression_ratio)
        rates = {i: min(1.0, max(0.0, tau + deltas[i])) for i in used}
        prefix: list[int] = []
        reference = None
        if opts.condition_compare and opts.question.strip():
            prefix = self.scorer.encode(opts.question + SEPARATOR).ids.tolist()
            reference = {i: token_level.surprisal(self.scorer, units[i]) for i in used}
        keeps, scores = token_level.iterative(
            self.scorer, units, order, rates, dict(enumerate(forced)), opts.iterative_size,
            prefix, self.scorer.encode(SEPARATOR).ids.tolist(), reference,
        )
        return order, keeps, scores

    # --- assembly -------------------------------------------------------------
    def _finish(
        self,
        units: list[Context],
        order: list[int],
        keeps: dict[int, np.ndarray],
        scores: dict[int, np.ndarray],
        forced: list[np.ndarray],
        target: float,
        opts: Options,
        started: float,
        origin_tokens: int,
    ) -> CompressionResult:
        sizes = [u.n_words for u in units]
        keep = np.concatenate([keeps.get(i, np.zeros(n, dtype=bool)) for i, n in enumerate(sizes)])
        priority = np.concatenate([scores.get(i, np.zeros(n)) for i, n in enumerate(sizes)])
        live = np.concatenate([np.full(n, i in keeps, dtype=bool) for i, n in enumerate(sizes)])
        forced_all = np.concatenate(forced) & live
        keep |= forced_all
        costs = np.concatenate([u.word_costs() for u in units])
        allowed = target + float(costs[forced_all].sum())
        while True:
            masks = np.split(keep, np.cumsum(sizes)[:-1])
            texts = [join_units(u.text, u.word_spans, m) for u, m in zip(units, masks, strict=True)]
            prompt = self._prompt(opts, [texts[i] for i in order])
            compressed_tokens = self.count_tokens(prompt)
            excess = compressed_tokens - allowed
            if excess <= 0 or not (keep & ~forced_all).any():
                break
            keep = trim_to_budget(keep, priority, forced_all, int(np.ceil(excess)))
        return CompressionResult(
            compressed_prompt=prompt,
            compressed_contexts=texts,
            words=[u.words for u in units],
            kept_mask=[m.tolist() for m in masks],
            origin_tokens=origin_tokens,
            compressed_tokens=compressed_tokens,
            elapsed_s=time.perf_counter() - started,
            provider=self.provider,
            method=opts.method,
        )

    def _units(self, contexts: list[str]) -> list[Context]:
        return [build_context(c, self.scorer.encode(c)) for c in contexts]

    @staticmethod
    def _prompt(opts: Options, contexts: Sequence[str]) -> str:
        parts = [opts.instruction, *contexts]
        if opts.concate_question:
            parts.append(opts.question)
        return SEPARATOR.join(p for p in parts if p.strip())
