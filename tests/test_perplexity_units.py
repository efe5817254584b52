"""Perplexity methods without a model: words, phrases, argument checks, context budget."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from edge_lingua.errors import InvalidArgumentError, ManifestError
from edge_lingua.perplexity import ranking
from edge_lingua.perplexity.onnx_scorer import _empty
from edge_lingua.perplexity.options import make_options, parse_context_budget
from edge_lingua.perplexity.scorer import Encoded, logsumexp_rows
from edge_lingua.perplexity.units import build_context, phrase_ids
from edge_lingua.result import CompressionResult
from edge_lingua.segmentation import join_units, split_units


def assert_valid_result(result: CompressionResult, contexts: list[str], allowed: float) -> None:
    """Every output context is its kept units, joined as the input had them; the budget holds."""
    units = [split_units(c) for c in contexts]
    assert result.words == [u.words() for u in units]
    for text, context, unit, mask in zip(
        result.compressed_contexts, contexts, units, result.kept_mask, strict=True
    ):
        assert text == join_units(context, unit.spans, np.asarray(mask, dtype=bool))
    assert result.compressed_tokens <= allowed


def _encoded(text: str, pieces: list[str]) -> Encoded:
    offsets, pos = [], 0
    for piece in pieces:
        offsets.append((pos, pos + len(piece)))
        pos += len(piece)
    assert pos == len(text)
    return Encoded(np.arange(len(pieces)), np.asarray(offsets))


def test_tokens_attach_to_the_word_of_their_first_visible_character() -> None:
    text = "Hello world,\n\nnew line"
    pieces = ["Hello", " wor", "ld", ",", "\n\n", "new", " line"]
    ctx = build_context(text, _encoded(text, pieces))
    assert ctx.words == ["Hello", "world", ",", "new", "line"]  # the classifier's units
    # the whitespace-only "\n\n" token goes with the word after it
    assert ctx.token_word.tolist() == [0, 1, 1, 2, 3, 3, 4]
    assert ctx.word_costs().tolist() == [1, 2, 1, 2, 1]
    keep = np.array([True, False, False, True, False])
    assert ctx.tokens_of(keep) == [0, 4, 5]


def test_phrases_cut_at_punctuation_line_breaks_and_function_words() -> None:
    text = "The big dog ran over the green hill, barking loudly\nat night"
    pieces = [text]
    ctx = build_context(text, _encoded(text, pieces))
    groups: dict[int, list[str]] = {}
    for word, pid in zip(ctx.words, phrase_ids(ctx).tolist(), strict=True):
        groups.setdefault(pid, []).append(word)
    assert list(groups.values()) == [
        ["The", "big", "dog", "ran"], ["over"], ["the", "green", "hill", ","],
        ["barking", "loudly"], ["at", "night"],
    ]


def test_logsumexp_matches_the_direct_formula_on_large_logits() -> None:
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((21, 300)) * 30 + 500).astype(np.float32)
    direct = np.log(np.exp(logits.astype(np.float64) - 500).sum(axis=1)) + 500
    assert np.allclose(logsumexp_rows(logits), direct, atol=1e-6)


def _options(**changes):
    args = dict(
        method="perplexity", instruction="", question="", force_tokens=(),
        force_context_ids=None, force_context_number=None, use_context_level_filter=True,
        condition_in_question="none", condition_compare=False, reorder_context="original",
        dynamic_context_compression_ratio=0.0, context_budget="+100", iterative_size=200,
        concate_question=True, n_contexts=3,
    )
    args.update(changes)
    return make_options(**args)


@pytest.mark.parametrize(
    "changes",
    [
        {"method": "llmlingua"},
        {"method": "longllmlingua"},  # needs a question
        {"condition_in_question": "middle"},
        {"reorder_context": "random"},
        {"force_context_ids": [3]},
        {"force_context_number": 0},
        {"dynamic_context_compression_ratio": 1.5},
        {"iterative_size": 2},
        {"context_budget": "__import__('os')"},
        {"force_tokens": "abc"},
        {"question": 3},
    ],
)
def test_bad_arguments_raise_typed_errors(changes: dict) -> None:
    with pytest.raises(InvalidArgumentError):
        _options(**changes)


def test_context_budget_is_parsed_without_eval() -> None:
    assert parse_context_budget("+100")(50) == 150
    assert parse_context_budget("-20")(50) == 30
    assert parse_context_budget("*1.5")(50) == 75
    assert _options(question="why?", method="longllmlingua").method == "longllmlingua"


def test_budget_controller_keeps_ranked_contexts_until_the_budget_is_crossed() -> None:
    lengths = [100, 40, 60, 80]
    assert ranking.select_contexts([2, 0, 1, 3], lengths, 120, (), None) == [2, 0]
    assert ranking.select_contexts([2, 0, 1, 3], lengths, 120, (3,), None) == [3, 2, 0]
    assert ranking.select_contexts([2, 0, 1, 3], lengths, 1000, (), 2) == [2, 0]


def test_reorder_and_dynamic_ratios_follow_longllmlingua() -> None:
    used = [4, 1, 3, 0, 2]
    assert ranking.reorder(used, "original") == [0, 1, 2, 3, 4]
    assert ranking.reorder(used, "sort") == used
    assert ranking.reorder(used, "two_stage") == [4, 3, 2, 0, 1]
    ratios = ranking.dynamic_ratios(used, 0.2)
    assert ratios[4] == pytest.approx(0.2) and ratios[2] == pytest.approx(-0.2)
    assert ratios[3] == pytest.approx(0.0)
    assert ranking.dynamic_ratios(used, 0.0) == dict.fromkeys(used, 0.0)


def test_gguf_piece_offsets_count_characters_not_bytes() -> None:
    from edge_lingua.perplexity.llama_scorer import char_offsets

    text = "Janet’s ducks"
    pieces = [b"Jan", b"et", "’".encode(), b"s", b" d", b"ucks"]
    offsets = char_offsets(text, text.encode(), pieces)
    assert [text[s:e] for s, e in offsets.tolist()] == ["Jan", "et", "’", "s", " d", "ucks"]
    # a piece split inside a multi-byte character still maps onto whole characters
    split = [b"Janet", "’".encode()[:1], "’".encode()[1:], b"s ducks"]
    offsets = char_offsets(text, text.encode(), split)
    assert offsets[-1].tolist() == [6, len(text)] and offsets[0].tolist() == [0, 5]
    # pieces that do not rebuild the text are found in it in order
    offsets = char_offsets("a  b", b"a  b", [b"a", b" b"])
    assert offsets.tolist() == [[0, 1], [3, 4]]


@dataclass(frozen=True)
class _CacheInput:
    """What :func:`_empty` reads of an onnxruntime ``NodeArg``."""

    name: str
    shape: list
    type: str = "tensor(float)"


@pytest.mark.parametrize(("shape", "extra", "expected"), [
    ([1, 4, "past", 16], {}, (1, 4, 0, 16)),  # the graph's own dims
    # symbolic dims: key-value heads before attention heads (grouped-query attention)
    (["b", "h", "past", "d"], {"num_key_value_heads": 2, "num_attention_heads": 8,
                               "head_dim": 8}, (1, 2, 0, 8)),
    (["b", "h", "past", "d"], {"n_head": "3", "head_dim": 5}, (1, 3, 0, 5)),
    # no head_dim: hidden size over attention heads
    ([1, 4, "past", "d"], {"hidden_size": 64, "num_attention_heads": 4}, (1, 4, 0, 16)),
    (["b", "h", "past", 6], {"num_heads": 7}, (1, 7, 0, 6)),
])
def test_empty_cache_takes_its_shape_from_the_graph_or_the_manifest(shape, extra,
                                                                     expected) -> None:
    empty = _empty(_CacheInput("past_key_values.0.key", shape), extra)
    assert empty.shape == expected and empty.dtype == np.float32
    half = _empty(_CacheInput("past_key_values.0.key", shape, "tensor(float16)"), extra)
    assert half.dtype == np.float16


def test_empty_cache_errors_name_the_input() -> None:
    name = "past_key_values.3.value"
    with pytest.raises(ManifestError, match=rf"^{name} has rank 3; expected \[batch, heads, "):
        _empty(_CacheInput(name, [1, 2, "past"]), {})
    for extra in ({"head_dim": 4}, {"num_heads": 2}, {"num_attention_heads": 2}):
        with pytest.raises(ManifestError, match=f"cannot tell the KV-cache shape of {name}"):
            _empty(_CacheInput(name, ["b", "h", "past", "d"]), extra)
    with pytest.raises(ManifestError, match=rf"^{name} has unsupported type tensor\(int64\)$"):
        _empty(_CacheInput(name, [1, 2, "past", 4], "tensor(int64)"), {})
