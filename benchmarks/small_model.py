"""Smaller bundles against the default: speed, kept-word F1, answer retention, reader benefit.

    python -m benchmarks.small_model --candidate small3=BUNDLE [--candidate ...] \\
        --threads 2 --out docs/results/small_model.json

Evaluation data only (../shared/data/README.md): the 2,048- and 8,192-token speed prompts
(QuALITY story + GSM8K test questions), 40 GSM8K test problems, QMSum ``val/`` transcripts and
the XQuAD evaluation articles.

* speed: p50 of whole ``compress`` calls (rate 0.33) on the two speed prompts, in rounds that
  take every bundle in turn (so load on a shared machine hits each alike); tokens/s in cl100k;
* agreement: kept-word F1 against the default's choice of words (``kept_mask``) at rates 0.5,
  0.33 and 0.2, per text and averaged;
* answer retention: share of XQuAD evaluation questions (six languages) whose gold answer
  survives whole, question-agnostic (``benchmarks.question_aware.answer_retention``);
* reader benefit: Gemma 3 270M reader on GSM8K test problems (``benchmarks.quality``'s
  ``gsm8k_section``), only with ``--reader-problems`` > 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import cl100k, machine, write_json
from benchmarks.texts import gsm8k_prompts, speed_prompt

RATES = (0.5, 0.33, 0.2)
SPEED_RATE = 0.33
SECTIONS = ("speed", "agreement", "retention", "reader")


def eval_texts(encoding: Any) -> dict[str, str]:
    """Held-out texts of several kinds, one prompt each."""
    from training.qa_corpus import XQUAD_LANGUAGES, qmsum_meetings, xquad_articles

    texts = {"speed-2048": speed_prompt(2048, encoding),
             "speed-8192": speed_prompt(8192, encoding),
             "gsm8k-test-40": "\n\n".join(e.cot for e in gsm8k_prompts("test", 40, seed=15))}
    for meeting in qmsum_meetings("val")[:3]:
        texts[f"qmsum-val-{meeting.uid}"] = "\n".join(meeting.turns[:120])
    for language in XQUAD_LANGUAGES:
        paragraphs = [p[0].paragraph for p in xquad_articles(language, "eval") if p]
        texts[f"xquad-eval-{language}"] = "\n\n".join(paragraphs[:12])
    return texts


def _f1(kept: np.ndarray, reference: np.ndarray) -> float:
    both = float(np.sum(kept & reference))
    total = float(kept.sum()) + float(reference.sum())
    return 1.0 if total == 0 else 2 * both / total


def agreement(reference: Any, compressors: dict[str, Any], texts: dict[str, str]
              ) -> dict[str, Any]:
    """Kept-word F1 of each compressor against ``reference`` per text and rate."""
    out: dict[str, Any] = {}
    for rate in RATES:
        ref = {name: np.asarray(reference.compress(text, rate=rate, structure="text").kept_mask[0])
               for name, text in texts.items()}
        for label, compressor in compressors.items():
            per_text = {name: _f1(np.asarray(compressor.compress(
                text, rate=rate, structure="text").kept_mask[0]), ref[name])
                for name, text in texts.items()}
            out.setdefault(label, {})[str(rate)] = {"mean_f1": statistics.fmean(per_text.values()),
                                                   "per_text": per_text}
    return out


def speed(compressors: dict[str, Any], prompts: dict[int, str], rounds: int) -> dict[str, Any]:
    """p50 ms and cl100k tokens/s of whole compress calls, rounds interleaving the bundles."""
    times: dict[tuple[str, int], list[float]] = {(n, k): [] for n in compressors for k in prompts}
    for compressor in compressors.values():
        for text in prompts.values():
            compressor.compress(text, rate=SPEED_RATE)  # warm-up
    for _ in range(rounds):
        for name, compressor in compressors.items():
            for tokens, text in prompts.items():
                t0 = time.perf_counter()
                compressor.compress(text, rate=SPEED_RATE)
                times[name, tokens].append(time.perf_counter() - t0)
    out: dict[str, Any] = {}
    for (name, tokens), values in times.items():
        p50 = statistics.median(values)
        out.setdefault(name, {})[str(tokens)] = {"p50_ms": 1000 * p50,
                                                 "tokens_per_s": tokens / p50}
    return out


def retention_means(retention: dict[str, Any]) -> dict[str, Any]:
    """Per bundle and rate, the share of answers retained averaged over the languages."""
    names = {name for per in retention.values() for name in per}
    return {name: {rate: statistics.fmean(per[name][rate]["retained"]
                                          for per in retention.values())
                   for rate in next(iter(retention.values()))[name]}
            for name in sorted(names)}


def main(argv: list[str] | None = None) -> int:
    from edge_lingua.compressor import Compressor, default_bundle_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--default", type=Path, default=default_bundle_path())
    parser.add_argument("--candidate", action="append", required=True, help="NAME=bundle folder")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--retention-limit", type=int, default=None,
                        help="XQuAD questions per language (default: all)")
    parser.add_argument("--reader-problems", type=int, default=0)
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--prompts", type=Path,
                        help="speed prompts as JSON {tokens: text} (default: built from the data)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    load = lambda path: Compressor.load(path, providers=["cpu"], threads=args.threads)  # noqa: E731
    compressors = {"default": load(args.default)}
    for spec in args.candidate:
        name, _, path = spec.partition("=")
        compressors[name] = load(Path(path))
    result: dict[str, Any] = {"section": "small_model", "machine": machine(),
                              "threads": args.threads, "rounds": args.rounds,
                              "bundles": {"default": str(args.default), **{
                                  s.partition("=")[0]: s.partition("=")[2]
                                  for s in args.candidate}}}
    if "speed" in args.sections:
        print("small_model: speed", file=sys.stderr, flush=True)
        prompts = ({int(k): v for k, v in json.loads(args.prompts.read_text("utf-8")).items()}
                   if args.prompts else {n: speed_prompt(n, cl100k()) for n in (2048, 8192)})
        result["speed"] = speed(compressors, prompts, args.rounds)
    if "agreement" in args.sections:
        print("small_model: agreement", file=sys.stderr, flush=True)
        others = {k: v for k, v in compressors.items() if k != "default"}
        result["agreement_with_default"] = agreement(compressors["default"], others,
                                                     eval_texts(cl100k()))
    if "retention" in args.sections:
        from benchmarks.question_aware import answer_retention
        from training.qa_corpus import XQUAD_LANGUAGES

        methods = {name: (lambda c, q, r, comp=comp: comp.compress(c, rate=r).compressed_prompt)
                   for name, comp in compressors.items()}
        result["answer_retention"] = answer_retention(methods, XQUAD_LANGUAGES, RATES,
                                                      args.retention_limit, slow_limit=0,
                                                      slow=())
        result["answer_retention_mean"] = retention_means(result["answer_retention"])
    if "reader" in args.sections and args.reader_problems:
        from benchmarks.quality import gsm8k_section
        from benchmarks.reader import Reader

        reader = Reader.load(threads=args.threads)
        result["reader"] = gsm8k_section(
            reader, {name: (lambda t, r, comp=comp: comp.compress(t, rate=r).compressed_prompt)
                     for name, comp in compressors.items()},
            gsm8k_prompts("test", args.reader_problems, seed=101), RATES)
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
