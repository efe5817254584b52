"""Where the time of a compression goes.

    python -m benchmarks.breakdown --out docs/results/profile.json [--bundle B] [--threads 2]

1. onnxruntime's profiler on one full encoder window (512 tokens for the shipped model): the
   kernels' time grouped into quantized MatMuls, fused QAttention, the rest of fp32 attention
   (Softmax, Transpose, fp32 Attention), fp32 MatMuls (of unfused attention, and the FFN
   outputs kept fp32), LayerNorm and GELU, DynamicQuantizeLinear, and the rest.
2. cProfile on ``compress`` of a whole 8,192-token prompt (cl100k_base tokens of real text):
   the wall time grouped into the model (``InferenceSession.run``), tokenization, Python
   segmentation (units, token attachment, windows), selection and joining, and the rest.

The kernel shares of (1) split the model's share of (2), which gives one breakdown of a whole
call.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import cl100k, machine, write_json
from benchmarks.texts import speed_prompt

KERNEL_GROUPS = {
    "quantized MatMul": ("DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulInteger",
                         "QOrderedMatMul"),
    "fused attention (QAttention: INT8 QKV projection, fp32 attention)": ("QAttention",),
    "fp32 attention other than MatMul (Softmax, Transpose, fp32 Attention)": (
        "Softmax", "Transpose", "Attention", "MultiHeadAttention"),
    "fp32 MatMul (unfused attention; FFN outputs kept fp32)": ("MatMul", "FusedMatMul"),
    "LayerNorm and GELU": ("SkipLayerNormalization", "LayerNormalization",
                           "EmbedLayerNormalization", "QEmbedLayerNormalization", "Gelu",
                           "BiasGelu", "FastGelu"),
    "DynamicQuantizeLinear": ("DynamicQuantizeLinear",),
}
# cProfile: which functions' cumulative time makes each part (first match wins)
CALL_GROUPS = (
    ("model (InferenceSession.run)", ("onnxruntime_inference_collection", "run")),
    ("tokenization (tokenizers)", ("~", "of 'tokenizers.Tokenizer' objects")),
    ("segmentation", ("edge_lingua/segmentation.py", "segment")),
    ("windows", ("edge_lingua/segmentation.py", "window_bounds")),
    ("selection and join", ("edge_lingua/compressor.py", "_select")),
    ("structure detection and layout", ("edge_lingua/structure.py", "")),
)

TOKENIZER_ENCODE = ("~", "<method 'encode' of 'tokenizers.Tokenizer' objects>")


def _group(op_type: str) -> str:
    for group, ops in KERNEL_GROUPS.items():
        if op_type in ops:
            return group
    return "other (Add, Gather, Reshape, ...)"


def kernel_breakdown(bundle: Path | None, threads: int, runs: int) -> dict[str, Any]:
    """Share of kernel time per group over ``runs`` calls on one full window."""
    import onnxruntime as ort

    from edge_lingua.bundle import load_bundle
    from edge_lingua.compressor import default_bundle_path

    loaded = load_bundle(bundle or default_bundle_path(), kind="token-classifier")
    length = loaded.manifest.max_seq_len
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "window")
        options.log_severity_level = 3
        session = ort.InferenceSession(str(loaded.model_path), options,
                                       providers=["CPUExecutionProvider"])
        ids = np.random.default_rng(0).integers(1000, 20000, size=(1, length), dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids)}
        feed = {i.name: feed[i.name] for i in session.get_inputs()}
        session.run(None, feed)  # warm-up, not counted below
        started = time.perf_counter()
        for _ in range(runs):
            session.run(None, feed)
        wall = (time.perf_counter() - started) / runs
        events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    per_op: dict[str, float] = defaultdict(float)
    runs_seen = sum(1 for e in events if e.get("name") == "model_run")
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            per_op[event["args"]["op_name"]] += event["dur"] / 1e6
    scale = max(runs_seen, 1)
    per_op = {op: s / scale for op, s in per_op.items()}
    total = sum(per_op.values())
    groups: dict[str, float] = defaultdict(float)
    for op, seconds in per_op.items():
        groups[_group(op)] += seconds
    return {
        "window_tokens": length, "threads": threads, "runs": runs, "wall_ms": 1000 * wall,
        "kernel_ms": 1000 * total,
        "groups": {g: {"ms": 1000 * s, "share": s / total} for g, s in
                   sorted(groups.items(), key=lambda kv: -kv[1])},
        "ops": {op: {"ms": 1000 * s, "share": s / total} for op, s in
                sorted(per_op.items(), key=lambda kv: -kv[1])},
    }


def call_breakdown(bundle: Path | None, threads: int, tokens: int,
                   rate: float) -> dict[str, Any]:
    """cProfile of one ``compress`` of a ``tokens``-long prompt (after a warm-up call)."""
    from edge_lingua.compressor import Compressor

    compressor = Compressor.load(bundle, providers=["cpu"], threads=threads)
    text = speed_prompt(tokens, cl100k())
    compressor.compress(text, rate=rate)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    compressor.compress(text, rate=rate)
    profiler.disable()
    wall = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

    def cumulative(where: str, function: str) -> tuple[float, Any]:
        found = [(cum, key) for key, (_, _, _, cum, _) in stats.items()
                 if where in key[0] and function in key[2]]
        return max(found, key=lambda f: f[0], default=(0.0, None))

    parts: dict[str, float] = {}
    for name, (where, function) in CALL_GROUPS:
        parts[name] = cumulative(where, function)[0]
    # tokenizer calls happen inside segmentation and selection (token counts): move them out
    encode, key = cumulative(*TOKENIZER_ENCODE)
    if key is not None:
        callers = stats[key][4]
        in_segment = sum(v[3] for c, v in callers.items() if c[2] == "segment")
        parts["segmentation"] -= in_segment
        parts["selection and join"] -= encode - in_segment
    parts["other Python"] = max(wall - sum(parts.values()), 0.0)
    top = sorted(((cum, f"{Path(file).name}:{func}") for (file, _, func), (_, _, _, cum, _)
                  in stats.items()), reverse=True)[:25]
    return {"prompt_cl100k_tokens": tokens, "threads": threads, "wall_s": wall,
            "parts": {k: {"s": v, "share": v / wall} for k, v in parts.items()},
            "top_cumulative": [{"function": f, "s": c} for c, f in top]}


def table(result: dict[str, Any]) -> str:
    """The markdown breakdown of one whole call: kernels split the model's share."""
    calls, kernels = result["call"], result["kernels"]
    model = calls["parts"]["model (InferenceSession.run)"]["share"]
    rows = [f"| part | share of a whole {calls['prompt_cl100k_tokens']:,}-token call |",
            "|---|---|"]
    for group, data in kernels["groups"].items():
        rows.append(f"| model: {group} | {100 * model * data['share']:.1f}% |")
    for part, data in calls["parts"].items():
        if not part.startswith("model"):
            rows.append(f"| {part} | {100 * data['share']:.1f}% |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--rate", type=float, default=0.33)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = {"section": "profile", "machine": machine(),
              "kernels": kernel_breakdown(args.bundle, args.threads, args.runs),
              "call": call_breakdown(args.bundle, args.threads, args.tokens, args.rate)}
    print(table(result))
    if args.out:
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
