"""`edge-lingua export classifier` on small random-weight BERT, DistilBERT and XLM-R models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("optimum.exporters.onnx")

from tokenizers import Tokenizer

from edge_lingua.bundle import load_bundle
from edge_lingua.cli import main
from edge_lingua.compressor import Compressor
from edge_lingua.errors import (
    CheckpointError,
    OutputExistsError,
    UnsupportedArchitectureError,
)
from edge_lingua_export.classifier import export_classifier, keep_label
from tests.toolchain_models import cached_bundle, cached_checkpoint, paragraphs

ARCHS = ("bert", "distilbert", "xlm-roberta")
TEXTS = paragraphs(3, seed=21, sentences_each=4)


def _torch_logits(src: Path, ids: list[int]) -> np.ndarray:
    import torch
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(src).eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].numpy()


@pytest.mark.parametrize("arch", ARCHS)
def test_runtime_logits_match_pytorch(arch: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The runtime's logits for every token of a text equal PyTorch's within 1e-4."""
    src = cached_checkpoint(arch, tmp_path_factory)
    bundle = cached_bundle(arch, tmp_path_factory)
    compressor = Compressor.load(bundle, providers=["cpu"])
    special = load_bundle(bundle).manifest.special_tokens
    for text in TEXTS:
        scores = compressor.score(text)
        assert len(scores.windows) == 1
        ids = [special["bos"], *scores.token_ids.tolist(), special["eos"]]
        expected = _torch_logits(src, ids)[1:-1]
        assert scores.logits.shape == expected.shape
        np.testing.assert_allclose(scores.logits, expected, atol=1e-4, rtol=0)
        assert len(compressor.compress(text, rate=0.5).kept_mask[0]) == len(scores.words)


@pytest.mark.parametrize("arch", ARCHS)
def test_bundle_manifest_and_tokenizer(arch: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    from transformers import AutoTokenizer

    src = cached_checkpoint(arch, tmp_path_factory)
    bundle = load_bundle(cached_bundle(arch, tmp_path_factory), kind="token-classifier")
    manifest = bundle.manifest
    hf = AutoTokenizer.from_pretrained(src)
    assert manifest.model_format == "onnx" and manifest.quantization == "none"
    assert manifest.keep_label == 1  # the fixtures label 1 "keep"
    assert manifest.special_tokens == {
        "bos": hf.cls_token_id, "eos": hf.sep_token_id, "pad": hf.pad_token_id
    }
    assert manifest.model_inputs[:2] == ["input_ids", "attention_mask"]
    assert ("token_type_ids" in manifest.model_inputs) == (arch == "bert")
    assert manifest.max_seq_len == 128
    assert {"README.md", "LICENSE", "tokenizer.json", "model.onnx"} <= set(manifest.files)
    assert (bundle.path / "LICENSE").read_text() == (src / "LICENSE").read_text()
    assert manifest.extra["export_max_abs_error"] < 1e-4
    runtime_tok = Tokenizer.from_file(str(bundle.tokenizer_path))
    for text in TEXTS:
        assert runtime_tok.encode(text).ids == hf(text)["input_ids"]


def test_keep_label_from_label_names() -> None:
    assert keep_label({0: "preserve", 1: "discard"}) == 0
    assert keep_label({"0": "DROP", "1": "KEEP"}) == 1
    assert keep_label({0: "LABEL_0", 1: "LABEL_1"}) == 1
    assert keep_label(None) == 1


def test_unsupported_architecture_is_refused(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    gpt2 = cached_checkpoint("gpt2", tmp_path_factory)
    with pytest.raises(UnsupportedArchitectureError, match="GPT2LMHeadModel"):
        export_classifier(gpt2, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError):
        export_classifier(tmp_path / "no-such-model", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"config\.json"):
        export_classifier(tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_corrupt_checkpoint(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(cached_checkpoint("bert", tmp_path_factory), broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    with pytest.raises(CheckpointError, match="weights"):
        export_classifier(broken, tmp_path / "out")
    (broken / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config"):
        export_classifier(broken, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken"]  # no partial output left


def test_existing_output_is_never_overwritten(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    with pytest.raises(OutputExistsError):
        export_classifier(cached_checkpoint("bert", tmp_path_factory), out)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]


def test_cli_export_classifier(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture
) -> None:
    src = cached_checkpoint("distilbert", tmp_path_factory)
    out = tmp_path / "bundle"
    assert main(["export", "classifier", str(src), str(out), "--max-seq-len", "64"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["max_seq_len"] == 64 and manifest["kind"] == "token-classifier"
    assert "DistilBertForTokenClassification" in capsys.readouterr().out
    assert main(["export", "classifier", str(src), str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "exists" in err[-1]
