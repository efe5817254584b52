"""Quality at rates 0.5 / 0.33 / 0.2: random dropping, self-information, perplexity, classifier.

Prompts are real: GSM8K **test** problems, unseen by every model here, and the one QuALITY
story of the shared data (chunks of it are in the default classifier's training mix).

* reader-benefit retention (Gemma 3 270M reader, GSM8K test): the question is compressed and
  the reader scores the worked solution after it (``training.evaluate.reader_nll``, the
  default model's own definition); retention = (sum NLL(solution | nothing) - sum
  NLL(solution | compressed)) / (sum NLL(solution | nothing) - sum NLL(solution | full)), the
  ratio of the summed gains (per-problem ratios explode where the full question barely
  helps); the per-problem median is reported too;
* numbers kept: the whole chain-of-thought prompt (question + worked solution) is compressed;
  share of its numbers (multiset) still present in the output;
* QuALITY: the reader picks one of four options by mean log-likelihood, with no story, after
  the full story, or after a compressed one; reported with the share of picks equal to the
  full-story picks and the benefit retention of the gold options' nats.

Each method budgets in its own tokenizer's tokens; ``achieved_rate`` is measured in the
reader's (Gemma) tokens for all of them.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import machine, offline_env, read_json, write_json
from benchmarks.reader import Reader, benefit_retention
from benchmarks.texts import Story, gsm8k_prompts, quality_stories
from training.corpus import Example
from training.qa_corpus import XQUAD_LANGUAGES

RATES = (0.5, 0.33, 0.2)
METHODS = ("random", "self-information", "perplexity", "classifier")
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")

Compress = Callable[[str, float], str]


def numbers_kept(original: str, compressed: str) -> tuple[int, int]:
    """(numbers of ``original`` still in ``compressed``, numbers of ``original``), as multisets."""
    want = Counter(_NUMBER.findall(original))
    have = Counter(_NUMBER.findall(compressed))
    return sum(min(c, have[n]) for n, c in want.items()), sum(want.values())


def random_dropper(tokenizer: Any, seed: int) -> Compress:
    """Keep random words (the classifier's word units) up to ``rate`` of its tokens."""
    from edge_lingua.segmentation import join_units, segment
    from edge_lingua.selection import select

    rng = np.random.default_rng(seed)

    def random_drop(text: str, rate: float) -> str:
        seg = segment(tokenizer, text)
        costs = np.bincount(seg.token_word, minlength=seg.n_words).astype(np.float64)
        keep = select(rng.random(seg.n_words), costs, np.zeros(seg.n_words, bool),
                      rate * costs.sum())
        return join_units(text, seg.word_spans, keep)

    return random_drop


def make_methods(reader: Reader, bundle: Path, seed: int) -> dict[str, Compress]:
    """The four compressors, as ``(text, rate) -> compressed text``."""
    from edge_lingua.compressor import Compressor, load_tokenizer
    from edge_lingua.perplexity.compressor import PerplexityCompressor

    classifier = Compressor.load(bundle, providers=["cpu"])
    perplexity = PerplexityCompressor(reader.scorer)
    tokenizer = load_tokenizer(classifier.bundle.tokenizer_path)
    random_drop = random_dropper(tokenizer, seed)

    return {
        "random": random_drop,
        "self-information": lambda text, rate: perplexity.compress(
            text, method="self-information", rate=rate).compressed_prompt,
        "perplexity": lambda text, rate: perplexity.compress(
            text, method="perplexity", rate=rate).compressed_prompt,
        "classifier": lambda text, rate: classifier.compress(text, rate=rate).compressed_prompt,
    }


def _timed(compress: Compress, text: str, rate: float, seconds: list[float]) -> str:
    t0 = time.perf_counter()
    out = compress(text, rate)
    seconds.append(time.perf_counter() - t0)
    return out


def gsm8k_section(reader: Reader, methods: dict[str, Compress], problems: list[Example],
                  rates: tuple[float, ...]) -> dict[str, Any]:
    """Reader-benefit retention and numbers kept on GSM8K test problems."""
    keys = [(m, r) for m in methods for r in rates]
    nll = {k: [] for k in keys}
    kept = {k: [0, 0] for k in keys}
    sizes = {k: [] for k in keys}
    seconds: dict[tuple[str, float], list[float]] = {k: [] for k in keys}
    none, full = [], []
    for i, p in enumerate(problems):
        print(f"quality: gsm8k {i + 1}/{len(problems)}", file=sys.stderr, flush=True)
        none.append(reader.answer_nll(None, p.solution))
        full.append(reader.answer_nll(p.question, p.solution))
        q_tokens = reader.count_tokens(p.question)
        for method, rate in keys:
            short = _timed(methods[method], p.question, rate, seconds[method, rate])
            nll[method, rate].append(reader.answer_nll(short, p.solution))
            sizes[method, rate].append((reader.count_tokens(short), q_tokens))
            found, total = numbers_kept(p.cot, methods[method](p.cot, rate))
            kept[method, rate][0] += found
            kept[method, rate][1] += total
    results: dict[str, Any] = {}
    for method, rate in keys:
        values = nll[method, rate]
        per_problem = [benefit_retention(n, f, c) for n, f, c in zip(none, full, values,
                                                                       strict=True)]
        results.setdefault(method, {})[str(rate)] = {
            "retention": benefit_retention(sum(none), sum(full), sum(values)),
            "retention_median": statistics.median(per_problem),
            "numbers_kept": kept[method, rate][0] / max(kept[method, rate][1], 1),
            "achieved_rate": sum(s for s, _ in sizes[method, rate])
            / max(sum(t for _, t in sizes[method, rate]), 1),
            "compress_ms_mean": 1000 * statistics.fmean(seconds[method, rate]),
        }
    return {"problems": len(problems), "rates": list(rates),
            "mean_nll_none": statistics.fmean(none), "mean_nll_full": statistics.fmean(full),
            "methods": results}


def _answers(reader: Reader, texts: Sequence[str | None], stories: tuple[Story, ...]
             ) -> tuple[list[int], float]:
    """The reader's pick for every question (highest mean log-probability per token) and the
    summed nats of the gold options, after each story's text (``None``: no story)."""
    picks, gold_nll = [], 0.0
    for text, story in zip(texts, stories, strict=True):
        base = reader.read(text)
        for q in story.questions:
            options = reader.ask(base, q.text, q.options)
            picks.append(int(np.argmax([o.mean() for o in options])))
            gold_nll -= float(options[q.gold].sum())
    return picks, gold_nll


def quality_section(reader: Reader, methods: dict[str, Compress], stories: tuple[Story, ...],
                    rates: tuple[float, ...]) -> dict[str, Any]:
    """QuALITY with no story, the full story and each compressed story.

    Per method and rate: accuracy; ``same_as_full``, the share of questions where the reader
    picks what it picks after the full story; ``gold_nll``, the summed nats of the gold
    options, and ``gold_retention``, their reader-benefit retention (no story -> full story).
    """
    gold = [q.gold for s in stories for q in s.questions]

    def share(picks: list[int], reference: list[int]) -> float:
        return sum(p == r for p, r in zip(picks, reference, strict=True)) / len(reference)

    print("quality: QuALITY no story / full story", file=sys.stderr, flush=True)
    none_picks, none_nll = _answers(reader, [None] * len(stories), stories)
    full_picks, full_nll = _answers(reader, [s.text for s in stories], stories)
    story_tokens = sum(reader.count_tokens(s.text) for s in stories)

    def gold_retention(compressed_nll: float) -> float | None:
        """Benefit retention of the gold options' nats; ``None`` where the full story does not
        make them likelier than no story (then there is no benefit to retain)."""
        if full_nll >= none_nll:
            return None
        return benefit_retention(none_nll, full_nll, compressed_nll)

    results: dict[str, Any] = {}
    for method, compress in methods.items():
        for rate in rates:
            print(f"quality: QuALITY {method} {rate}", file=sys.stderr, flush=True)
            seconds: list[float] = []
            shorts = [_timed(compress, s.text, rate, seconds) for s in stories]
            picks, nll = _answers(reader, shorts, stories)
            results.setdefault(method, {})[str(rate)] = {
                "accuracy": share(picks, gold), "same_as_full": share(picks, full_picks),
                "gold_nll": nll, "gold_retention": gold_retention(nll),
                "achieved_rate": sum(map(reader.count_tokens, shorts)) / story_tokens,
                "compress_s_mean": statistics.fmean(seconds), "picks": picks}
    return {"stories": len(stories), "questions": len(gold), "story_tokens": story_tokens,
            "rates": list(rates), "chance": 0.25, "gold": gold,
            "no_story": {"accuracy": share(none_picks, gold),
                         "same_as_full": share(none_picks, full_picks), "picks": none_picks,
                         "gold_nll": none_nll},
            "full_story": {"accuracy": share(full_picks, gold), "picks": full_picks,
                           "gold_nll": full_nll},
            "methods": results}


SECTIONS = ("gsm8k", "quality", "question")


def question_section(reader: Reader, bundle: Path, question_bundle: Path | None, problems: int,
                     seed: int, threads: int | None, sizes: dict[str, int]) -> dict[str, Any]:
    """``benchmarks.question_aware`` against ``bundle`` (the previous default), plus GSM8K
    reader benefit of both classifiers on the same problems."""
    from benchmarks.question_aware import run_section
    from edge_lingua.compressor import Compressor
    from edge_lingua.perplexity.compressor import PerplexityCompressor

    if question_bundle is None:
        raise SystemExit("the question section needs --question-bundle")
    chosen = gsm8k_prompts("test", problems, seed=seed + 101)
    section = run_section(question_bundle, bundle, PerplexityCompressor(reader.scorer),
                          problems=chosen, seed=seed, threads=threads, **sizes)
    if not chosen:
        return section
    new = Compressor.load(question_bundle, providers=["cpu"], threads=threads)
    previous = Compressor.load(bundle, providers=["cpu"], threads=threads)
    section["gsm8k_reader"] = gsm8k_section(reader, {
        "previous default": lambda t, r: previous.compress(t, rate=r).compressed_prompt,
        "question-aware model (no question)": lambda t, r: new.compress(
            t, rate=r).compressed_prompt,
    }, chosen, RATES)
    return section


def run(out: Path, bundle: Path, *, problems: int = 30, rates: tuple[float, ...] = RATES,
        seed: int = 0, threads: int | None = None, n_ctx: int = 8192,
        sections: tuple[str, ...] = SECTIONS, reader_gguf: Path | None = None,
        question_bundle: Path | None = None, question_sizes: dict[str, int] | None = None
        ) -> dict[str, Any]:
    """Run ``sections`` and write ``out/quality.json``; a section not run keeps the results
    already in that file."""
    offline_env()
    reader = Reader.load(reader_gguf, n_ctx=n_ctx, threads=threads)
    methods = make_methods(reader, bundle, seed)
    path = out / "quality.json"
    result: dict[str, Any] = read_json(path) if path.is_file() else {}
    result.update({"section": "quality", "machine": machine(), "bundle": str(bundle),
                   "reader": reader_gguf.name if reader_gguf else "Gemma 3 270M Q4_K_M (llama.cpp)",
                   "seed": seed})
    if "gsm8k" in sections:
        chosen = gsm8k_prompts("test", problems, seed=seed + 101)
        result["gsm8k"] = gsm8k_section(reader, methods, chosen, rates)
    if "quality" in sections:
        result["quality"] = quality_section(reader, methods, quality_stories(), rates)
    if "question" in sections:
        result["question"] = question_section(reader, bundle, question_bundle, problems, seed,
                                              threads, question_sizes or {})
    write_json(path, result)
    return result


def main(argv: list[str] | None = None) -> int:
    from benchmarks.models import add_arguments, prepare

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--bundle", type=Path, help="classifier bundle (default: the run's INT8)")
    parser.add_argument("--problems", type=int, default=30, help="GSM8K test problems")
    parser.add_argument("--rates", nargs="+", type=float, default=list(RATES))
    parser.add_argument("--threads", type=int)
    parser.add_argument("--reader", type=Path, metavar="GGUF",
                        help="reader (and perplexity-method) model (default: Gemma 3 270M)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="sections to run; the others keep their results in OUT/quality.json")
    parser.add_argument("--question-bundle", type=Path,
                        help="question-aware classifier bundle for the question section")
    parser.add_argument("--question-limit", type=int, default=60,
                        help="XQuAD evaluation questions per language (question section)")
    parser.add_argument("--gemma-limit", type=int, default=20,
                        help="of those, how many Gemma longllmlingua compresses")
    parser.add_argument("--multi-questions", type=int, default=15)
    parser.add_argument("--meetings", type=int, default=30, help="QMSum val queries")
    parser.add_argument("--question-languages", nargs="+", default=list(XQUAD_LANGUAGES))
    args = parser.parse_args(argv)
    bundle = args.bundle or prepare(args.out, args.checkpoint, dev=args.dev).int8
    sizes = {"limit": args.question_limit, "slow_limit": args.gemma_limit,
             "multi_questions": args.multi_questions, "meetings": args.meetings,
             "languages": tuple(args.question_languages)}
    result = run(args.out, bundle, problems=args.problems, rates=tuple(args.rates),
                 threads=args.threads, sections=tuple(args.sections), reader_gguf=args.reader,
                 question_bundle=args.question_bundle, question_sizes=sizes)
    from benchmarks.plots import quality_plot

    if "gsm8k" in result or "quality" in result:
        quality_plot(result, args.out / "quality_vs_rate.png")
    print(json.dumps({k: result[k].get("methods", result[k]) for k in SECTIONS if k in result},
                     indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
