"""Quality of the default compressor on GSM8K test prompts it never saw.

Methods, each keeping words of the same segmentation (the bundle tokenizer's words) within
the same token budget (``rate`` x the prompt's tokens):

* ``default``: ``Compressor.load()`` (the shipped bundle), ``force_reserve_digit`` off;
* ``random``: seeded random word scores;
* ``teacher``: Gemma 3 270M self-information with the label builder's digit/structure rules
  (``training.teacher``), i.e. the perplexity method the default was distilled from.

Measures, at every rate:

* ``f1``: micro F1 of the kept words against the teacher's kept words;
* ``benefit``: with Gemma 3 270M reading ``<prompt>\\n<worked solution>``, the share of the
  context's benefit that survives, ``(NLL(sol | none) - NLL(sol | compressed)) /
  (NLL(sol | none) - NLL(sol | full))``, NLLs summed over the first ``--reader`` prompts;
* ``numbers``: share of the prompt's number words (words with a digit) kept;
* latency per prompt of ``default`` (whole ``compress`` call) and ``teacher`` (scoring plus
  selection), on this machine's CPU.

Every per-prompt figure is cached in ``--records`` (JSONL), so a run can be stopped and
resumed; the table and ``--out`` JSON are computed from the cache.

    python -m training.evaluate --prompts 60 --reader 16 --threads 1
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_lingua.compressor import Compressor, load_tokenizer
from edge_lingua.perplexity.llama_scorer import LlamaCppScorer
from edge_lingua.segmentation import Segmented, join_units, segment
from edge_lingua.selection import select
from training.corpus import gsm8k, sample
from training.teacher import MINILM_TOKENIZER, open_teacher, score_text

RATES = (0.5, 0.33)
METHODS = ("default", "random", "teacher")
_DIGIT = re.compile(r"\d")


def budget_select(seg: Segmented, probs: np.ndarray, rate: float) -> np.ndarray:
    """Most probable words within ``rate`` of the prompt's tokens (no forced words)."""
    costs = np.bincount(seg.token_word, minlength=seg.n_words).astype(np.float64)
    return select(probs, costs, np.zeros(seg.n_words, dtype=bool), rate * costs.sum())


def reader_nll(scorer: LlamaCppScorer, context: str | None, solution: str) -> float:
    """Summed NLL (nats) of the solution's tokens after ``context + "\\n"`` (or BOS alone)."""
    answer = scorer.encode(solution).ids.tolist()
    prefix = scorer.encode(context + "\n").ids.tolist() if context is not None else []
    logprobs = scorer.token_logprobs(prefix + answer)
    return float(-logprobs[len(prefix):].sum())


class Records:
    """Per-prompt results cached in a JSONL file, keyed by (uid, method, rate)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[tuple[str, str, float], dict[str, Any]] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                self.rows[(row["uid"], row["method"], row["rate"])] = row

    def get(self, uid: str, method: str, rate: float) -> dict[str, Any] | None:
        return self.rows.get((uid, method, rate))

    def put(self, row: dict[str, Any]) -> None:
        self.rows[(row["uid"], row["method"], row["rate"])] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def run(args: argparse.Namespace) -> None:
    examples = sample(gsm8k("test"), args.prompts, args.seed)
    records = Records(args.records)
    compressor = Compressor.load(args.bundle, threads=args.threads) if "default" in args.methods \
        else None
    tokenizer = load_tokenizer(MINILM_TOKENIZER)  # the student's words, kept by every method
    scorer = open_teacher(threads=args.threads)
    for index, example in enumerate(examples):
        seg = segment(tokenizer, example.question)
        with_reader = index < args.reader
        teacher = records.get(example.uid, "teacher", 0.0)
        if teacher is None:
            started = time.perf_counter()
            scored = score_text(scorer, tokenizer, example.question)
            seconds = time.perf_counter() - started
            teacher = {"uid": example.uid, "method": "teacher", "rate": 0.0,
                       "targets": scored.targets.tolist(), "score_s": seconds}
            records.put(teacher)
        targets = np.asarray(teacher["targets"])
        for context, name in ((None, "none"), (example.question, "full")):
            if with_reader and records.get(example.uid, name, 0.0) is None:
                records.put({"uid": example.uid, "method": name, "rate": 0.0,
                             "nll": reader_nll(scorer, context, example.solution)})
        for method in args.methods:
            for rate in RATES:
                if records.get(example.uid, method, rate) is not None:
                    row = records.get(example.uid, method, rate)
                    if not with_reader or "nll" in row:  # type: ignore[operator]
                        continue
                started = time.perf_counter()
                if method == "default":
                    assert compressor is not None
                    result = compressor.compress(example.question, rate=rate)
                    keep = np.asarray(result.kept_mask[0], dtype=bool)
                    seconds = time.perf_counter() - started
                    if keep.size != seg.n_words:
                        raise RuntimeError("the bundle's words differ from MiniLM's")
                elif method == "random":
                    rng = np.random.default_rng(args.seed * 100_003 + index)
                    keep = budget_select(seg, rng.random(seg.n_words), rate)
                    seconds = time.perf_counter() - started
                else:
                    keep = budget_select(seg, targets, rate)
                    seconds = teacher["score_s"] + time.perf_counter() - started
                compressed = join_units(example.question, seg.word_spans, keep)
                row = {"uid": example.uid, "method": method, "rate": rate,
                       "keep": keep.astype(int).tolist(), "compressed": compressed,
                       "seconds": seconds}
                if with_reader:
                    row["nll"] = reader_nll(scorer, compressed, example.solution)
                records.put(row)
        print(f"{index + 1}/{len(examples)} prompts", file=sys.stderr, flush=True)


def summarise(args: argparse.Namespace) -> dict[str, Any]:
    examples = sample(gsm8k("test"), args.prompts, args.seed)
    records = Records(args.records)
    tokenizer = load_tokenizer(MINILM_TOKENIZER)
    table: dict[str, Any] = {}
    for method in args.methods:
        for rate in RATES:
            tp = fp = fn = 0
            numbers = kept_numbers = 0
            gain = full_gain = 0.0
            n_reader = 0
            achieved = []
            seconds = []
            for index, example in enumerate(examples):
                row = records.get(example.uid, method, rate)
                teacher = records.get(example.uid, "teacher", 0.0)
                if row is None or teacher is None:
                    continue
                seg = segment(tokenizer, example.question)
                keep = np.asarray(row["keep"], dtype=bool)
                reference = budget_select(seg, np.asarray(teacher["targets"]), rate)
                tp += int((keep & reference).sum())
                fp += int((keep & ~reference).sum())
                fn += int((~keep & reference).sum())
                digit = np.asarray([bool(_DIGIT.search(w)) for w in seg.words()])
                numbers += int(digit.sum())
                kept_numbers += int((digit & keep).sum())
                costs = np.bincount(seg.token_word, minlength=seg.n_words)
                achieved.append(costs[keep].sum() / costs.sum())
                seconds.append(row["seconds"])
                none = records.get(example.uid, "none", 0.0)
                full = records.get(example.uid, "full", 0.0)
                if index < args.reader and "nll" in row and none and full:
                    gain += none["nll"] - row["nll"]
                    full_gain += none["nll"] - full["nll"]
                    n_reader += 1
            if not seconds:
                continue
            table[f"{method}@{rate}"] = {
                "method": method, "rate": rate, "prompts": len(seconds),
                "achieved_rate": float(np.mean(achieved)),
                "f1_vs_teacher": 2 * tp / max(2 * tp + fp + fn, 1),
                "benefit_kept": gain / full_gain if full_gain else None,
                "reader_prompts": n_reader,
                "numbers_kept": kept_numbers / numbers if numbers else None,
                "latency_ms_mean": 1000 * float(np.mean(seconds)),
                "latency_ms_median": 1000 * float(np.median(seconds)),
            }
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="quality of the default compressor on GSM8K")
    parser.add_argument("--bundle", default=None, help="token-classifier bundle (default: shipped)")
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--reader", type=int, default=40, help="prompts also read by Gemma")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--records", type=Path, default=Path("artifacts/eval_records.jsonl"))
    parser.add_argument("--out", type=Path, default=Path("artifacts/eval.json"))
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.summary_only:
        run(args)
    table = summarise(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    header = f"{'method':<8} {'rate':>5} {'n':>4} {'kept':>6} {'F1':>6} {'benefit':>8} " \
             f"{'numbers':>8} {'ms/prompt':>10}"
    print(header)
    for row in table.values():
        benefit = "-" if row["benefit_kept"] is None else f"{row['benefit_kept']:.3f}"
        numbers = "-" if row["numbers_kept"] is None else f"{row['numbers_kept']:.3f}"
        print(f"{row['method']:<8} {row['rate']:>5} {row['prompts']:>4} "
              f"{row['achieved_rate']:>6.3f} {row['f1_vs_teacher']:>6.3f} {benefit:>8} "
              f"{numbers:>8} {row['latency_ms_mean']:>10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
