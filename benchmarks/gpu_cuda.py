"""GPU execution-provider throughput of token-classifier bundles, with batched windows.

Needs numpy and onnxruntime-gpu only (no tokenizer), so it runs on a bare GPU machine::

    python -m benchmarks.gpu_cuda int8=BUNDLE fp16=BUNDLE --provider cuda tensorrt --out gpu.json

Full encoder windows (``--window`` tokens of random ids) go through one InferenceSession per
model and provider, at each batch size, as ``Compressor`` sends them on a GPU (16 windows a
call by default); p50 of ``--repeats`` calls after warm-up. Throughput is encoder tokens per
second. A provider that does not start (TensorRT without its libraries, say) is recorded with
the providers the session fell back to, and not timed.

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
PROVIDERS = {"cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


def model_path(path: Path) -> Path:
    """The ONNX file of a bundle folder (its manifest's model_file), or ``path`` itself."""
    if path.is_dir():
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        return path / manifest["model_file"]
    return path


def gpu_name() -> str:
    import subprocess

    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "unknown GPU"


def measure(model: Path, batches: tuple[int, ...], window: int, repeats: int,
            provider: str = "cuda") -> dict:
    """p50 latency and tokens/s of ``model`` on ``provider`` at each batch size."""
    import onnxruntime as ort

    wanted = PROVIDERS[provider]
    if wanted not in ort.get_available_providers():
        return {"error": f"onnxruntime {ort.__version__} here has no {wanted} "
                         f"({', '.join(ort.get_available_providers())})"}
    options = ort.SessionOptions()
    options.log_severity_level = 3
    chain = [wanted, "CUDAExecutionProvider", "CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(str(model), options,
                                       providers=list(dict.fromkeys(chain)))
    except Exception as exc:
        return {"error": f"{wanted} failed to create a session: {str(exc)[:500]}"}
    if session.get_providers()[0] != wanted:
        return {"error": f"{wanted} did not start; the session runs on {session.get_providers()}"}
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
    return {"provider": wanted, "model": str(model), "batches": rows}


def _named(spec: str) -> tuple[str, Path]:
    name, sep, path = spec.partition("=")
    return (name, Path(path)) if sep else (Path(spec).name, Path(spec))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="NAME=bundle folder or .onnx file")
    parser.add_argument("--provider", nargs="+", choices=sorted(PROVIDERS), default=["cuda"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batches", nargs="+", type=int, default=list(BATCHES))
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    import onnxruntime as ort

    if hasattr(ort, "preload_dlls"):  # CUDA / cuDNN from the pip packages PyTorch installed
        ort.preload_dlls()
    runs = {}
    for provider in args.provider:
        for spec in args.models:
            name, path = _named(spec)
            runs[f"{name}/{provider}"] = measure(model_path(path), tuple(args.batches),
                                                 args.window, args.repeats, provider)
            print(name, provider, json.dumps(runs[f"{name}/{provider}"]), flush=True)
    result = {"section": "gpu", "device": gpu_name(), "onnxruntime": ort.__version__,
              "runs": runs}
    from benchmarks.common import write_json

    write_json(args.out, result)
    return 1 if all("error" in r for r in runs.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
