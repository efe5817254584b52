"""`edge-lingua export causal-lm`: GPT-2 to ONNX with past key values, and to GGUF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

from tokenizers import Tokenizer

from edge_lingua.bundle import load_bundle
from edge_lingua.cli import main
from edge_lingua.errors import UnsupportedArchitectureError
from edge_lingua_export.causal_lm import empty_past, export_causal_lm
from tests.toolchain_models import cached_bundle, cached_checkpoint, paragraphs

TEXT = paragraphs(1, seed=31, sentences_each=5)[0]
# Mean NLL tolerance (relative) of llama.cpp against PyTorch, by GGUF tensor type.
GGUF_TOLERANCE = {"f16": 1e-3, "q8_0": 1e-2}


def _ids(bundle: Path, limit: int = 100) -> list[int]:
    tokenizer = Tokenizer.from_file(str(bundle / "tokenizer.json"))
    return tokenizer.encode(TEXT).ids[:limit]


def _run(session: ort.InferenceSession, extra: dict, ids: list[int], past: dict, offset: int):
    """One step: ``ids`` after ``offset`` cached positions; returns logits and the new past."""
    x = np.asarray([ids], dtype=np.int64)
    feeds = {
        "input_ids": x,
        "attention_mask": np.ones((1, offset + len(ids)), dtype=np.int64),
        "position_ids": np.arange(offset, offset + len(ids), dtype=np.int64)[None, :],
        **past,
    }
    names = {i.name for i in session.get_inputs()}
    outputs = session.run(["logits", *extra["present_outputs"]], {k: v for k, v in feeds.items()
                                                                   if k in names})
    new_past = dict(zip(extra["past_inputs"], outputs[1:], strict=True))
    return outputs[0][0], new_past


def _torch_logprobs(src: Path, ids: list[int]) -> np.ndarray:
    import torch
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(src).eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    return torch.log_softmax(logits, dim=-1).numpy()


def test_onnx_with_past_matches_full_run(tmp_path_factory: pytest.TempPathFactory) -> None:
    src = cached_checkpoint("gpt2", tmp_path_factory)
    bundle = load_bundle(cached_bundle("gpt2", tmp_path_factory), kind="causal-lm")
    extra = bundle.manifest.extra
    assert bundle.manifest.model_format == "onnx"
    assert len(extra["past_inputs"]) == 2 * extra["num_layers"]
    session = ort.InferenceSession(str(bundle.model_path), providers=["CPUExecutionProvider"])
    ids = _ids(bundle.path)
    full, _ = _run(session, extra, ids, empty_past(extra["past_inputs"], extra), 0)

    torch_lp = _torch_logprobs(src, ids)
    shifted = full - full.max(axis=1, keepdims=True)
    onnx_lp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(onnx_lp, torch_lp, atol=1e-4, rtol=0)

    split = len(ids) // 2
    first, past = _run(session, extra, ids[:split], empty_past(extra["past_inputs"], extra), 0)
    steps = [first]
    for pos in range(split, len(ids)):  # then one token at a time through the KV cache
        logits, past = _run(session, extra, [ids[pos]], past, pos)
        steps.append(logits)
    np.testing.assert_allclose(np.concatenate(steps), full, atol=1e-4, rtol=0)


@pytest.mark.parametrize("gguf_type", ["f16", "q8_0"])
def test_gguf_logprobs_match_pytorch(
    gguf_type: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    gguf = pytest.importorskip("gguf")
    llama_cpp = pytest.importorskip("llama_cpp")
    src = cached_checkpoint("gpt2", tmp_path_factory)
    out = tmp_path / "bundle"
    manifest = export_causal_lm(src, out, fmt="gguf", gguf_type=gguf_type)
    assert (manifest.model_format, manifest.quantization) == ("gguf", gguf_type)
    assert {"model.gguf", "tokenizer.json", "README.md", "LICENSE"} <= set(manifest.files)

    reader = gguf.GGUFReader(str(out / "model.gguf"))
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.attn_qkv.weight"] == gguf_type.upper()
    assert types["position_embd.weight"] == "F32" and types["blk.0.attn_norm.weight"] == "F32"

    ids = _ids(out)
    llm = llama_cpp.Llama(model_path=str(out / "model.gguf"), logits_all=True, n_ctx=128,
                          n_threads=1, verbose=False)
    assert llm.tokenize(TEXT.encode(), add_bos=False, special=False)[: len(ids)] == ids
    llm.eval(ids)
    scores = np.asarray(llm.scores[: len(ids)], dtype=np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    llama_lp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    torch_lp = _torch_logprobs(src, ids)
    rows, nxt = np.arange(len(ids) - 1), np.asarray(ids[1:])
    llama_nll = -llama_lp[rows, nxt].mean()
    torch_nll = -torch_lp[rows, nxt].mean()
    assert abs(llama_nll - torch_nll) / torch_nll < GGUF_TOLERANCE[gguf_type]


def test_classifier_is_not_a_causal_lm(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with pytest.raises(UnsupportedArchitectureError, match="BertForTokenClassification"):
        export_causal_lm(cached_checkpoint("bert", tmp_path_factory), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_causal_lm_gguf(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                            capsys: pytest.CaptureFixture) -> None:
    src = cached_checkpoint("gpt2", tmp_path_factory)
    out = tmp_path / "lm"
    assert main(["export", "causal-lm", str(src), str(out), "--format", "gguf",
                 "--gguf-type", "q8_0"]) == 0
    assert load_bundle(out).manifest.quantization == "q8_0"
    assert "causal-lm gguf (q8_0)" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse rejects an unknown GGUF type
        main(["export", "causal-lm", str(src), str(tmp_path / "x"), "--format", "gguf",
              "--gguf-type", "q4"])
    assert not (tmp_path / "x").exists()
