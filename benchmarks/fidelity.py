"""Fidelity: INT8 (and every other quantization mode) vs fp32, on held-out real text.

The quantizer (``edge_lingua_quantize.quantize_bundle``) measures it while it writes each
bundle: per rate, the share of words with the same keep/drop decision as fp32 and the F1 of
the kept words, on GSM8K **test** problems (question + worked solution) it never calibrated
on. This section gathers those reports with the bundle sizes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import read_json, write_json


def _model_bytes(bundle: Path) -> int:
    manifest = read_json(bundle / "manifest.json")
    return sum((bundle / name).stat().st_size for name in manifest["files"]
               if name.endswith((".onnx", ".onnx.data", ".ort")))


def run(out: Path, fp32: Path, quantized: dict[str, Path]) -> dict[str, Any]:
    """Collect each quantized bundle's ``fidelity.json``; writes ``out/fidelity.json``."""
    modes = {}
    for mode, bundle in quantized.items():
        report = read_json(bundle / "fidelity.json")
        held = report["sets"]["held_out"]
        modes[mode] = {
            "model_mb": _model_bytes(bundle) / 2**20,
            "held_out_texts": held["texts"],
            "held_out_tokens": held["tokens"],
            "max_logit_error": held["max_logit_error"],
            "mean_logit_error": held["mean_logit_error"],
            "rates": {str(r["rate"]): {k: r[k] for k in ("agreement", "kept_word_f1", "words")}
                      for r in held["rates"]},
            "passed_default_threshold": report["passed"],
            "settings": report["settings"],
        }
    result = {"section": "fidelity", "fp32": str(fp32), "fp32_model_mb": _model_bytes(fp32) / 2**20,
              "held_out": "GSM8K test (question + worked solution)", "modes": modes}
    write_json(out / "fidelity.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    from benchmarks.models import add_arguments, prepare

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--modes", nargs="+",
                        default=["dynamic-int8", "static-qdq-int8", "qdq-u16", "int4-weight"])
    args = parser.parse_args(argv)
    models = prepare(args.out, args.checkpoint, modes=tuple(args.modes), dev=args.dev)
    result = run(args.out, models.fp32, models.quantized)
    print(json.dumps(result["modes"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
