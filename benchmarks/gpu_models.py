"""The shipped INT8 bundle's weights as a PyTorch checkpoint and as fp32 / fp16 ONNX bundles.

Built where the GPU is (the device machine takes at most 64 MiB of files, and the fp32 graph
alone is 90 MB), from nothing but the shipped bundle and the MiniLM config and tokenizer files:

    python -m benchmarks.gpu_models BUNDLE MINILM_FILES OUT

* ``OUT/checkpoint``: ``BertForTokenClassification`` with the bundle's weights dequantized
  (``training.distill.teacher_weights``; a fused bundle's ``QAttention`` Q/K/V split back as
  ``training.rebuild_fp32`` does, so no fp32 template export is needed), for llmlingua on
  PyTorch, so both engines run the same weights;
* ``OUT/fp32``: that checkpoint exported with ``torch.onnx.export`` (opset 17, dynamic batch
  and sequence axes), as a bundle whose manifest is the shipped one with ``quantization: none``;
* ``OUT/fp16``: the fp32 graph converted by onnxruntime's ``float16`` tool with fp32 inputs and
  outputs (``keep_io_types``), ``quantization: f16``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt")


def bundle_weights(onnx_path: Path) -> dict:
    """The fp32 state dict of an INT8 bundle, fused (``QAttention``) or not.

    Unfused graphs go through ``training.distill.teacher_weights``. In a fused graph each layer's
    ``Attention_<layer>_qkv_{weight,bias}`` ([hidden, 3 hidden], query, key, value side by side)
    is split as ``training.rebuild_fp32.unfuse_attention`` splits it; every other tensor is read
    as ``teacher_weights`` reads it.
    """
    import numpy as np
    import onnx

    from training.distill import _WEIGHT_NODE, teacher_weights
    from training.rebuild_fp32 import _FUSED_QKV, dequantized_initializers

    model = onnx.load(str(onnx_path))
    if not any(node.op_type == "QAttention" for node in model.graph.node):
        return teacher_weights(onnx_path)
    values = dequantized_initializers(model)
    state = {name: value.astype(np.float32) for name, value in values.items()
             if name.startswith(("bert.", "classifier."))}
    for name, value in values.items():
        match = _FUSED_QKV.fullmatch(name)
        if not match:
            continue
        layer, kind = int(match.group(1)), match.group(2)
        for part, piece in zip(("query", "key", "value"), np.split(value, 3, axis=-1),
                               strict=True):
            key = f"bert.encoder.layer.{layer}.attention.self.{part}.{kind}"
            state[key] = np.ascontiguousarray((piece if kind == "bias" else piece.T)
                                              .astype(np.float32))
    for node in model.graph.node:
        match = _WEIGHT_NODE.match(node.name)
        if not match or node.op_type not in ("MatMul", "MatMulInteger"):
            continue
        weight = node.input[1].removesuffix("_quantized")
        if weight in values:
            prefix = match.group(1).replace("/", ".")
            state[f"{prefix}.weight"] = np.ascontiguousarray(values[weight].T.astype(np.float32))
    return state


def teacher(bundle: Path, config: Path):
    """``bundle`` (fused or not) as an fp32 ``BertForTokenClassification`` (eval mode):
    ``training.distill.build_teacher`` reading the weights with :func:`bundle_weights`."""
    from training.distill import build_teacher

    return build_teacher(bundle, config, read_weights=bundle_weights)


def checkpoint(bundle: Path, minilm: Path, out: Path) -> Path:
    """The bundle's weights as a Hugging Face checkpoint folder (fp32)."""
    model = teacher(bundle, minilm / "config.json")
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        shutil.copyfile(minilm / name, out / name)
    return out


def _bundle_like(bundle: Path, out: Path, quantization: str, note: str) -> Path:
    """Write ``out/manifest.json`` from ``bundle``'s, for ``out/model.onnx``."""
    from edge_lingua.bundle import read_manifest, write_manifest

    manifest = read_manifest(bundle)
    for name in manifest.files:
        if name != manifest.model_file:
            shutil.copyfile(bundle / name, out / name)
    extra = {k: v for k, v in manifest.extra.items() if k != "quantization"}
    write_manifest(
        out, kind=manifest.kind, model_file="model.onnx", model_format="onnx",
        tokenizer_file=manifest.tokenizer_file, files=["model.onnx", *(
            n for n in manifest.files if n != manifest.model_file)],
        max_seq_len=manifest.max_seq_len, keep_label=manifest.keep_label,
        special_tokens=manifest.special_tokens, model_inputs=manifest.model_inputs,
        quantization=quantization, source_model=f"{manifest.source_model} ({note})",
        license=manifest.license, extra=extra, **manifest.input_fields())
    return out


def fp32_bundle(bundle: Path, checkpoint_dir: Path, out: Path) -> Path:
    """``checkpoint_dir`` exported to ONNX beside a copy of ``bundle``'s other files."""
    import torch
    from transformers import BertForTokenClassification

    model = BertForTokenClassification.from_pretrained(checkpoint_dir).eval()
    out.mkdir(parents=True, exist_ok=True)
    ids = torch.randint(1000, 20000, (2, 16))
    axes = {0: "batch", 1: "sequence"}
    arguments = dict(
        input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                      "logits": axes})
    with torch.no_grad():
        try:  # the TorchScript exporter, as optimum uses; newer torch may lack it
            torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                              str(out / "model.onnx"), opset_version=17, dynamo=False,
                              **arguments)
        except Exception as exc:
            print(f"TorchScript export failed ({exc}); using dynamo=True", file=sys.stderr)
            torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)),
                              str(out / "model.onnx"), opset_version=18, dynamo=True,
                              external_data=False, **arguments)
    return _bundle_like(bundle, out, "none", "dequantized to fp32")


def fp16_bundle(fp32: Path, out: Path) -> Path:
    """The fp32 bundle's graph in fp16, fp32 at its inputs and outputs."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    out.mkdir(parents=True, exist_ok=True)
    model = convert_float_to_float16(onnx.load(str(fp32 / "model.onnx")), keep_io_types=True)
    onnx.save(model, str(out / "model.onnx"))
    return _bundle_like(fp32, out, "f16", "fp16")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("minilm", type=Path, help="folder with MiniLM's config and tokenizer")
    parser.add_argument("out", type=Path)
    parser.add_argument("--fp16", action="store_true",
                        help="also the fp16 bundle (needs onnxruntime's transformers tools)")
    args = parser.parse_args(argv)
    ckpt = args.out / "checkpoint"
    if not (ckpt / "config.json").is_file():
        checkpoint(args.bundle, args.minilm, ckpt)
    if not (args.out / "fp32" / "manifest.json").is_file():
        fp32_bundle(args.bundle, ckpt, args.out / "fp32")
    if args.fp16:
        fp16_bundle(args.out / "fp32", args.out / "fp16")
    print(json.dumps(sorted(str(p) for p in args.out.iterdir())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
