"""``edge-lingua export {classifier,causal-lm,mobile}``: argument parsing only, imports deferred."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from edge_lingua.errors import EdgeLinguaError

Handler = Callable[[argparse.Namespace], int]


def toolchain_handler(func: Handler) -> Handler:
    """Turn toolchain errors into one ``error: ...`` line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except EdgeLinguaError as exc:
            print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2

    return wrapper


def _fixed_shape(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(
            f"expected NAME=SIZE (e.g. sequence_length=128), got {text!r}"
        )
    return name, int(value)


@toolchain_handler
def _classifier(args: argparse.Namespace) -> int:
    from edge_lingua_export.classifier import export_classifier

    manifest = export_classifier(args.src, args.out, max_seq_len=args.max_seq_len, opset=args.opset)
    print(f"wrote {args.out}: token-classifier ({manifest.extra['architecture']}), "
          f"max_seq_len {manifest.max_seq_len}, keep label {manifest.keep_label}")
    return 0


@toolchain_handler
def _causal_lm(args: argparse.Namespace) -> int:
    from edge_lingua_export.causal_lm import export_causal_lm

    manifest = export_causal_lm(args.src, args.out, fmt=args.format, gguf_type=args.gguf_type,
                                opset=args.opset)
    print(f"wrote {args.out}: causal-lm {manifest.model_format} "
          f"({manifest.quantization if manifest.model_format == 'gguf' else 'fp32'}), "
          f"{manifest.extra['num_layers']} layers")
    return 0


@toolchain_handler
def _mobile(args: argparse.Namespace) -> int:
    from edge_lingua_export.mobile import export_mobile

    manifest = export_mobile(args.bundle, args.out, fixed_shapes=dict(args.fixed_shape or []),
                             target=args.target, type_reduction=args.type_reduction)
    print(f"wrote {args.out}: {manifest.model_file} and {manifest.extra['operators_config']}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export`` and its three subcommands to the edge-lingua CLI."""
    export = subparsers.add_parser("export", help="export a Hugging Face model to a bundle")
    kinds = export.add_subparsers(dest="export_kind", required=True)

    cls = kinds.add_parser(
        "classifier", help="BERT / DistilBERT / XLM-R token classifier to an ONNX bundle"
    )
    cls.add_argument("src", help="local Hugging Face folder, or a hub id when online")
    cls.add_argument("out", help="new bundle folder (must not exist)")
    cls.add_argument("--max-seq-len", type=int, default=None, help="cap on the window length")
    cls.add_argument("--opset", type=int, default=None, help="ONNX opset (optimum's default)")
    cls.set_defaults(func=_classifier)

    lm = kinds.add_parser(
        "causal-lm", help="GPT-2 / DistilGPT-2 to an ONNX (with past) or GGUF bundle"
    )
    lm.add_argument("src", help="local Hugging Face folder, or a hub id when online")
    lm.add_argument("out", help="new bundle folder (must not exist)")
    lm.add_argument("--format", choices=("onnx", "gguf"), default="onnx")
    lm.add_argument("--gguf-type", choices=("f16", "q8_0"), default="f16",
                    help="tensor type of the GGUF file")
    lm.add_argument("--opset", type=int, default=None, help="ONNX opset (optimum's default)")
    lm.set_defaults(func=_causal_lm)

    mobile = kinds.add_parser(
        "mobile", help="ORT-format bundle and required-operators config for a reduced build"
    )
    mobile.add_argument("bundle", help="an ONNX bundle")
    mobile.add_argument("out", help="new bundle folder (must not exist)")
    mobile.add_argument("--fixed-shape", type=_fixed_shape, action="append", metavar="NAME=SIZE",
                        help="fix a symbolic input dimension, e.g. batch_size=1 "
                             "sequence_length=128 (repeatable; NNAPI/QNN need fixed shapes)")
    mobile.add_argument("--target", choices=("arm", "amd64"), default="arm",
                        help="platform the ORT model is optimised for")
    mobile.add_argument("--type-reduction", action="store_true",
                        help="also record the types each operator needs (smaller builds)")
    mobile.set_defaults(func=_mobile)
