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
    args = parser.parse_args(argv)
    offline_env()
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    prompts = json.loads(args.prompts.read_text(encoding="utf-8"))
    engines: dict[str, Any] = {}
    for spec in args.bundle:
        name, _, path = spec.partition("=")
        engines[f"edge-{name}"] = time_engine(_edge(Path(path), args.rate, args.batch_size),
                                              prompts, args.repeats)
        print(name, json.dumps(engines[f"edge-{name}"]), flush=True)
    try:
        engines["llmlingua"] = time_engine(
            _llmlingua(args.checkpoint, args.out.parent / "work", args.rate), prompts,
            args.repeats)
    except Exception as exc:  # recorded: the edge-lingua figures stand without it
        engines["llmlingua"] = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
    print("llmlingua", json.dumps(engines["llmlingua"]), flush=True)
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
                          "token_counter": "tiktoken cl100k_base", "engines": engines})
    return 0


if __name__ == "__main__":
    sys.exit(main())
