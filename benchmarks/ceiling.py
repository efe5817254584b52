"""How close the INT8 compressor runs to this CPU's INT8 matrix-multiply limit.

1. The model's weight matrix products are read from the INT8 bundle's ONNX graph
   (``MatMulInteger`` / ``DynamicQuantizeMatMul`` / ``MatMulIntegerToFloat`` nodes with an
   int8 weight initializer, and the fused Q/K/V projection of ``QAttention``, whose weight is
   its second input): useful INT8 MACs per token = sum of K x N over them.
2. The ceiling: a one-node ONNX graph ``MatMulInteger(uint8 [M, K], int8 [K, N])`` for each of
   those shapes, M = one full encoder window, timed with onnxruntime on the same number of
   threads. Ceiling MAC/s = the model's MACs per window / the summed best times of its products.
3. The compressor: ``Compressor.compress`` on real text, timed; achieved INT8 MAC/s = MACs per
   token x encoder tokens (special tokens included) / seconds.

Share = achieved / ceiling. The rest of the time goes to attention (fp32 here), layer norms,
GELU, quantizing activations at run time, tokenization and selection.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import write_json
from edge_lingua.bench import time_calls

INT8_OPS = ("MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QAttention")


def weight_matmuls(model_path: Path) -> Counter[tuple[int, int]]:
    """(K, N) of every matrix product with an int8/uint8 weight initializer, with counts."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    graph = model.graph
    int8 = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    weights = {i.name: tuple(i.dims) for i in graph.initializer if i.data_type in int8}
    shapes: Counter[tuple[int, int]] = Counter()
    for node in graph.node:
        if node.op_type in INT8_OPS and len(node.input) > 1 and node.input[1] in weights:
            dims = weights[node.input[1]]
            if len(dims) == 2:
                shapes[(int(dims[0]), int(dims[1]))] += 1
    return shapes


def _matmul_integer_model(m: int, k: int, n: int, seed: int) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    weight = rng.integers(-127, 128, size=(k, n), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b", "a_zero", "b_zero"], ["y"])],
        "int8_ceiling",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [m, n])],
        initializer=[
            numpy_helper.from_array(weight, "b"),
            numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zero"),
            numpy_helper.from_array(np.array(0, dtype=np.int8), "b_zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def time_matmul_integer(m: int, k: int, n: int, threads: int, repeats: int) -> float:
    """Best-of-``repeats`` seconds of one ``[m, k] x [k, n]`` uint8 x int8 product."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(_matmul_integer_model(m, k, n, seed=k * n), options,
                                   providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).integers(0, 256, size=(m, k), dtype=np.uint8)
    return min(time_calls(lambda: session.run(None, {"a": a}), repeats, warmup=3))


def compressor_rate(int8_bundle: Path, text: str, threads: int, repeats: int,
                    rate: float) -> dict[str, float]:
    """Encoder tokens per second of ``Compressor.compress`` on ``text`` (median of repeats)."""
    from edge_lingua.compressor import Compressor

    compressor = Compressor.load(int8_bundle, providers=["cpu"], threads=threads)
    windows = compressor.score(text).windows
    encoder_tokens = sum(hi - lo + 2 for lo, hi in windows)
    seconds = statistics.median(time_calls(lambda: compressor.compress(text, rate=rate), repeats))
    return {"encoder_tokens": encoder_tokens, "windows": len(windows), "seconds": seconds,
            "tokens_per_s": encoder_tokens / seconds}


def run(out: Path, int8_bundle: Path, *, tokens: int = 2048, threads: int | None = None,
        repeats: int = 10, rate: float = 0.33) -> dict[str, Any]:
    """Measure ceiling and compressor; writes ``out/ceiling.json``."""
    import os

    from benchmarks.common import cl100k, machine
    from benchmarks.texts import speed_prompt
    from edge_lingua.bundle import load_bundle

    threads = threads or os.cpu_count() or 1
    bundle = load_bundle(int8_bundle, kind="token-classifier")
    shapes = weight_matmuls(bundle.model_path)
    if not shapes:
        raise ValueError(f"{int8_bundle} has no int8 weight matrix products")
    window = bundle.manifest.max_seq_len
    products = []
    ceiling_seconds = 0.0
    for (k, n), count in sorted(shapes.items()):
        seconds = time_matmul_integer(window, k, n, threads, repeats)
        ceiling_seconds += count * seconds
        products.append({"m": window, "k": k, "n": n, "count": count, "seconds": seconds,
                         "gops": 2 * window * k * n / seconds / 1e9})
    macs_per_token = sum(k * n * c for (k, n), c in shapes.items())
    ceiling_macs = macs_per_token * window / ceiling_seconds
    measured = compressor_rate(int8_bundle, speed_prompt(tokens, cl100k()), threads, repeats, rate)
    achieved_macs = macs_per_token * measured["tokens_per_s"]
    result = {
        "section": "ceiling", "machine": machine(), "threads": threads,
        "bundle": str(int8_bundle), "quantization": bundle.manifest.quantization,
        "int8_macs_per_token": macs_per_token, "products": products,
        "ceiling_int8_gops": 2 * ceiling_macs / 1e9,
        "ceiling_tokens_per_s": ceiling_macs / macs_per_token,
        "compressor": {**measured, "prompt_cl100k_tokens": tokens,
                       "achieved_int8_gops": 2 * achieved_macs / 1e9},
        "share_of_ceiling": achieved_macs / ceiling_macs,
    }
    write_json(out / "ceiling.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    from benchmarks.models import add_arguments, prepare

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--int8-bundle", type=Path, help="default: the run's dynamic-int8 bundle")
    parser.add_argument("--tokens", type=int, default=2048)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    bundle = args.int8_bundle or prepare(args.out, args.checkpoint, dev=args.dev).int8
    result = run(args.out, bundle, tokens=args.tokens, threads=args.threads, repeats=args.repeats)
    print(json.dumps({k: result[k] for k in ("ceiling_int8_gops", "share_of_ceiling")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
