"""Rebuild an fp32 ONNX bundle from a dynamic-INT8 bundle whose fp32 original is gone.

The shipped default was quantized from an fp32 checkpoint that no longer exists. To re-quantize
it (for example with fused attention) its fp32 graph is rebuilt: an fp32 ONNX export of the same
architecture (``TEMPLATE``, e.g. ``edge-lingua export classifier`` of the MiniLM backbone with
any head) gives the graph, and every initializer takes the INT8 bundle's value: fp32 tensors
as they are, quantized ones dequantized (``(q - zero_point) * scale``, per output channel for
MatMul weights, per tensor for embeddings), and a fused graph's Q/K/V projection (one
``QAttention`` weight per layer) split back into query, key and value. Re-quantizing an unfused
bundle's result per channel gives back the same int8 weights, because each channel's largest
value still maps to +-127.

    python -m training.rebuild_fp32 edge_lingua/models/default TEMPLATE_FP32_BUNDLE OUT
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edge_lingua.bundle import load_bundle, write_manifest


def dequantized_initializers(int8_model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """fp32 values of the INT8 graph's weights, under their names before quantization."""
    stored = {i.name: numpy_helper.to_array(i) for i in int8_model.graph.initializer}
    values: dict[str, np.ndarray] = {}
    for name, array in stored.items():
        if name.endswith("_quantized"):
            base = name[: -len("_quantized")]
            scale = stored[f"{base}_scale"].astype(np.float32)
            zero = stored[f"{base}_zero_point"].astype(np.float32)
            values[base] = ((array.astype(np.float32) - zero) * scale).astype(np.float32)
        elif not name.endswith(("_scale", "_zero_point")):
            values[name] = array
    return values


_FUSED_QKV = re.compile(r"Attention_(\d+)_qkv_(weight|bias)")
_SELF_ATTENTION = re.compile(r"/bert/encoder/layer\.(\d+)/attention/self/(query|key|value)/MatMul")


def unfuse_attention(values: dict[str, np.ndarray], template: onnx.ModelProto) -> None:
    """Split a fused graph's ``Attention_<layer>_qkv_{weight,bias}`` ([hidden, 3 hidden]: query,
    key, value side by side) back into the template's per-projection tensors, in place."""
    matches = [m for m in map(_FUSED_QKV.fullmatch, list(values)) if m]
    fused = {(int(m.group(1)), m.group(2)): values.pop(m.group(0)) for m in matches}
    if not fused:
        return
    weights: dict[tuple[int, str], np.ndarray] = {}
    for (layer, kind), value in fused.items():
        for part, piece in zip(("query", "key", "value"), np.split(value, 3, axis=-1),
                               strict=True):
            if kind == "bias":
                values[f"bert.encoder.layer.{layer}.attention.self.{part}.bias"] = piece
            else:
                weights[layer, part] = np.ascontiguousarray(piece)
    for node in template.graph.node:
        match = _SELF_ATTENTION.fullmatch(node.name)
        if match:
            values[node.input[1]] = weights[int(match.group(1)), match.group(2)]


def rebuild(int8_bundle: Path, template_bundle: Path, out: Path) -> Path:
    """Write the fp32 bundle ``out``; return its model path."""
    source = load_bundle(int8_bundle, kind="token-classifier")
    template = load_bundle(template_bundle, kind="token-classifier")
    if source.manifest.quantization != "dynamic-int8":
        raise SystemExit(f"{int8_bundle} is {source.manifest.quantization}, not dynamic-int8")
    values = dequantized_initializers(onnx.load(str(source.model_path)))
    graph = onnx.load(str(template.model_path))
    unfuse_attention(values, graph)
    for initializer in graph.graph.initializer:
        value = values.get(initializer.name)
        if value is None:
            raise SystemExit(f"the INT8 model has no tensor {initializer.name!r}: "
                             "the template is not the same architecture and export")
        current = numpy_helper.to_array(initializer)
        if value.shape != current.shape or value.dtype != current.dtype:
            raise SystemExit(f"{initializer.name}: INT8 model gives {value.dtype}{value.shape}, "
                             f"template has {current.dtype}{current.shape}")
        initializer.CopyFrom(numpy_helper.from_array(value, initializer.name))
    out.mkdir(parents=True)
    onnx.save(graph, str(out / "model.onnx"))
    manifest = source.manifest
    others = [n for n in manifest.files if n not in (manifest.model_file, "fidelity.json")]
    for name in others:
        shutil.copyfile(source.path / name, out / name)
    extra = {k: v for k, v in manifest.extra.items() if k != "quantization"}
    extra["rebuilt_from"] = f"{manifest.quantization} bundle, weights dequantized"
    write_manifest(
        out, files=["model.onnx", *others], kind=manifest.kind, model_file="model.onnx",
        model_format="onnx", tokenizer_file=manifest.tokenizer_file,
        max_seq_len=manifest.max_seq_len, keep_label=manifest.keep_label,
        special_tokens=manifest.special_tokens, model_inputs=manifest.model_inputs,
        quantization="none", **manifest.input_fields(), source_model=manifest.source_model,
        license=manifest.license, extra=extra,
    )
    return out / "model.onnx"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("int8_bundle", type=Path)
    parser.add_argument("template_bundle", type=Path, help="fp32 export of the same architecture")
    parser.add_argument("out", type=Path, help="new bundle folder (must not exist)")
    args = parser.parse_args(argv)
    print(rebuild(args.int8_bundle, args.template_bundle, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
