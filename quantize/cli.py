"""``edge-lingua quantize``: argument parsing only, imports deferred to the handler."""

from __future__ import annotations

import argparse
import sys

from edge_lingua_export.cli import toolchain_handler
from edge_lingua_quantize.modes import CALIBRATE_METHODS, DEFAULT_BLOCK_SIZE, MODES


def _rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected rates like 0.5,0.33, got {text!r}") from None
    if not rates or not all(0.0 < r <= 1.0 for r in rates):
        raise argparse.ArgumentTypeError(f"rates are fractions in (0, 1], got {text!r}")
    return rates


@toolchain_handler
def _quantize(args: argparse.Namespace) -> int:
    from edge_lingua_quantize.calibration import read_texts
    from edge_lingua_quantize.quantizer import quantize_bundle

    calibration = read_texts(args.calibration)
    held_out = read_texts(args.held_out) if args.held_out else None
    result = quantize_bundle(
        args.bundle, args.out, args.mode, calibration=calibration, held_out=held_out,
        per_channel=args.per_channel, threshold=args.threshold, rates=args.rates,
        force=args.force, calibrate_method=args.calibrate_method, block_size=args.block_size,
        keep_fp32=args.keep_fp32, fuse=args.fuse, report_to=sys.stdout,
    )
    print(f"wrote {args.out}: {result.manifest.quantization} "
          f"(fidelity report in {args.out}/fidelity.json)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``quantize`` to the edge-lingua CLI."""
    q = subparsers.add_parser(
        "quantize", help="quantize a token-classifier bundle, with a fidelity report"
    )
    q.add_argument("bundle", help="an fp32 ONNX token-classifier bundle")
    q.add_argument("out", help="new bundle folder (must not exist)")
    q.add_argument("--mode", choices=list(MODES), required=True,
                   help="; ".join(f"{name}: {what}" for name, what in MODES.items()))
    q.add_argument("--calibration", required=True, metavar="FILE",
                   help="calibration text: .jsonl (string or {'text': ...} per line) or plain "
                        "text with blank-line separated paragraphs")
    q.add_argument("--held-out", metavar="FILE",
                   help="held-out text for the fidelity report (default: every 5th "
                        "calibration text, not used to calibrate)")
    q.add_argument("--per-channel", action="store_true", help="per-channel weight scales")
    q.add_argument("--threshold", type=float, default=0.98,
                   help="lowest keep/drop agreement accepted (default 0.98)")
    q.add_argument("--rates", type=_rates, default=(0.5, 0.33),
                   help="compression rates the agreement is measured at (default 0.5,0.33)")
    q.add_argument("--keep-fp32", action="append", default=[], metavar="REGEX",
                   help="leave nodes whose name matches REGEX unquantized (repeatable), e.g. "
                        "'layer\\.[0-2]/output/dense/MatMul' for outlier-prone FFN outputs")
    q.add_argument("--fuse", action="store_true",
                   help="fuse attention, layer norms and GELU into onnxruntime's transformer "
                        "operators before quantizing (dynamic-int8, BERT-like encoders; faster "
                        "on CPU)")
    q.add_argument("--force", action="store_true",
                   help="write the bundle even when agreement is under the threshold")
    q.add_argument("--calibrate-method", choices=CALIBRATE_METHODS,
                   default="minmax", help="activation range estimation for the static modes")
    q.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE,
                   help="int4-weight block size")
    q.set_defaults(func=_quantize)
