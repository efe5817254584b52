"""Quality at rates 0.5 / 0.33 / 0.2: random dropping, self-information, perplexity, classifier.

Prompts are real and unseen by the classifier: GSM8K **test** problems and the QuALITY story.

* reader-benefit retention (Gemma 3 270M reader, GSM8K test): the question is compressed and
  the reader scores the worked solution after it (``training.evaluate.reader_nll``, the
  default model's own definition); retention = (sum NLL(solution | nothing) - sum
  NLL(solution | compressed)) / (sum NLL(solution | nothing) - sum NLL(solution | full)), the
  ratio of the summed gains (per-problem ratios explode where the full question barely
  helps); the per-problem median is reported too;
* numbers kept: the whole chain-of-thought prompt (question + worked solution) is compressed;
  share of its numbers (multiset) still present in the output;
* QuALITY: the reader picks one of four options by mean log-likelihood, after the full story
  or the compressed one.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import machine, offline_env, read_json, write_json
from benchmarks.reader import Reader, benefit_retention
from benchmarks.texts import Problem, Story, gsm8k_prompts, quality_stories

RATES = (0.5, 0.33, 0.2)
METHODS = ("random", "self-information", "perplexity", "classifier")
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")

Compress = Callable[[str, float], str]


def numbers_kept(original: str, compressed: str) -> tuple[int, int]:
    """(numbers of ``original`` still in ``compressed``, numbers of ``original``), as multisets."""
    want = Counter(_NUMBER.findall(original))
    have = Counter(_NUMBER.findall(compressed))
    return sum(min(c, have[n]) for n, c in want.items()), sum(want.values())


def make_methods(reader: Reader, bundle: Path, seed: int) -> dict[str, Compress]:
    """The four compressors, as ``(text, rate) -> compressed text``."""
    from edge_lingua.compressor import Compressor, load_tokenizer
    from edge_lingua.perplexity.compressor import PerplexityCompressor
    from edge_lingua.segmentation import join_words, segment
    from edge_lingua.selection import select

    classifier = Compressor.load(bundle, providers=["cpu"])
    perplexity = PerplexityCompressor(reader.scorer)
    tokenizer = load_tokenizer(classifier.bundle.tokenizer_path)
    rng = np.random.default_rng(seed)

    def random_drop(text: str, rate: float) -> str:
        """Keep random words (the classifier's word units) up to ``rate`` of its tokens."""
        seg = segment(tokenizer, text)
        costs = np.bincount(seg.token_word, minlength=seg.n_words).astype(np.float64)
        keep = select(rng.random(seg.n_words), costs, np.zeros(seg.n_words, bool),
                      rate * costs.sum())
        return join_words(text, seg.word_spans, keep)

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


def gsm8k_section(reader: Reader, methods: dict[str, Compress], problems: list[Problem],
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
    return {"problems": len(problems), "mean_nll_none": statistics.fmean(none),
            "mean_nll_full": statistics.fmean(full), "methods": results}


def quality_section(reader: Reader, methods: dict[str, Compress], stories: tuple[Story, ...],
                    rates: tuple[float, ...]) -> dict[str, Any]:
    """QuALITY accuracy of the reader with the full and the compressed story."""
    def accuracy(story_text: str, story: Story) -> int:
        return sum(reader.choose(story_text, q.text, q.options)[0] == q.gold
                   for q in story.questions)

    n_questions = sum(len(s.questions) for s in stories)
    full = sum(accuracy(s.text, s) for s in stories)
    results: dict[str, Any] = {}
    for method, compress in methods.items():
        for rate in rates:
            print(f"quality: QuALITY {method} {rate}", file=sys.stderr, flush=True)
            right, kept_tokens, all_tokens = 0, 0, 0
            for story in stories:
                short = compress(story.text, rate)
                right += accuracy(short, story)
                kept_tokens += reader.count_tokens(short)
                all_tokens += reader.count_tokens(story.text)
            results.setdefault(method, {})[str(rate)] = {
                "accuracy": right / n_questions, "achieved_rate": kept_tokens / all_tokens}
    return {"stories": len(stories), "questions": n_questions,
            "full_accuracy": full / n_questions, "chance": 0.25, "methods": results}


def run(out: Path, bundle: Path, *, problems: int = 30, rates: tuple[float, ...] = RATES,
        seed: int = 0, threads: int | None = None, n_ctx: int = 8192,
        with_quality: bool = True) -> dict[str, Any]:
    """Run both quality sections; writes ``out/quality.json``."""
    offline_env()
    reader = Reader.load(n_ctx=n_ctx, threads=threads)
    methods = make_methods(reader, bundle, seed)
    result: dict[str, Any] = {
        "section": "quality", "machine": machine(), "bundle": str(bundle), "rates": list(rates),
        "reader": "Gemma 3 270M Q4_K_M (llama.cpp)", "seed": seed,
        "gsm8k": gsm8k_section(reader, methods, gsm8k_prompts("test", problems, seed=seed + 101),
                               rates),
    }
    if with_quality:
        result["quality"] = quality_section(reader, methods, quality_stories(), rates)
    write_json(out / "quality.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    from benchmarks.models import add_arguments, prepare

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--bundle", type=Path, help="classifier bundle (default: the run's INT8)")
    parser.add_argument("--problems", type=int, default=30, help="GSM8K test problems")
    parser.add_argument("--rates", nargs="+", type=float, default=list(RATES))
    parser.add_argument("--threads", type=int)
    parser.add_argument("--no-quality", action="store_true", help="skip the QuALITY questions")
    parser.add_argument("--quality-rates", nargs="+", type=float, metavar="RATE",
                        help="run only the QuALITY questions, at these rates, and add them to "
                             "the GSM8K results already in OUT/quality.json")
    args = parser.parse_args(argv)
    bundle = args.bundle or prepare(args.out, args.checkpoint, dev=args.dev).int8
    if args.quality_rates:
        offline_env()
        reader = Reader.load(n_ctx=8192, threads=args.threads)
        result = read_json(args.out / "quality.json")
        result["quality"] = quality_section(reader, make_methods(reader, bundle, seed=0),
                                            quality_stories(), tuple(args.quality_rates))
        write_json(args.out / "quality.json", result)
        print(json.dumps(result["quality"], indent=1))
        return 0
    result = run(args.out, bundle, problems=args.problems, rates=tuple(args.rates),
                 threads=args.threads, with_quality=not args.no_quality)
    from benchmarks.plots import quality_plot

    quality_plot(result, args.out / "quality_vs_rate.png")
    print(json.dumps(result["gsm8k"]["methods"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
