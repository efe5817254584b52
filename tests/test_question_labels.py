"""The question-aware model's training targets (``training.question_labels``, "support" mix)
and the training metric that picks its epoch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_lingua.compressor import Compressor, load_tokenizer
from edge_lingua.segmentation import segment
from training.question_labels import (
    SENTENCE_SUPPORT,
    sentence_ids,
    support,
    support_finish,
    support_levels,
    support_targets,
)

TEXT = ("The river froze in 1816. Farmers lost their crops that summer!\n"
        "Prices rose quickly? Nobody knew why. 第一句。第二句")


@pytest.fixture(scope="module")
def tokenizer(tiny_bert_bundle: Path):
    return load_tokenizer(tiny_bert_bundle / "tokenizer.json")


def _sentences_of(tokenizer, text: str) -> list[str]:
    seg = segment(tokenizer, text)
    ids = sentence_ids(seg, text)
    words = seg.words()
    return [" ".join(w for w, i in zip(words, ids, strict=True) if i == k)
            for k in range(int(ids.max()) + 1)]


def test_sentences_end_at_stops_marks_breaks_and_cjk_stops(tokenizer) -> None:
    assert _sentences_of(tokenizer, TEXT) == [
        "The river froze in 1816 .", "Farmers lost their crops that summer !",
        "Prices rose quickly ?", "Nobody knew why .", "第一句 。", "第二句"]
    # a line break ends a sentence without a stop (QMSum turns)
    assert _sentences_of(tokenizer, "Ann: we agree\nBob: not yet") == ["Ann : we agree",
                                                                       "Bob : not yet"]
    # a decimal point or a stop inside a word is no sentence end
    assert len(_sentences_of(tokenizer, "It cost 3.5 dollars in Washington.D.C today.")) == 1


def test_support_levels_mark_the_answer_and_its_sentence(tokenizer) -> None:
    start = TEXT.index("crops")
    seg = segment(tokenizer, TEXT)
    levels = support_levels(seg, TEXT, [[start, start + len("crops")]])
    words = seg.words()
    by_word = dict(zip(words, levels, strict=True))
    assert by_word["crops"] == 1.0
    assert by_word["Farmers"] == by_word["summer"] == SENTENCE_SUPPORT
    assert by_word["river"] == by_word["Prices"] == 0.0
    assert not support_levels(seg, TEXT, []).any()


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.sampled_from([0.0, SENTENCE_SUPPORT, 1.0])),
                min_size=2, max_size=40),
       st.floats(0.5, 0.95))
def test_with_a_question_evidence_outranks_the_rest(words, weight: float) -> None:
    probs = np.asarray([p for p, _ in words])
    levels = np.asarray([level for _, level in words])
    asked = support_targets(probs, levels, True, weight)
    assert np.allclose(support_targets(probs, levels, False, weight), probs)
    assert ((asked >= 0) & (asked <= 1)).all()
    if (levels == 1.0).any() and (levels == 0.0).any():
        assert asked[levels == 1.0].min() >= asked[levels == 0.0].max()
    if weight * SENTENCE_SUPPORT >= 1 - weight and (levels > 0).any() and (levels == 0).any():
        assert asked[levels > 0].min() >= asked[levels == 0.0].max()


def test_support_rows_and_targets_end_to_end(tiny_bert_bundle: Path, tiny_bert_checkpoint: Path,
                                            tmp_path: Path) -> None:
    """Rows from the text, targets from the model's weights: without a question the target is
    the model's own pooled keep probability, with one the evidence mix."""
    pytest.importorskip("torch")
    from transformers import BertForTokenClassification

    from training.checkpoint import save_shards

    hf = tiny_bert_checkpoint
    model = BertForTokenClassification.from_pretrained(hf)
    weights = tmp_path / "weights"
    save_shards({k: v.detach().numpy() for k, v in model.state_dict().items()}, weights)
    (weights / "config.json").write_text((hf / "config.json").read_text())

    answer = TEXT.index("1816")
    items = tmp_path / "items.jsonl"
    items.write_text("\n".join(json.dumps(row) for row in [
        {"uid": "plain", "question": "", "text": TEXT, "evidence": []},
        {"uid": "asked", "question": "when did the river freeze", "text": TEXT,
         "evidence": [[answer, answer + 4]]},
    ]) + "\n")
    rows, labels = tmp_path / "rows.jsonl", tmp_path / "labels.jsonl"
    assert support(items, rows, tiny_bert_bundle / "tokenizer.json") == 2
    assert support_finish(rows, labels, weights, weight=0.75, sentence=0.8) == 2
    plain, asked = (json.loads(line) for line in labels.read_text().splitlines())

    scores = Compressor.load(tiny_bert_bundle, providers=["cpu"]).score(TEXT)
    # unreadable words (the CJK here) rank first at run time; their target is 1
    probs = np.clip(np.asarray(scores.word_probs, dtype=np.float64), 0.0, 1.0)
    assert (probs[~scores.word_readable] == 1.0).all() and (~scores.word_readable).any()
    np.testing.assert_allclose(plain["targets"], probs, atol=2e-3)
    assert plain["question_ids"] == [] and asked["question_ids"]
    levels = np.asarray(asked["targets"]) - 0.25 * probs
    words = scores.words
    assert np.isclose(levels[words.index("1816")], 0.75, atol=2e-3)
    assert np.isclose(levels[words.index("river")], 0.75 * 0.8, atol=2e-3)
    assert np.isclose(levels[words.index("Farmers")], 0.0, atol=2e-3)
    assert asked["evidence"][words.index("1816")] == 1 and sum(asked["evidence"]) == 1


def test_answers_kept_needs_every_evidence_word() -> None:
    pytest.importorskip("torch")
    from training.train import Item, answers_kept

    def item(evidence: list[int]) -> Item:
        n = len(evidence)
        return Item(ids=np.zeros(n + 2, np.int64), token_types=np.zeros(n + 2, np.int64),
                    start=1, token_targets=np.zeros(n + 2, np.float32),
                    token_mask=np.zeros(n + 2, np.float32), token_word=np.arange(n),
                    word_targets=np.zeros(n, np.float32),
                    evidence=np.asarray(evidence, np.float32))

    probs = np.asarray([0.9, 0.8, 0.1, 0.2, 0.3, 0.05])
    whole = item([1, 1, 0, 0, 0, 0])   # both evidence words in the top third
    split = item([1, 0, 1, 0, 0, 0])   # one of them is not
    none = item([0, 0, 0, 0, 0, 0])    # no evidence: not counted
    assert answers_kept([whole, split, none], [probs] * 3, 0.34) == 0.5
    assert answers_kept([whole], [probs], 0.34) == 1.0
