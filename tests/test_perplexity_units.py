"""Perplexity methods without a real model: words, phrases, argument checks, context budget,
and the scorer's cache handling on a numpy causal LM whose logits are set by hand."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from edge_lingua.errors import InvalidArgumentError, ManifestError
from edge_lingua.perplexity import PerplexityCompressor, ranking, token_level
from edge_lingua.perplexity.onnx_scorer import _empty
from edge_lingua.perplexity.options import make_options, parse_context_budget
from edge_lingua.perplexity.scorer import CausalLMScorer, Encoded, logsumexp_rows
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
    ("changes", "message"),
    [
        ({"method": "llmlingua"},
         "method must be one of perplexity, self-information, longllmlingua; got 'llmlingua'"),
        ({"method": "longllmlingua", "question": "  "},
         "method 'longllmlingua' ranks contexts by a question: give one"),
        ({"condition_in_question": "middle"},
         "condition_in_question must be one of none, before, after; got 'middle'"),
        ({"reorder_context": "random"},
         "reorder_context must be one of original, sort, two_stage; got 'random'"),
        ({"force_context_ids": [3]},
         "force_context_ids must be context indices in [0, 3), got [3]"),
        ({"force_context_ids": [-1]},
         "force_context_ids must be context indices in [0, 3), got [-1]"),
        ({"force_context_ids": [True]},
         "force_context_ids must be context indices in [0, 3), got [True]"),
        ({"force_context_number": 0}, "force_context_number must be >= 1, got 0"),
        ({"force_context_number": 1.0}, "force_context_number must be >= 1, got 1.0"),
        ({"dynamic_context_compression_ratio": 1.5},
         "dynamic_context_compression_ratio must be in [0, 1], got 1.5"),
        ({"dynamic_context_compression_ratio": -0.1},
         "dynamic_context_compression_ratio must be in [0, 1], got -0.1"),
        ({"dynamic_context_compression_ratio": True},
         "dynamic_context_compression_ratio must be in [0, 1], got True"),
        ({"dynamic_context_compression_ratio": "0.5"},
         "dynamic_context_compression_ratio must be in [0, 1], got '0.5'"),
        ({"iterative_size": 7}, "iterative_size must be an integer >= 8, got 7"),
        ({"iterative_size": 8.0}, "iterative_size must be an integer >= 8, got 8.0"),
        ({"context_budget": "__import__('os')"},
         "context_budget must look like '+100', '-50' or '*1.5', got \"__import__('os')\""),
        ({"context_budget": 100}, "context_budget must look like '+100', '-50' or '*1.5', got 100"),
        ({"context_budget": "+" + "9" * 400},
         "context_budget value must be finite, got '+" + "9" * 400 + "'"),
        ({"force_tokens": "abc"}, "force_tokens must be a list of strings, not one string"),
        ({"force_tokens": ["ok", ""]}, "force_tokens must be non-empty strings"),
        ({"force_tokens": ["ok", 5]}, "force_tokens must be non-empty strings"),
        ({"question": 3}, "question must be a string, got int"),
        ({"instruction": None}, "instruction must be a string, got NoneType"),
    ],
)
def test_bad_arguments_raise_typed_errors_naming_the_argument(changes: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"^{re.escape(message)}$"):
        _options(**changes)


def test_arguments_on_the_edges_of_their_ranges_are_taken_as_given() -> None:
    options = _options(
        method="longllmlingua", question="why?", instruction="Answer.", force_tokens=["x"],
        force_context_ids=[0, 2], force_context_number=1, condition_in_question="after",
        condition_compare=1, reorder_context="two_stage", dynamic_context_compression_ratio=1,
        iterative_size=8, concate_question=0, use_context_level_filter=0,
    )
    assert (options.method, options.question, options.instruction) == (
        "longllmlingua", "why?", "Answer.")
    assert options.force_tokens == ("x",) and options.force_context_ids == (0, 2)
    assert options.force_context_number == 1 and options.iterative_size == 8
    assert (options.condition_in_question, options.reorder_context) == ("after", "two_stage")
    assert options.condition_compare is True and options.concate_question is False
    assert options.use_context_level_filter is False
    assert options.dynamic_context_compression_ratio == 1.0
    assert _options(dynamic_context_compression_ratio=0).dynamic_context_compression_ratio == 0


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
    # in order, from where the last one ended: a repeated word is found again further on;
    # a piece of spaces, one the text does not hold and a broken UTF-8 byte take no characters
    text = "ab ab ab q"
    pieces = [b"ab", b" ab", b"  ", b"Z", b"\xc3", b" ab", b" q"]
    assert char_offsets(text, text.encode(), pieces).tolist() == [
        [0, 2], [3, 5], [5, 5], [5, 5], [5, 5], [6, 8], [9, 10]]


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
        with pytest.raises(ManifestError, match=rf"^cannot tell the KV-cache shape of {name}: .*"
                           r"the manifest's extra lacks num_heads \(or num_key_value_heads\) "
                           r"and head_dim$"):
            _empty(_CacheInput(name, ["b", "h", "past", "d"]), extra)
    with pytest.raises(ManifestError, match=rf"^{name} has unsupported type tensor\(int64\)$"):
        _empty(_CacheInput(name, [1, 2, "past", 4], "tensor(int64)"), {})


# --- a causal LM in numpy: logits set by hand, a list for a KV cache ---------------------------
class _TableScorer(CausalLMScorer):
    """Next-token logits are ``table[last token]`` (a bigram table); the KV cache is a list
    (``kv``) and every forward pass is recorded as ``(ids, all_rows)``. Words of ``words`` are
    the vocabulary of a whitespace tokenizer (``<unk>`` for the rest)."""

    provider = "numpy"

    def __init__(self, table: np.ndarray, bos_id: int | None, max_context: int = 64,
                 window: int = 8, words: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.table = table
        self.bos_id, self.max_context, self.window = bos_id, max_context, window
        self.vocab = {w: i for i, w in enumerate(words)}
        self.kv: list[int] = []
        self.calls: list[tuple[list[int], bool]] = []

    def encode(self, text: str) -> Encoded:
        spans = [m.span() for m in re.finditer(r"\S+", text)]
        ids = [self.vocab.get(text[s:e], self.vocab.get("<unk>", 0)) for s, e in spans]
        return Encoded(np.asarray(ids, dtype=np.int64),
                       np.asarray(spans, dtype=np.int64).reshape(-1, 2))

    def _forward(self, ids: Sequence[int], n_past: int, all_rows: bool) -> np.ndarray:
        del self.kv[n_past:]
        self.kv.extend(ids)
        self.calls.append((list(ids), all_rows))
        rows = self.table[np.asarray(ids)]
        return rows if all_rows else rows[-1:]

    def _reset_cache(self) -> None:
        self.kv.clear()


def _log_softmax(row: np.ndarray) -> np.ndarray:
    return row - np.log(np.exp(row - row.max()).sum()) - row.max()


def _bigram(bos_id: int | None = 0, vocab: int = 16, **kwargs) -> _TableScorer:
    table = np.random.default_rng(7).standard_normal((vocab, vocab)).astype(np.float32) * 3
    return _TableScorer(table, bos_id, **kwargs)


def _unigram(probs: dict[str, float]) -> _TableScorer:
    """Every token's probability is ``probs[word]`` wherever it stands (BOS is ``<s>``)."""
    words = ("<s>", "<unk>", *probs)
    row = np.log([1e-6, 1e-6, *probs.values()]).astype(np.float32)
    return _TableScorer(np.tile(row, (len(words), 1)), 0, words=words)


def test_a_new_scorer_starts_empty_and_cannot_predict_its_first_token() -> None:
    scorer = _bigram(bos_id=None)
    assert scorer.cached == 0
    got = scorer.extend([3, 5])
    assert got[0] == 0.0  # nothing before it (no BOS)
    assert got[1] == pytest.approx(_log_softmax(scorer.table[3].astype(np.float64))[5])


# max_context 8, window 4: [BOS 1 2 3 4] [5 6 7] fill it; the last 4 tokens (4 5 6 7) go on
# after a fresh BOS, then [8 9 10] fill it again and (7 8 9 10) go on, then [11 12]
ROLLED = [0, 7, 8, 9, 10, 11, 12]
# the same with the BOS id in the text where the first roll-over cuts: that BOS is not doubled,
# [BOS 5 6 7] go on, then [8 9 10 11] fill it and (8 9 10 11) go on, then [12]
ROLLED_AT_BOS = [0, 8, 9, 10, 11, 12]


@pytest.mark.parametrize(("ids", "context"), [
    (list(range(1, 13)), ROLLED),
    ([1, 2, 3, 0, *range(5, 13)], ROLLED_AT_BOS),
])
def test_a_full_context_restarts_from_bos_and_the_most_recent_half(
    ids: list[int], context: list[int]
) -> None:
    scorer = _bigram(max_context=8, window=4)
    got = scorer.token_logprobs(ids)
    assert scorer.kv == context and scorer.cached == len(context)
    # a bigram model needs only the token before: the scores are those of one long window
    assert np.allclose(got, _bigram(max_context=64).token_logprobs(ids), atol=1e-6)
    # every token's logits are computed once; the re-fed tail only conditions what follows
    scored = [i for step, all_rows in scorer.calls if all_rows for i in step]
    assert scored == ids


def test_self_information_has_a_value_for_every_phrase() -> None:
    scorer = _TableScorer(np.zeros((8, 8), dtype=np.float32), bos_id=0)  # uniform: log 8 each
    # "dog" holds the second token, so the phrase "the cat" holds none
    text = "The dog, the cat"
    context = build_context(text, _encoded(text, ["The", " dog, the cat"]))
    assert phrase_ids(context).tolist() == [0, 0, 0, 1, 1]
    empty = build_context("", Encoded(np.zeros(0, dtype=np.int64), np.zeros((0, 2))))
    phrases, values, costs = token_level.self_information(scorer, [context, empty])
    assert [p.tolist() for p in phrases] == [[0, 0, 0, 1, 1], []]
    assert np.allclose(values[0], [2 * np.log(8), 0.0]) and values[1].size == 0
    assert costs[0].tolist() == [2.0, 0.0] and costs[1].size == 0


@pytest.mark.parametrize(("text", "expected"), [
    ("The big dog", [0, 0, 0]),  # a function word first opens phrase 0, not 1
    ("dogs and cats", [0, 1, 1]),  # ... and second, phrase 1
    ("big green dogs eat red apples daily", [0, 0, 0, 0, 0, 1, 1]),  # five words at most
    ("dogs and big green cats eat red apples", [0, 1, 1, 1, 1, 1, 2, 2]),
    ("red apples\ngreen pears", [0, 0, 1, 1]),  # a line break
])
def test_phrase_ids_count_phrases_from_zero(text: str, expected: list[int]) -> None:
    assert phrase_ids(build_context(text, _encoded(text, [text]))).tolist() == expected


# "the zebra" 8.1 nats, "the mat" 4.2, "the cat" 3.5 (one token per word)
UNIGRAM = {"the": 0.3, "zebra": 0.001, "cat": 0.1, "mat": 0.05}


def test_self_information_counts_forced_words_against_the_budget() -> None:
    # 4 tokens, 1 of them the forced "cat": 3 left for phrases, best first: "the zebra" (2)
    # fits, "the mat" (2 more) does not
    compressor = PerplexityCompressor(_unigram(UNIGRAM))
    result = compressor.compress("the zebra the cat the mat", method="self-information",
                                 target_token=4, force_tokens=["cat"])
    assert result.compressed_prompt == "the zebra cat"
    assert result.compressed_tokens == 3


@pytest.mark.parametrize(("question", "condition", "message"), [
    ("", "after", "rank() needs a non-empty question"),
    (" \n", "before", "rank() needs a non-empty question"),
    ("Which animal?", "none", "condition must be 'before' or 'after', got 'none'"),
])
def test_rank_refuses_a_blank_question_or_an_unknown_condition(
    question: str, condition: str, message: str
) -> None:
    compressor = PerplexityCompressor(_unigram(UNIGRAM))
    with pytest.raises(InvalidArgumentError, match=f"^{re.escape(message)}$"):
        compressor.rank(["the cat", "the zebra"], question, condition)
