"""Whole compress calls on one GPU: edge-lingua on onnxruntime's CUDA provider vs llmlingua on
PyTorch CUDA, with the same weights.

    python -m benchmarks.gpu_compress --checkpoint CKPT --bundle int8=B1 --bundle fp16=B2 \\
        --prompts prompts.json --out gpu_compress.json

``prompts.json`` maps a cl100k_base token count to a prompt of exactly that many tokens
(``benchmarks.texts.speed_prompt``; made on a machine with the data, since the GPU machine has
none). llmlingua is ``PromptCompressor(model_name=CKPT, use_llmlingua2=True,
device_map="cuda")`` on the checkpoint ``benchmarks.gpu_models`` rebuilds from the shipped
bundle; edge-lingua is ``Compressor.load(bundle, providers=["cuda"])`` (16 windows a call).
Every engine runs in this one process, one after the other, at the same rate: one warm-up
call, then p50 of ``--repeats`` calls; tokens/s is the prompt's cl100k tokens over the p50.

With ``--interleave`` the engines take turns instead: after every engine's warm-up, each of
``--repeats`` rounds times one call of every engine on every prompt (the engines' order
rotating from round to round), so a slow spell of the host touches every engine alike. Each
row then adds the 10th and 90th percentiles and, for edge-lingua, ``paired_speedup_p50``: the
median over rounds of llmlingua's time over the engine's in the same round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import offline_env, write_json
from benchmarks.speed import RATE, llmlingua_alias


def _llmlingua(checkpoint: Path, work: Path, rate: float):
    from llmlingua import PromptCompressor

    compressor = PromptCompressor(model_name=str(llmlingua_alias(checkpoint, work)),
                                  use_llmlingua2=True, device_map="cuda")
    return lambda text: compressor.compress_prompt([text], rate=rate)["compressed_prompt"]


def _edge(bundle: Path, rate: float, batch_size: int | None):
    from edge_lingua.compressor import Compressor

    edge = Compressor.load(bundle, providers=["cuda"], batch_size=batch_size)
    return lambda text: edge.compress(text, rate=rate).compressed_prompt


def time_engine(compress, prompts: dict[str, str], repeats: int) -> dict[str, Any]:
    out = {}
    for length, text in prompts.items():
        compressed = compress(text)  # warm-up (and the output kept for the record)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            compress(text)
            times.append(time.perf_counter() - t0)
        p50 = statistics.median(times)
        out[length] = {"p50_ms": 1000 * p50, "tokens_per_s": int(length) / p50,
                       "compressed_chars": len(compressed), "prompt_chars": len(text)}
    return out


def _row(length: str, times: list[float], compressed: str, text: str) -> dict[str, Any]:
    p50 = statistics.median(times)
    deciles = statistics.quantiles(times, n=10)
    return {"p50_ms": 1000 * p50, "tokens_per_s": int(length) / p50,
            "p10_ms": 1000 * deciles[0], "p90_ms": 1000 * deciles[-1],
            "compressed_chars": len(compressed), "prompt_chars": len(text)}


def time_interleaved(engines: dict[str, Any], prompts: dict[str, str],
                     rounds: int) -> dict[str, dict[str, Any]]:
    """Every engine on every prompt once per round, the engines' order rotating."""
    names = list(engines)
    outputs = {name: {length: engines[name](text) for length, text in prompts.items()}
               for name in names}  # warm-up
    times: dict[str, dict[str, list[float]]] = {n: {k: [] for k in prompts} for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for length, text in prompts.items():
            for name in order:
                t0 = time.perf_counter()
                engines[name](text)
                times[name][length].append(time.perf_counter() - t0)
    out = {name: {length: _row(length, times[name][length], outputs[name][length], text)
                  for length, text in prompts.items()} for name in names}
    if "llmlingua" in engines:
        for name in names:
            if name == "llmlingua":
                continue
            for length in prompts:
                ratios = [a / b for a, b in zip(times["llmlingua"][length], times[name][length],
                                                strict=True)]
                out[name][length]["paired_speedup_p50"] = statistics.median(ratios)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--bundle", action="append", default=[], help="NAME=bundle folder")
    parser.add_argument("--prompts", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="windows per call for edge-lingua (default: the provider's)")
    parser.add_argument("--interleave", action="store_true",
                        help="engines take turns, one call each per round (--repeats rounds)")
    args = parser.parse_args(argv)
    offline_env()
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    prompts = json.loads(args.prompts.read_text(encoding="utf-8"))
    edges = {f"edge-{name}": _edge(Path(path), args.rate, args.batch_size)
             for name, _, path in (spec.partition("=") for spec in args.bundle)}
    try:
        llmlingua = _llmlingua(args.checkpoint, args.out.parent / "work", args.rate)
        failed = None
    except Exception as exc:  # recorded: the edge-lingua figures stand without it
        llmlingua, failed = None, {"error": f"{type(exc).__name__}: {exc}"[:1000]}
    if args.interleave:
        calls = {**edges, **({} if llmlingua is None else {"llmlingua": llmlingua})}
        engines = time_interleaved(calls, prompts, args.repeats)
    else:
        engines = {name: time_engine(call, prompts, args.repeats)
                   for name, call in {**edges, "llmlingua": llmlingua}.items()
                   if call is not None}
    if failed is not None:
        engines["llmlingua"] = failed
    for name, lengths in engines.items():
        print(name, json.dumps(lengths), flush=True)
    for name, lengths in engines.items():
        if name == "llmlingua" or "error" in engines["llmlingua"]:
            continue
        for length, row in lengths.items():
            row["speedup_vs_llmlingua"] = (row["tokens_per_s"]
                                           / engines["llmlingua"][length]["tokens_per_s"])
    import torch

    from benchmarks.gpu_cuda import gpu_name

    write_json(args.out, {"section": "gpu_compress", "device": gpu_name(),
                          "onnxruntime": ort.__version__, "torch": torch.__version__,
                          "rate": args.rate, "repeats": args.repeats,
                          "method": "interleaved" if args.interleave else "sequential",
                          "token_counter": "tiktoken cl100k_base", "engines": engines})
    return 0


if __name__ == "__main__":
    sys.exit(main())
