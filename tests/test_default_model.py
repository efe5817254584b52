"""The default compressor shipped inside the package (edge_lingua/models/default)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_lingua.bundle import load_bundle
from edge_lingua.compressor import Compressor, default_bundle_path, load_tokenizer
from edge_lingua.segmentation import segment
from edge_lingua.selection import select

MAX_BUNDLE_BYTES = 30 * 1024 * 1024
_DIGIT = re.compile(r"\d")


def gsm8k_questions(data: Path, n: int) -> list[str]:
    with (data / "gsm8k" / "test.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(next(handle))["question"] for _ in range(n)]


@pytest.fixture(scope="module")
def compressor() -> Compressor:
    return Compressor.load()  # no argument: the shipped model, no download


def test_shipped_bundle_is_small_int8_and_says_its_licence() -> None:
    bundle = load_bundle(default_bundle_path(), kind="token-classifier")  # checksums verified
    manifest = bundle.manifest
    assert manifest.quantization == "dynamic-int8"
    assert manifest.model_format == "onnx"
    size = sum((bundle.path / name).stat().st_size for name in manifest.files)
    size += (bundle.path / "manifest.json").stat().st_size
    assert size < MAX_BUNDLE_BYTES
    assert "Gemma" in manifest.license and "Apache-2.0" in manifest.license
    assert {"README.md", "LICENSE"} <= set(manifest.files)
    assert "Model Derivative" in bundle.file("LICENSE").read_text(encoding="utf-8")


def test_shipped_model_runs_fused_attention_with_three_fp32_projections() -> None:
    """The shipped graph is the fused one (docs/MODEL_CARD.md): six QAttention blocks, and the
    FFN outputs of layers 0-2 left in fp32 for the 98% fidelity gate."""
    import onnx

    bundle = load_bundle(default_bundle_path(), kind="token-classifier")
    nodes = onnx.load(str(bundle.model_path)).graph.node
    ops = [n.op_type for n in nodes]
    assert ops.count("QAttention") == 6 and "Softmax" not in ops
    assert sorted(n.name for n in nodes if n.op_type == "MatMul") == [
        f"/bert/encoder/layer.{i}/output/dense/MatMul" for i in range(3)]
    assert bundle.manifest.extra["quantization"]["fused"]["Attention"] == 6


def test_compresses_a_real_gsm8k_prompt(compressor: Compressor, shared_data: Path) -> None:
    question = gsm8k_questions(shared_data, 1)[0]
    result = compressor.compress(question, rate=0.5)
    assert 0 < result.compressed_tokens <= 0.5 * result.origin_tokens + 1
    kept = [w for w, k in zip(result.words[0], result.kept_mask[0], strict=True) if k]
    assert kept
    # every kept word appears, in order, in the output
    position = 0
    for word in kept:
        position = result.compressed_prompt.lower().index(word.lower(), position) + len(word)


def test_keeps_numbers_far_better_than_random(compressor: Compressor, shared_data: Path) -> None:
    questions = gsm8k_questions(shared_data, 12)
    tokenizer = load_tokenizer(compressor.bundle.tokenizer_path)
    ours = kept_random = numbers = 0.0
    rng = np.random.default_rng(0)
    for question in questions:
        result = compressor.compress(question, rate=0.5, force_reserve_digit=False)
        digits = np.array([bool(_DIGIT.search(w)) for w in result.words[0]])
        ours += float((digits & np.array(result.kept_mask[0])).sum())
        seg = segment(tokenizer, question)
        costs = np.bincount(seg.token_word, minlength=seg.n_words).astype(float)
        none = np.zeros(seg.n_words, dtype=bool)
        for _ in range(20):  # expected share kept by random word dropping at the same budget
            keep = select(rng.random(seg.n_words), costs, none, 0.5 * costs.sum())
            kept_random += float((digits & keep).sum()) / 20
        numbers += float(digits.sum())
    assert numbers >= 20
    assert ours / numbers >= 0.9
    assert ours / numbers >= kept_random / numbers + 0.25


def test_cli_compress_uses_the_shipped_model(shared_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "prompt.txt"
    path.write_text(gsm8k_questions(shared_data, 1)[0], encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "edge_lingua.cli", "compress", str(path),
                           "--rate", "0.5", "--json"], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    result = json.loads(proc.stdout)
    assert 0 < result["compressed_tokens"] < result["origin_tokens"]


def test_shipped_model_is_question_aware_and_the_question_keeps_answers(
        compressor: Compressor, shared_data: Path) -> None:
    """On 40 held-out XQuAD paragraphs (evaluation articles, English) the question keeps the
    gold answer whole at rate 0.33 far more often than the same model without it."""
    from benchmarks.question_aware import answer_retained, eval_questions

    manifest = compressor.bundle.manifest
    assert compressor.question_aware and manifest.input_format == "question-pair"
    questions = eval_questions("en", 40, seed=3)
    asked = plain = 0
    for q in questions:
        result = compressor.compress(q.paragraph, question=q.question, rate=0.33)
        assert not result.question_truncated
        asked += answer_retained(q.answers, result.compressed_prompt)
        plain += answer_retained(q.answers, compressor.compress(q.paragraph, rate=0.33)
                                 .compressed_prompt)
    assert asked / len(questions) >= 0.6
    assert asked >= plain + 0.25 * len(questions)
