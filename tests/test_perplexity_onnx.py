"""Perplexity methods on an ONNX causal-LM bundle made by edge-lingua's own exporter.

The GPT-2 is tiny and random (no pretrained GPT-2 weights exist offline), so these tests
check the machinery exactly: log-probabilities against PyTorch, KV-cache windows, rewinds
and roll-overs, budgets, subsequence output, typed errors and the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_lingua.bundle import load_bundle
from edge_lingua.errors import (
    BundleError,
    ChecksumMismatchError,
    EmptyInputError,
    InferenceError,
    InvalidArgumentError,
    WrongBundleKindError,
)
from edge_lingua.perplexity import PerplexityCompressor
from edge_lingua.perplexity.onnx_scorer import OnnxCausalLMScorer
from edge_lingua.providers import SessionConfig
from edge_lingua.segmentation import split_units
from tests.test_perplexity_units import assert_valid_result
from tests.toolchain_models import gsm8k_texts, paragraphs

pytestmark = pytest.mark.slow
METHODS = ("perplexity", "self-information", "longllmlingua")


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(HF checkpoint, ONNX causal-lm bundle) of a tiny random GPT-2."""
    pytest.importorskip("torch")
    from tests.toolchain_models import cached_bundle, cached_checkpoint

    return (cached_checkpoint("gpt2", tmp_path_factory),
            cached_bundle("gpt2", tmp_path_factory))


@pytest.fixture(scope="module")
def compressor(gpt2: tuple[Path, Path]) -> PerplexityCompressor:
    return PerplexityCompressor.load(gpt2[1], threads=1)


def _torch_logprobs(src: Path, ids: list[int], bos: int) -> np.ndarray:
    import torch
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(src).eval()
    with torch.no_grad():
        logits = model(torch.tensor([[bos, *ids]])).logits[0, :-1].double()
    return torch.log_softmax(logits, -1)[torch.arange(len(ids)), torch.tensor(ids)].numpy()


def test_window_logprobs_match_pytorch(gpt2: tuple[Path, Path]) -> None:
    src, path = gpt2
    bundle = load_bundle(path, kind="causal-lm")
    scorer = OnnxCausalLMScorer(bundle, SessionConfig(threads=1), window=7)
    ids = scorer.encode(paragraphs(1, seed=5)[0]).ids[:100].tolist()
    got = scorer.token_logprobs(ids)
    assert got.shape == (len(ids),)
    assert np.abs(got - _torch_logprobs(src, ids, scorer.bos_id)).max() < 1e-4
    # rewinding to a prefix and feeding the rest gives the same numbers
    scorer.rewind(1 + 40)
    assert np.abs(scorer.extend(ids[40:]) - got[40:]).max() < 1e-4


def test_inputs_longer_than_the_context_roll_over(compressor: PerplexityCompressor) -> None:
    scorer = compressor.scorer
    ids = scorer.encode(" ".join(paragraphs(4, seed=6))).ids.tolist()
    assert len(ids) > 2 * scorer.max_context
    got = scorer.token_logprobs(ids)
    assert got.shape == (len(ids),) and np.isfinite(got).all() and (got <= 0).all()
    assert scorer.cached <= scorer.max_context
    # the first window is exactly what a short input gets
    assert np.allclose(got[:100], scorer.token_logprobs(ids[:100]), atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_methods_respect_budgets_and_keep_a_subsequence(
    compressor: PerplexityCompressor, method: str
) -> None:
    contexts = gsm8k_texts("test", 4)
    question = "A robe takes 2 bolts of blue fiber. How many bolts in total does it take?"
    for kwargs in ({"rate": 0.4}, {"target_token": 120}):
        result = compressor.compress(
            contexts, method=method, question=question, iterative_size=40, **kwargs
        )
        budget = kwargs.get("target_token") or kwargs.get("rate", 0) * result.origin_tokens
        assert_valid_result(result, contexts, budget)
        assert result.method == method and result.provider == "CPUExecutionProvider"
        assert 0 < result.compressed_tokens < result.origin_tokens
        again = compressor.compress(
            contexts, method=method, question=question, iterative_size=40, **kwargs
        )
        assert again.compressed_prompt == result.compressed_prompt


def test_forced_words_instruction_and_question_survive(compressor: PerplexityCompressor) -> None:
    contexts = gsm8k_texts("test", 2, offset=10)
    result = compressor.compress(
        contexts, rate=0.3, instruction="Answer briefly.", question="What is the total?",
        force_tokens=["=", "####"],
    )
    assert result.compressed_prompt.startswith("Answer briefly.\n\n")
    assert result.compressed_prompt.endswith("\n\nWhat is the total?")
    # contexts the context-level filter kept keep every forced word
    survivors = [(w, m) for w, m in zip(result.words, result.kept_mask, strict=True) if any(m)]
    assert survivors
    for words, mask in survivors:
        assert all(kept for word, kept in zip(words, mask, strict=True) if word in ("=", "####"))


def test_rate_one_keeps_everything(compressor: PerplexityCompressor) -> None:
    text = paragraphs(1, seed=9)[0]
    result = compressor.compress(text, method="self-information", rate=1.0)
    assert result.compressed_prompt == " ".join(text.split())


def test_target_tokenizer_counts_the_budget(
    compressor: PerplexityCompressor,
) -> None:
    from tokenizers import Tokenizer

    from tests.toolchain_models import minilm_dir

    folder = minilm_dir()
    if folder is None:
        pytest.skip("the MiniLM package (a real tokenizer.json) is not installed")
    target = Tokenizer.from_file(str(folder / "tokenizer.json"))
    other = PerplexityCompressor(compressor.scorer, target)
    text = paragraphs(1, seed=11)[0]
    result = other.compress(text, target_token=40)
    assert result.origin_tokens == len(target.encode(text, add_special_tokens=False).ids)
    assert result.compressed_tokens <= 40


@pytest.mark.parametrize(
    ("context", "kwargs", "error"),
    [
        ("", {}, EmptyInputError),
        ([" ", "\n"], {}, EmptyInputError),
        ("some text", {"rate": 0.0}, InvalidArgumentError),
        ("some text", {"rate": 1.5}, InvalidArgumentError),
        ("some text", {"target_token": 0}, InvalidArgumentError),
        ("some text", {"method": "llmlingua3"}, InvalidArgumentError),
        ("some text", {"method": "longllmlingua"}, InvalidArgumentError),
        (42, {}, InvalidArgumentError),
    ],
)
def test_bad_input_raises_typed_errors(
    compressor: PerplexityCompressor, context, kwargs: dict, error: type
) -> None:
    with pytest.raises(error):
        compressor.compress(context, **kwargs)


def test_a_classifier_bundle_is_refused(tiny_bert_bundle: Path) -> None:
    with pytest.raises(WrongBundleKindError):
        PerplexityCompressor.load(tiny_bert_bundle)


def test_load_compressor_opens_what_the_bundle_holds(
    gpt2: tuple[Path, Path], tiny_bert_bundle: Path, tmp_path: Path
) -> None:
    from edge_lingua.compressor import Compressor, load_compressor

    assert isinstance(load_compressor(gpt2[1], threads=1), PerplexityCompressor)
    # a classifier has no context size: the option is dropped, not refused
    classifier = load_compressor(tiny_bert_bundle, threads=1, n_ctx=10)
    assert isinstance(classifier, Compressor) and classifier.bundle.path == tiny_bert_bundle
    with pytest.raises(InvalidArgumentError, match="threads"):  # the options reach the loader
        load_compressor(tiny_bert_bundle, threads=0)
    assert isinstance(load_compressor(threads=1), Compressor)  # no bundle: the shipped model
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"not a gguf file")
    with pytest.raises(BundleError, match=r"llama\.cpp could not load"):
        load_compressor(not_gguf, n_ctx=128)
    with pytest.raises(InvalidArgumentError, match="n_ctx must be"):  # passed on to llama.cpp
        load_compressor(not_gguf, n_ctx=10)
    with pytest.raises(InvalidArgumentError, match="n_ctx must be"):
        load_compressor(str(not_gguf), n_ctx=10)


def test_cli_compress_with_a_perplexity_method(
    gpt2: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge_lingua.cli import main

    text = paragraphs(1, seed=12)[0]
    source = tmp_path / "in.txt"
    source.write_text(text, encoding="utf-8")
    code = main(["compress", str(source), "--bundle", str(gpt2[1]), "--method",
                 "self-information", "--rate", "0.5", "--threads", "1", "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["method"] == "self-information"
    pieces = set(text.split()) | set(split_units(text).words())
    assert set(data["compressed_prompt"].split()) <= pieces
    assert data["compressed_tokens"] <= 0.5 * data["origin_tokens"]


def test_longllmlingua_options_reorder_and_contrast(compressor: PerplexityCompressor) -> None:
    contexts = gsm8k_texts("test", 5, offset=20)
    question = "How many dollars does he earn in a week?"
    ranking = compressor.rank(contexts, question)
    assert sorted(ranking) == list(range(5))
    result = compressor.compress(
        contexts, method="longllmlingua", question=question, target_token=150,
        condition_in_question="before", condition_compare=True, reorder_context="sort",
        dynamic_context_compression_ratio=0.3, context_budget="*2", iterative_size=40,
    )
    assert_valid_result(result, contexts, 150)
    kept = [i for i, text in enumerate(result.compressed_contexts) if text]
    best_first = [i for i in compressor.rank(contexts, question, "before") if i in kept]
    body = result.compressed_prompt.removesuffix(question)
    assert body.startswith(result.compressed_contexts[best_first[0]])


# --- loading options, tokenizer contract and graph variants -----------------------------------
UNIGRAM = {"the": 0.3, "cat": 0.1, "sat": 0.1, "zebra": 0.001}


@pytest.fixture
def unigram_bundle(tmp_path: Path) -> Path:
    """A hand-set unigram causal LM (tests/controlled_models.py): no torch, built in ms."""
    from tests.controlled_models import unigram_causal_lm

    return unigram_causal_lm(tmp_path / "unigram", UNIGRAM)


def test_load_checks_checksums_unless_told_not_to(unigram_bundle: Path) -> None:
    tokenizer = unigram_bundle / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    with pytest.raises(ChecksumMismatchError, match=r"tokenizer\.json"):
        PerplexityCompressor.load(unigram_bundle)
    assert PerplexityCompressor.load(unigram_bundle, verify=False).count_tokens("the cat") == 2


def test_a_bundle_folder_named_like_a_gguf_file_is_read_as_a_bundle(tmp_path: Path) -> None:
    from tests.controlled_models import unigram_causal_lm

    folder = unigram_causal_lm(tmp_path / "unigram.gguf", UNIGRAM)
    assert PerplexityCompressor.load(folder).provider == "CPUExecutionProvider"


def test_load_passes_the_provider_preference_to_onnxruntime(unigram_bundle: Path) -> None:
    with pytest.warns(RuntimeWarning, match="CoreMLExecutionProvider not available"):
        compressor = PerplexityCompressor.load(unigram_bundle, providers=["coreml"])
    assert compressor.provider == "CPUExecutionProvider"


def test_load_passes_threads_to_onnxruntime(unigram_bundle: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="threads must be a positive integer, got 0"):
        PerplexityCompressor.load(unigram_bundle, threads=0)


def test_load_counts_the_budget_with_the_target_tokenizer(
    unigram_bundle: Path, tmp_path: Path
) -> None:
    from tests.controlled_models import wordpiece_tokenizer

    target = tmp_path / "target-tokenizer.json"
    wordpiece_tokenizer().save(str(target))
    compressor = PerplexityCompressor.load(unigram_bundle, target_tokenizer=str(target))
    # one word for the scorer's tokenizer, five WordPiece pieces (z ##e ##b ##r ##a)
    assert compressor.scorer.count_tokens("zebra") == 1
    assert compressor.count_tokens("zebra") == 5


@pytest.mark.parametrize(("text", "words", "spans"), [
    ("the cat", ["the", "cat"], [[0, 3], [4, 7]]),
    ("", [], []),
])
def test_encode_gives_int64_ids_and_spans_without_special_tokens(
    unigram_bundle: Path, text: str, words: list[str], spans: list[list[int]]
) -> None:
    from tokenizers import Tokenizer
    from tokenizers.processors import TemplateProcessing

    from tests.toolchain_models import rewrite_checksums

    # a tokenizer that adds BOS itself, as Llama's does: the scorer adds BOS once, on its own
    path = unigram_bundle / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    tokenizer.save(str(path))
    rewrite_checksums(unigram_bundle)
    scorer = PerplexityCompressor.load(unigram_bundle).scorer
    encoded = scorer.encode(text)
    assert encoded.ids.dtype == np.int64 and encoded.offsets.dtype == np.int64
    assert encoded.ids.tolist() == [tokenizer.token_to_id(w) for w in words]
    assert encoded.offsets.shape == (len(words), 2) and encoded.offsets.tolist() == spans


def test_the_onnx_scorer_feeds_128_tokens_a_pass_by_default(unigram_bundle: Path) -> None:
    scorer = OnnxCausalLMScorer(load_bundle(unigram_bundle), SessionConfig(threads=1))
    assert scorer.max_context == 256 and scorer.window == 128


def _reverse_present_outputs(model) -> None:
    outputs = list(model.graph.output)
    del model.graph.output[:]
    model.graph.output.extend([outputs[0], *outputs[:0:-1]])


def _symbolic_cache_dims(model) -> None:
    for value in model.graph.input:
        if value.name.startswith("past_key_values."):
            dims = value.type.tensor_type.shape.dim
            dims[1].dim_param, dims[3].dim_param = "num_heads", "head_dim"


@pytest.mark.parametrize("edit", [_reverse_present_outputs, _symbolic_cache_dims])
def test_graph_variants_score_like_the_exported_graph(
    gpt2: tuple[Path, Path], tmp_path: Path, edit
) -> None:
    """Present outputs listed in another order than the past inputs; cache dims left symbolic
    in the graph (the manifest's ``extra`` gives heads and head_dim)."""
    import shutil

    import onnx

    from tests.toolchain_models import rewrite_checksums

    copy = Path(shutil.copytree(gpt2[1], tmp_path / "bundle"))
    model = onnx.load(str(copy / "model.onnx"))
    edit(model)
    onnx.save(model, str(copy / "model.onnx"))
    rewrite_checksums(copy)
    config = SessionConfig(threads=1)
    reference = OnnxCausalLMScorer(load_bundle(gpt2[1]), config, window=16)
    edited = OnnxCausalLMScorer(load_bundle(copy), config, window=16)
    ids = reference.encode(paragraphs(1, seed=7)[0]).ids[:40].tolist()
    assert np.allclose(edited.token_logprobs(ids), reference.token_logprobs(ids), atol=1e-5)


def test_a_failing_forward_pass_raises_inference_error(gpt2: tuple[Path, Path]) -> None:
    scorer = OnnxCausalLMScorer(load_bundle(gpt2[1]), SessionConfig(threads=1))
    with pytest.raises(InferenceError, match=r"^onnxruntime failed on the causal LM: "):
        scorer.token_logprobs([5, 10_000])  # the vocabulary has 700 ids


@pytest.mark.parametrize(("condition", "expected"), [
    ("none", [1, 2, 0]),    # by its own surprisal, highest first: zebra (6.9), cat sat, the
    ("before", [0, 2, 1]),  # by its surprisal after the question, lowest first
    ("after", [0, 1, 2]),   # a unigram's question costs the same after each: ties keep order
])
def test_contexts_are_ranked_by_the_surprisal_the_condition_names(
        unigram_bundle: Path, condition: str, expected: list[int]) -> None:
    from edge_lingua.perplexity.ranking import rank_contexts
    from edge_lingua.perplexity.units import build_context

    scorer = PerplexityCompressor.load(unigram_bundle).scorer
    texts = ["the the the", "zebra zebra", "cat sat"]
    contexts = [build_context(text, scorer.encode(text)) for text in texts]
    assert rank_contexts(scorer, contexts, "which cat", condition) == expected
    if condition != "none":  # the public rank() takes the question-aware conditions
        compressor = PerplexityCompressor.load(unigram_bundle)
        assert compressor.rank(texts, "which cat", condition=condition) == expected
