"""CUDA execution provider throughput of a token-classifier bundle, with batched windows.

Standalone (numpy + onnxruntime-gpu; no edge-lingua import, no tokenizer) so it runs on a
bare GPU machine::

    python benchmarks/gpu_cuda.py BUNDLE_OR_MODEL.onnx --out gpu.json

Full encoder windows (``--window`` tokens of random ids) go through one InferenceSession per
batch size, as ``Compressor`` sends them on a GPU (16 windows a call by default); p50 of
``--repeats`` calls after warm-up. Throughput is encoder tokens per second.

On the lent H100 it ran with onnxruntime-gpu 1.31.1 carried in pieces and
``onnxruntime.preload_dlls()`` called first (see docs/BENCHMARKS.md for how and the figures).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

BATCHES = (1, 4, 16, 64)


def model_path(path: Path) -> Path:
    """The ONNX file of a bundle folder (its manifest's model_file), or ``path`` itself."""
    if path.is_dir():
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        return path / manifest["model_file"]
    return path


def measure(model: Path, batches: tuple[int, ...], window: int, repeats: int) -> dict:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return {"error": f"onnxruntime {ort.__version__} here has no CUDAExecutionProvider "
                         f"({', '.join(ort.get_available_providers())})"}
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model), options,
                                   providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    if session.get_providers()[0] != "CUDAExecutionProvider":
        return {"error": f"the CUDA provider did not start: {session.get_providers()}"}
    inputs = {i.name: i.type for i in session.get_inputs()}
    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        ids = rng.integers(1000, 20000, size=(batch, window), dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids)}
        feed = {k: v.astype(np.int32) if inputs[k] == "tensor(int32)" else v
                for k, v in feed.items() if k in inputs}
        for _ in range(3):
            session.run(["logits"], feed)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            session.run(["logits"], feed)
            times.append(time.perf_counter() - t0)
        p50 = statistics.median(times)
        rows.append({"batch": batch, "window": window, "p50_ms": 1000 * p50,
                     "tokens_per_s": batch * window / p50})
    import subprocess

    try:
        device = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        device = "unknown GPU"
    return {"section": "gpu", "device": device, "onnxruntime": ort.__version__,
            "model": str(model), "batches": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="bundle folder or .onnx file")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    result = measure(model_path(args.model), tuple(args.batches), args.window, args.repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
