"""The multilingual student's vocabulary, starting embeddings and labels
(``training.multilingual``), on Gemma 3's real vocabulary."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.servers import gemma_path
from training.multilingual import (
    SPECIAL_IDS,
    GemmaVocabulary,
    bpe_symbols,
    build_tokenizer,
    initial_embeddings,
    minilm_pairs,
    pruned_vocabulary,
    transfer_labels,
)
from training.qa_corpus import XQUAD_LANGUAGES, xquad_articles


@pytest.fixture(scope="module")
def gemma() -> tuple[GemmaVocabulary, dict]:
    vocabulary = GemmaVocabulary.load(gemma_path())
    return vocabulary, vocabulary.merges()


@pytest.fixture(scope="module")
def corpus(shared_data: Path) -> list[str]:
    """Three training paragraphs and their first question in each of the six languages."""
    texts = []
    for language in XQUAD_LANGUAGES:
        for questions in xquad_articles(language, "train")[:3]:
            texts += [questions[0].paragraph, questions[0].question]
    return texts


def test_the_whole_vocabulary_cuts_words_as_gemma_does(gemma) -> None:
    vocabulary, ranks = gemma
    full = build_tokenizer(vocabulary.ids(), ranks)
    assert full.encode("Hello world, 你好世界。", add_special_tokens=False).tokens == [
        "Hello", "▁world", ",", "▁你", "好", "世界", "。"]
    assert full.encode("in 1271", add_special_tokens=False).tokens == ["in", "▁", "1", "2", "7",
                                                                        "1"]


def test_the_pruned_tokenizer_cuts_its_corpus_exactly_as_the_whole_one(gemma, corpus) -> None:
    """Pruned to the pieces the corpus uses and the pieces they are merged from, the tokenizer
    gives the corpus the same tokens; the special tokens sit at MiniLM's ids and every new id
    names its Gemma piece."""
    vocabulary, ranks = gemma
    vocab, gemma_ids = pruned_vocabulary(vocabulary, ranks, corpus, min_count=1)
    full = build_tokenizer(vocabulary.ids(), ranks)
    pruned = build_tokenizer(vocab, ranks)
    for text in corpus:
        assert (pruned.encode(text, add_special_tokens=False).tokens
                == full.encode(text, add_special_tokens=False).tokens)
    assert len(vocab) == len(gemma_ids) < len(vocabulary.pieces) // 20
    assert {p: vocab[p] for p in SPECIAL_IDS} == SPECIAL_IDS
    assert all(vocabulary.pieces[gemma_ids[new]] == piece for piece, new in vocab.items())
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert pruned.encode("ok").ids[0] == SPECIAL_IDS["<bos>"]
    # text it never saw is still read, in smaller pieces or bytes, never as <unk>
    unseen = pruned.encode("Kwame Nkrumah 🚀 ⅞", add_special_tokens=False)
    assert SPECIAL_IDS["<unk>"] not in unseen.ids
    # a piece used once is left out when two uses are asked for
    fewer, _ = pruned_vocabulary(vocabulary, ranks, corpus, min_count=2)
    assert len(fewer) < len(vocab)


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet="abc", min_size=1, max_size=8), st.permutations(range(5)))
def test_bpe_symbols_merge_the_best_ranked_pair_first(word: str, order: list[int]) -> None:
    """``bpe_symbols`` is BPE: the joined symbols are the word; no pair left is mergeable;
    every symbol made on the way is a merge's result."""
    pairs = [("a", "b"), ("b", "c"), ("ab", "c"), ("c", "a"), ("a", "bc")]
    ranks = {pair: (rank, 0, 0) for pair, rank in zip(pairs, order, strict=True)}
    symbols, made = bpe_symbols(word, ranks)
    assert "".join(symbols) == word
    assert not any(pair in ranks for pair in pairwise(symbols))
    assert made <= {x + y for x, y in pairs}
    assert set(symbols) - set(word) <= made


def test_bpe_symbols_follow_the_ranks() -> None:
    ranks = {("a", "b"): (0, 0, 0), ("b", "c"): (1, 0, 0), ("ab", "c"): (2, 0, 0)}
    assert bpe_symbols("abc", ranks) == (["abc"], {"ab", "abc"})
    ranks[("b", "c")] = (-1, 0, 0)
    assert bpe_symbols("abc", ranks) == (["a", "bc"], {"bc"})


def test_starting_embeddings_copy_minilm_tokens_and_map_the_rest() -> None:
    """Pieces that are MiniLM tokens start from MiniLM's rows, the special tokens from MiniLM's
    special rows, every other piece from its Gemma row through the fitted map."""
    rng = np.random.default_rng(0)
    gemma = rng.normal(size=(400, 8)).astype(np.float32)
    mapping = rng.normal(size=(8, 4)).astype(np.float32)
    minilm = rng.normal(size=(300, 4)).astype(np.float32)
    fitted = {g: 150 + k for k, g in enumerate(range(200, 340))}
    minilm[150:290] = gemma[200:340] @ mapping
    copied = {**fitted, 399: 7}
    new_to_gemma = [0, *range(1, 100), 3, 2, 1, 250, 399, 10, 11]
    out, r2 = initial_embeddings(gemma, minilm, (fitted, copied), new_to_gemma, ridge=1e-6)
    assert r2 > 0.999
    np.testing.assert_array_equal(out[[0, 100, 101, 102]], minilm[[0, 100, 101, 102]])
    np.testing.assert_array_equal(out[103], minilm[fitted[250]])
    np.testing.assert_array_equal(out[104], minilm[7])
    np.testing.assert_allclose(out[105:], gemma[[10, 11]] @ mapping, atol=1e-3)


def test_minilm_pairs_name_the_same_token() -> None:
    gemma_ids = {"▁world": 5, "▁World": 6, "world": 7, "ing": 8, "▁the": 9}
    fitted, copied = minilm_pairs({"world": 50, "##ing": 60, "[CLS]": 101, "zebra": 70},
                                  gemma_ids)
    assert fitted == {5: 50, 8: 60}
    assert copied == {5: 50, 6: 50, 7: 50, 8: 60}


def test_labels_move_by_item_and_word_cut_to_both_windows(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(json.dumps(r) for r in [
        {"uid": "a", "question_ids": [4], "token_ids": [11, 12, 13, 14, 15],
         "token_word": [0, 0, 1, 2, 3], "levels": [0, 1, 1, 0], "evidence": [0, 1, 1, 0]},
        {"uid": "b", "question_ids": [], "token_ids": [21, 22], "token_word": [0, 1],
         "levels": [0, 0], "evidence": [0, 0]},
        {"uid": "missing", "question_ids": [], "token_ids": [1], "token_word": [0],
         "levels": [0], "evidence": [0]},
    ]) + "\n")
    targets = tmp_path / "targets.jsonl"
    targets.write_text(json.dumps({"uid": "a", "t": [100, 900, 950]}) + "\n"
                       + json.dumps({"uid": "b", "t": [0, 500, 700]}) + "\n")
    out = tmp_path / "labels.jsonl"
    assert transfer_labels(rows, targets, out) == 2
    a, b = (json.loads(line) for line in out.read_text().splitlines())
    assert a == {"uid": "a", "question_ids": [4], "token_ids": [11, 12, 13, 14],
                 "token_word": [0, 0, 1, 2], "evidence": [0, 1, 1], "targets": [0.1, 0.9, 0.95]}
    assert b["token_ids"] == [21, 22] and b["targets"] == [0.0, 0.5]
