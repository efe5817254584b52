"""Export a GPT-2 family causal LM to a causal-lm bundle: ONNX with past key values, or GGUF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_lingua.bundle import Manifest, write_manifest
from edge_lingua.errors import ToolchainError
from edge_lingua_export import common
from edge_lingua_export.gguf_gpt2 import OUT_TYPES, write_gpt2_gguf

SUPPORTED = {"GPT2LMHeadModel": "GPT-2, DistilGPT-2"}
FORMATS = ("onnx", "gguf")
MAX_EXPORT_ERROR = 1e-3
_PROBE_TEXT = "The runtime scores every token of a prompt with the causal model, 42 times."


def _geometry(config: Any) -> dict[str, int]:
    return {
        "num_layers": int(config.n_layer),
        "num_heads": int(config.n_head),
        "head_dim": int(config.n_embd // config.n_head),
        "vocab_size": int(config.vocab_size),
    }


def empty_past(names: list[str], geometry: dict[str, int], batch: int = 1) -> dict[str, np.ndarray]:
    """Zero-length past key/value feeds: shape [batch, heads, 0, head_dim]."""
    shape = (batch, geometry["num_heads"], 0, geometry["head_dim"])
    return {name: np.zeros(shape, dtype=np.float32) for name in names}


def _verify_onnx(model: Any, tokenizer: Any, onnx_path: Path, inputs: list[str],
                 geometry: dict[str, int]) -> float:
    """Max |logit difference| between PyTorch and the ONNX graph (empty past) on a probe text."""
    import onnxruntime as ort
    import torch

    ids = np.asarray([tokenizer(_PROBE_TEXT)["input_ids"]], dtype=np.int64)
    feeds: dict[str, np.ndarray] = {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "position_ids": np.arange(ids.shape[1], dtype=np.int64)[None, :],
    }
    feeds = {k: v for k, v in feeds.items() if k in inputs}
    feeds.update(empty_past([n for n in inputs if n.startswith("past_key_values")], geometry))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(["logits"], feeds)[0]
    with torch.no_grad():
        torch_logits = model(input_ids=torch.from_numpy(ids)).logits.numpy()
    return float(np.max(np.abs(onnx_logits - torch_logits)))


def export_causal_lm(
    src: str | Path, out: str | Path, *, fmt: str = "onnx", gguf_type: str = "f16",
    opset: int | None = None,
) -> Manifest:
    """Export a GPT2LMHeadModel checkpoint to a causal-lm bundle in ONNX or GGUF format."""
    if fmt not in FORMATS:
        raise ToolchainError(f"--format must be one of {FORMATS}, got {fmt!r}")
    if fmt == "gguf" and gguf_type not in OUT_TYPES:
        raise ToolchainError(f"GGUF type must be one of {OUT_TYPES}, got {gguf_type!r}")
    backend = "optimum.exporters.onnx" if fmt == "onnx" else "gguf"
    common.require("torch", "transformers", "onnx", backend)
    from transformers import AutoModelForCausalLM

    with common.step_bar(f"export causal-lm ({fmt})", 4) as bar, common.staged_output(out) as stage:
        bar.set_postfix_str("loading checkpoint")
        source = common.resolve_source(src)
        config = common.load_config(source, SUPPORTED, "export causal-lm")
        tokenizer = common.load_fast_tokenizer(source)
        model = common.load_model(AutoModelForCausalLM, source)
        geometry = _geometry(config)
        bar.update()
        extra: dict[str, Any] = {"architecture": "GPT2LMHeadModel", **geometry}
        if fmt == "onnx":
            bar.set_postfix_str("exporting to ONNX")
            model_file = common.export_onnx(model, stage, "text-generation-with-past", opset)
            inputs, outputs = common.onnx_io_names(stage / model_file)
            bar.update()
            bar.set_postfix_str("checking against PyTorch")
            error = _verify_onnx(model, tokenizer, stage / model_file, inputs, geometry)
            if not error <= MAX_EXPORT_ERROR:
                raise ToolchainError(
                    f"the ONNX export differs from PyTorch by {error:.2e} (> {MAX_EXPORT_ERROR})"
                )
            extra.update(
                past_inputs=[n for n in inputs if n.startswith("past_key_values")],
                present_outputs=[n for n in outputs if n.startswith("present")],
                logits_output="logits",
                past_layout="batch, num_heads, past_sequence_length, head_dim",
                export_max_abs_error=error,
            )
            model_files = common.onnx_files(stage, model_file)
            quantization = "none"
        else:
            bar.set_postfix_str(f"writing GGUF {gguf_type}")
            model_file = "model.gguf"
            write_gpt2_gguf(model, tokenizer, source, stage / model_file, gguf_type)
            inputs, model_files, quantization = [], [model_file], gguf_type
            bar.update()
        bar.update()
        bar.set_postfix_str("writing bundle")
        tokenizer_file = common.save_tokenizer(tokenizer, stage)
        docs = common.copy_docs(source, stage)
        eos = int(tokenizer.eos_token_id)
        pad = tokenizer.pad_token_id
        manifest = write_manifest(
            stage,
            kind="causal-lm",
            model_file=model_file,
            model_format=fmt,
            tokenizer_file=tokenizer_file,
            files=[*model_files, tokenizer_file, *docs],
            max_seq_len=int(config.n_positions),
            special_tokens={
                "bos": int(tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos),
                "eos": eos,
                "pad": int(pad if pad is not None else eos),
            },
            model_inputs=inputs,
            quantization=quantization,
            source_model=common.source_name(src),
            license=common.license_of(source),
            extra=extra,
        )
        bar.update()
    return manifest
