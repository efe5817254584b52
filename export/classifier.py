"""Export a Hugging Face token classifier (LLMLingua-2 style) to a token-classifier bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge_lingua.bundle import Manifest, write_manifest
from edge_lingua.errors import ToolchainError
from edge_lingua_export import common

SUPPORTED = {
    "BertForTokenClassification": "BERT, mBERT, MiniLM",
    "DistilBertForTokenClassification": "DistilBERT",
    "XLMRobertaForTokenClassification": "XLM-RoBERTa (LLMLingua-2 large)",
}
KEEP_WORDS = ("keep", "preserve")
# An export whose logits differ from PyTorch by more than this is refused as broken.
MAX_EXPORT_ERROR = 1e-3
_PROBE_TEXT = (
    "Edge-lingua checks every export: the ONNX graph must give the same logits as PyTorch, "
    "for numbers like 3.14 and 2,000 too."
)


def keep_label(id2label: dict[Any, str] | None) -> int:
    """The label id whose name says keep/preserve; 1 when no name does."""
    for idx, name in (id2label or {}).items():
        if any(word in str(name).lower() for word in KEEP_WORDS):
            return int(idx)
    return 1


def max_seq_len_of(config: Any, tokenizer: Any, limit: int | None) -> int:
    """Longest window: position table (less RoBERTa's offset), tokenizer limit, 512, ``limit``."""
    positions = int(config.max_position_embeddings)
    if config.model_type in ("roberta", "xlm-roberta"):
        positions -= int(config.pad_token_id) + 1
    candidates = [positions, 512]
    if 8 <= int(tokenizer.model_max_length) < 1_000_000:
        candidates.append(int(tokenizer.model_max_length))
    if limit is not None:
        candidates.append(limit)
    return min(candidates)


def _verify(model: Any, tokenizer: Any, onnx_path: Path, inputs: list[str]) -> float:
    """Max |logit difference| between PyTorch and the ONNX graph on a probe text."""
    import onnxruntime as ort
    import torch

    encoded = tokenizer(_PROBE_TEXT, return_tensors="np")
    feeds = {name: encoded[name].astype(np.int64) for name in inputs}
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(["logits"], feeds)[0]
    with torch.no_grad():
        torch_logits = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
    return float(np.max(np.abs(onnx_logits - torch_logits)))


def export_classifier(
    src: str | Path, out: str | Path, *, max_seq_len: int | None = None, opset: int | None = None
) -> Manifest:
    """Export a token-classification checkpoint to a token-classifier bundle at ``out``."""
    common.require("torch", "transformers", "optimum.exporters.onnx", "onnx")
    from transformers import AutoModelForTokenClassification

    with common.step_bar("export classifier", 4) as bar, common.staged_output(out) as stage:
        bar.set_postfix_str("loading checkpoint")
        source = common.resolve_source(src)
        config = common.load_config(source, SUPPORTED, "export classifier")
        tokenizer = common.load_fast_tokenizer(source)
        model = common.load_model(AutoModelForTokenClassification, source)
        bar.update()
        bar.set_postfix_str("exporting to ONNX")
        model_file = common.export_onnx(model, stage, "token-classification", opset)
        inputs, outputs = common.onnx_io_names(stage / model_file)
        if "logits" not in outputs:
            raise ToolchainError(f"the exported graph has no 'logits' output (outputs: {outputs})")
        bar.update()
        bar.set_postfix_str("checking against PyTorch")
        error = _verify(model, tokenizer, stage / model_file, inputs)
        if not error <= MAX_EXPORT_ERROR:
            raise ToolchainError(
                f"the ONNX export differs from PyTorch by {error:.2e} (> {MAX_EXPORT_ERROR})"
            )
        bar.update()
        bar.set_postfix_str("writing bundle")
        tokenizer_file = common.save_tokenizer(tokenizer, stage)
        docs = common.copy_docs(source, stage)
        question = getattr(config, "edge_lingua_max_question_tokens", None)
        input_fields = ({"input_format": "question-pair", "max_question_tokens": int(question)}
                        if question else {})
        manifest = write_manifest(
            stage,
            kind="token-classifier",
            model_file=model_file,
            model_format="onnx",
            tokenizer_file=tokenizer_file,
            files=[*common.onnx_files(stage, model_file), tokenizer_file, *docs],
            max_seq_len=max_seq_len_of(config, tokenizer, max_seq_len),
            keep_label=keep_label(config.id2label),
            special_tokens={
                "bos": int(tokenizer.cls_token_id),
                "eos": int(tokenizer.sep_token_id),
                "pad": int(tokenizer.pad_token_id),
            },
            model_inputs=inputs,
            quantization="none",
            **input_fields,
            source_model=common.source_name(src),
            license=common.license_of(source),
            extra={
                "architecture": next(a for a in config.architectures if a in SUPPORTED),
                "model_type": config.model_type,
                "num_labels": int(config.num_labels),
                "id2label": {str(k): str(v) for k, v in config.id2label.items()},
                "export_max_abs_error": error,
            },
        )
        bar.update()
    return manifest
