"""Speed and memory: llmlingua (PyTorch) vs edge-lingua fp32 ONNX vs edge-lingua INT8.

Every engine runs in a fresh subprocess of its own, one after the other, on the same prompts
(real English text cut to exactly 128 / 512 / 2,048 / 8,192 cl100k_base tokens) at the same
rate, with the same number of threads:

* cold start: from before the engine's first import to a loaded compressor (import + load);
* latency p50 / p95 of ``compress`` at each length (after one warm-up call), tokens/s at p50;
* peak RSS (``VmHWM``) of the subprocess, after loading and after each length.

llmlingua is ``PromptCompressor(model_name=<fp32 checkpoint>, use_llmlingua2=True,
device_map="cpu")`` from PyPI, counting tokens with tiktoken's cl100k_base served from a local
cache (``benchmarks.common.seed_tiktoken_cache``). The worker imports nothing heavy before its
clock starts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, BenchError, offline_env, read_json, write_json
from edge_lingua.bench import peak_rss_mb, time_calls

ENGINES = ("llmlingua", "edge-fp32", "edge-int8")
LENGTHS = (128, 512, 2048, 8192)
RATE = 0.33
LLMLINGUA_NAMES = {"WordPiece": "bert-base-multilingual-cased", "Unigram": "xlm-roberta-large"}


def llmlingua_alias(checkpoint: Path, work: Path) -> Path:
    """A path to ``checkpoint`` whose name llmlingua 0.2.2 understands.

    llmlingua 0.2.2 decides where words begin by the *name* of the model
    (``utils.is_begin_of_new_word``): names containing "bert-base-multilingual-cased" get
    WordPiece rules (``##`` continues a word), "xlm-roberta-large" SentencePiece rules; any
    other name raises NotImplementedError. A symbolic link named after the matching family
    lets llmlingua run the checkpoint unchanged, without touching llmlingua's source.
    """
    kind = json.loads((checkpoint / "tokenizer.json").read_text(encoding="utf-8"))["model"]["type"]
    if kind not in LLMLINGUA_NAMES:
        raise BenchError(f"llmlingua 0.2.2 runs WordPiece or Unigram token classifiers, not {kind}")
    link = work / f"llmlingua-{LLMLINGUA_NAMES[kind]}"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(checkpoint.resolve(), target_is_directory=True)
    return link




def _load(engine: str, model: Path, threads: int, rate: float):
    """Import and load one engine; returns ``text -> compressed text``."""
    if engine == "llmlingua":
        import torch
        from llmlingua import PromptCompressor

        torch.set_num_threads(threads)
        compressor = PromptCompressor(model_name=str(model), use_llmlingua2=True, device_map="cpu")
        return lambda text: compressor.compress_prompt([text], rate=rate)["compressed_prompt"]
    from edge_lingua.compressor import Compressor

    edge = Compressor.load(model, providers=["cpu"], threads=threads)
    return lambda text: edge.compress(text, rate=rate).compressed_prompt


def worker(engine: str, model: Path, prompts: dict[str, str], repeats: int, threads: int,
           rate: float) -> dict[str, Any]:
    """Measure one engine in this (fresh) process."""
    started = time.perf_counter()
    compress = _load(engine, model, threads, rate)
    cold = time.perf_counter() - started
    result: dict[str, Any] = {"engine": engine, "model": str(model), "threads": threads,
                              "cold_start_s": cold, "rss_after_load_mb": peak_rss_mb(),
                              "lengths": {}}
    for length, text in prompts.items():
        first = time.perf_counter()
        compressed = compress(text)
        first_s = time.perf_counter() - first
        latencies = time_calls(partial(compress, text), repeats, warmup=0)
        result["lengths"][length] = {"first_call_s": first_s, "latencies_s": latencies,
                                     "peak_rss_mb": peak_rss_mb(), "compressed": compressed}
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run_engine(engine: str, model: Path, prompts_file: Path, out: Path, repeats: int,
               threads: int, rate: float, timeout: float) -> dict[str, Any]:
    """Run :func:`worker` in a fresh interpreter; returns its JSON."""
    cmd = [sys.executable, "-m", "benchmarks.speed", "worker", engine, str(model),
           str(prompts_file), str(out), "--repeats", str(repeats), "--threads", str(threads),
           "--rate", str(rate)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(cmd, cwd=REPO, env=env, timeout=timeout, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"{engine} worker failed:\n{done.stderr[-3000:]}")
    return read_json(out)


def summarize(raw: dict[str, dict[str, Any]], tokens: dict[str, int],
              encoding) -> dict[str, Any]:
    """Percentiles, tokens/s and ratios against llmlingua from the workers' raw timings."""
    engines: dict[str, Any] = {}
    for engine, data in raw.items():
        per_length = {}
        for length, m in data["lengths"].items():
            lat = m["latencies_s"]
            p50 = statistics.median(lat)
            per_length[length] = {
                "tokens": tokens[length],
                "p50_ms": 1000 * p50,
                "p95_ms": 1000 * _percentile(lat, 0.95),
                "first_call_ms": 1000 * m["first_call_s"],
                "tokens_per_s": tokens[length] / p50,
                "peak_rss_mb": m["peak_rss_mb"],
                "compressed_tokens": len(encoding.encode(m["compressed"])),
                "repeats": len(lat),
            }
        engines[engine] = {"cold_start_s": data["cold_start_s"],
                           "rss_after_load_mb": data["rss_after_load_mb"],
                           "peak_rss_mb": data["peak_rss_mb"], "lengths": per_length}
    base = engines.get("llmlingua")
    if base:
        for data in engines.values():
            data["vs_llmlingua"] = {
                "cold_start_x": base["cold_start_s"] / data["cold_start_s"],
                "peak_rss_ratio": data["peak_rss_mb"] / base["peak_rss_mb"],
                "speedup_p50": {n: base["lengths"][n]["p50_ms"] / m["p50_ms"]
                                for n, m in data["lengths"].items() if n in base["lengths"]},
            }
    return engines


def run(out: Path, checkpoint: Path, fp32: Path, int8: Path, *,
        engines: tuple[str, ...] = ENGINES, lengths: tuple[int, ...] = LENGTHS,
        repeats: int = 10, threads: int | None = None, rate: float = RATE,
        timeout: float = 3600) -> dict[str, Any]:
    """Measure every engine; writes ``out/speed.json`` (and the raw timings)."""
    from benchmarks.common import cl100k, machine
    from benchmarks.texts import speed_prompt

    encoding = cl100k()
    threads = threads or os.cpu_count() or 1
    prompts = {str(n): speed_prompt(n, encoding) for n in lengths}
    tokens = {k: len(encoding.encode(v)) for k, v in prompts.items()}
    work = out / "speed"
    prompts_file = write_json(work / "prompts.json", prompts)
    models = {"llmlingua": llmlingua_alias(checkpoint, work), "edge-fp32": fp32, "edge-int8": int8}
    raw = {}
    for engine in engines:
        print(f"speed: {engine} ...", file=sys.stderr, flush=True)
        raw[engine] = run_engine(engine, models[engine], prompts_file, work / f"{engine}.json",
                                 repeats, threads, rate, timeout)
    result = {"section": "speed", "machine": machine(), "rate": rate, "threads": threads,
              "repeats": repeats, "token_counter": "tiktoken cl100k_base",
              "models": {e: str(models[e]) for e in engines},
              "engines": summarize(raw, tokens, encoding)}
    write_json(out / "speed.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        parser = argparse.ArgumentParser(prog="benchmarks.speed worker")
        parser.add_argument("engine", choices=ENGINES)
        parser.add_argument("model", type=Path)
        parser.add_argument("prompts", type=Path)
        parser.add_argument("out", type=Path)
        parser.add_argument("--repeats", type=int, required=True)
        parser.add_argument("--threads", type=int, required=True)
        parser.add_argument("--rate", type=float, required=True)
        args = parser.parse_args(argv[1:])
        offline_env()
        prompts = json.loads(args.prompts.read_text(encoding="utf-8"))
        write_json(args.out, worker(args.engine, args.model, prompts, args.repeats,
                                    args.threads, args.rate))
        return 0
    from benchmarks.models import add_arguments, prepare

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--lengths", nargs="+", type=int, default=list(LENGTHS))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--rate", type=float, default=RATE)
    args = parser.parse_args(argv)
    models = prepare(args.out, args.checkpoint, dev=args.dev)
    result = run(args.out, models.checkpoint, models.fp32, models.int8,
                 engines=tuple(args.engines), lengths=tuple(args.lengths),
                 repeats=args.repeats, threads=args.threads, rate=args.rate)
    from benchmarks.plots import latency_plot

    latency_plot(result, args.out / "latency_vs_length.png")
    print(json.dumps(result["engines"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
