"""The small model shipped beside the default (edge_lingua/models/small): a 3-layer student
distilled from the default (training.distill)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from edge_lingua.bundle import load_bundle
from edge_lingua.compressor import Compressor, default_bundle_path

SMALL = Path(str(resources.files("edge_lingua") / "models" / "small"))
MAX_BUNDLE_BYTES = 20 * 1024 * 1024


def _gsm8k(data: Path, n: int) -> list[str]:
    with (data / "gsm8k" / "test.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(next(handle)) for _ in range(n)]
    return [f"{row['question']}\n{row['answer']}" for row in rows]


@pytest.fixture(scope="module")
def small() -> Compressor:
    return Compressor.load(SMALL, providers=["cpu"], threads=2)


def test_small_bundle_is_a_valid_three_layer_int8_bundle_that_says_its_licence() -> None:
    import onnx

    bundle = load_bundle(SMALL, kind="token-classifier")  # manifest and checksums verified
    manifest = bundle.manifest
    assert manifest.quantization == "dynamic-int8"
    assert manifest.max_seq_len == 512 and manifest.keep_label == 1
    assert "Gemma" in manifest.license and "Apache-2.0" in manifest.license
    assert {"README.md", "LICENSE", "fidelity.json"} <= set(manifest.files)
    assert "Model Derivative" in bundle.file("LICENSE").read_text(encoding="utf-8")
    size = sum((bundle.path / name).stat().st_size for name in manifest.files)
    assert size < MAX_BUNDLE_BYTES
    graph = onnx.load(str(bundle.model_path), load_external_data=False).graph
    layers = {n.name.split("/")[3] for n in graph.node if n.name.startswith("/bert/encoder/layer.")}
    assert layers == {"layer.0", "layer.1", "layer.2"}
    fidelity = json.loads(bundle.file("fidelity.json").read_text(encoding="utf-8"))
    assert fidelity["passed"] is True


def test_shipped_models_load_by_name_and_a_local_folder_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    assert Compressor.load("small", providers=["cpu"]).bundle.path == SMALL
    assert Compressor.load("default", providers=["cpu"]).bundle.path == default_bundle_path()
    assert Compressor.load(providers=["cpu"]).bundle.path == default_bundle_path()
    shutil.copytree(SMALL, tmp_path / "default")
    monkeypatch.chdir(tmp_path)
    assert Compressor.load("default", providers=["cpu"]).bundle.path == Path("default")


def test_small_model_runs_fused_attention() -> None:
    """Quantized like the default (docs/MODEL_CARD.md): fused, no fp32 MatMul left."""
    import onnx

    ops = [n.op_type for n in onnx.load(str(SMALL / "model.onnx")).graph.node]
    assert ops.count("QAttention") == 3 and "MatMul" not in ops and "Softmax" not in ops


def test_small_model_compresses_faithfully(small: Compressor, shared_data: Path) -> None:
    text = _gsm8k(shared_data, 1)[0]
    result = small.compress(text, rate=0.33)
    assert 0 < result.compressed_tokens <= 0.33 * result.origin_tokens + 1
    kept = [w for w, k in zip(result.words[0], result.kept_mask[0], strict=True) if k]
    position = 0  # every kept word, in order, in the output
    for word in kept:
        position = result.compressed_prompt.index(word, position) + len(word)
    assert small.compress(text, rate=1.0).compressed_prompt == text


def test_compress_many_equals_compress_on_the_small_model(
        small: Compressor, shared_data: Path) -> None:
    texts = _gsm8k(shared_data, 12)
    prompts: list[str | list[str]] = ["\n\n".join(texts[:8]), *texts[8:], texts[:2]]
    many = small.compress_many(prompts, rate=0.33)
    for prompt, batched in zip(prompts, many, strict=True):
        alone = small.compress(prompt, rate=0.33)
        assert batched.kept_mask == alone.kept_mask
        assert batched.compressed_prompt == alone.compressed_prompt


def test_small_model_keeps_mostly_the_words_the_default_keeps(
        small: Compressor, shared_data: Path) -> None:
    default = Compressor.load(default_bundle_path(), providers=["cpu"], threads=2)
    text = "\n\n".join(_gsm8k(shared_data, 10))
    ours = np.asarray(small.compress(text, rate=0.5).kept_mask[0])
    theirs = np.asarray(default.compress(text, rate=0.5).kept_mask[0])
    f1 = 2 * float((ours & theirs).sum()) / float(ours.sum() + theirs.sum())
    assert f1 > 0.8
