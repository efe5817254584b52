"""Cloze questions for the question-aware model (``training.cloze``) and training on them
beside the real questions (``training.train --extra``)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training.cloze import (
    QUESTION_WORDS,
    TYPED_WORDS,
    answer_kind,
    answer_span,
    cloze_items,
    cloze_question,
    sentences,
)
from training.qa_corpus import XQUAD_LANGUAGES, xquad_articles

PARAGRAPH = ("The Amazon river carries 209000 cubic metres of water each second. Its basin "
             "covers parts of Brazil, Peru and Colombia near the equator. Early explorers "
             "named the river after warriors they said they had met there.")


def test_sentences_split_at_stops_and_cjk_stops() -> None:
    got = [PARAGRAPH[s:e] for s, e in sentences(PARAGRAPH, "en")]
    assert got == ["The Amazon river carries 209000 cubic metres of water each second.",
                   "Its basin covers parts of Brazil, Peru and Colombia near the equator.",
                   "Early explorers named the river after warriors they said they had met "
                   "there."]
    zh = "第一句话在这里。第二句话也在这里！最后一句"
    assert [zh[s:e] for s, e in sentences(zh, "zh")] == ["第一句话在这里。", "第二句话也在这里！",
                                                          "最后一句"]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), language=st.sampled_from(XQUAD_LANGUAGES))
def test_an_answer_is_inside_its_sentence_and_missing_from_its_question(
        seed: int, language: str) -> None:
    """The answer is a span of one sentence without trailing punctuation; the question is made
    of the words around it, never the answer itself, and asks with the language's words."""
    rng = random.Random(seed)
    text = PARAGRAPH if language != "zh" else "长江全长六千三百公里。它流经十一个省份和城市。"
    for sentence in sentences(text, language):
        span = answer_span(text, *sentence, language, rng)
        if span is None:
            continue
        start, end = span
        assert sentence[0] <= start < end <= sentence[1]
        answer = text[start:end]
        assert answer == answer.strip() and answer[-1] not in ".,;:!?。"
        question = cloze_question(text, sentence, span, language, rng)
        assert any(wh in question.lower() for wh in QUESTION_WORDS[language])
        assert question.endswith(("?", "？", "؟"))
        if language != "zh":  # every word of PARAGRAPH's sentences is unique in its sentence
            kept = set(question.rstrip("?").lower().split())
            words = [w.strip(".,").lower() for w in answer.split()]
            assert not (set(words) - set(text[sentence[0]:start].lower().split())
                        - set(text[end:sentence[1]].lower().split())) & kept


@pytest.mark.parametrize(("answer", "language", "kind"), [
    ("1969", "en", "year"), ("2021", "zh", "year"), ("209000", "en", "number"),
    ("6,500", "ru", "number"), ("3.5 million", "es", "number"), ("Pro Bowl", "en", "name"),
    ("Kalenjin", "es", "name"), ("Brasilien", "de", "words"), ("长江", "zh", "words"),
    ("cubic metres", "en", "words"), ("1492 ships", "en", "number"),
])
def test_a_typed_question_word_fits_its_answer(answer: str, language: str, kind: str) -> None:
    """``--typed``: a year is asked with "when", another number with "how many", a capitalised
    name (not in German or Chinese, where capitals say nothing) with who / what / which /
    where; the question replaces the answer with one of its kind's words."""
    assert answer_kind(answer, language) == kind
    text = f"Long ago {answer} was written down in the old town archive by the clerk."
    start = text.index(answer)
    sentence, span = (0, len(text)), (start, start + len(answer))
    asked = {cloze_question(text, sentence, span, language, random.Random(seed), keep=1.0,
                            typed=True) for seed in range(40)}
    words = TYPED_WORDS[language][kind]
    assert all(answer not in q and any(w in q.lower() for w in words) for q in asked)
    assert all(not any(w in q.lower() for k, ws in TYPED_WORDS[language].items() if k != kind
                       for w in ws if all(w not in x for x in words)) for q in asked)


def test_phrase_answers_are_three_to_six_words_and_untyped_items_stay_the_same() -> None:
    rng = random.Random(3)
    sentence = (0, len(PARAGRAPH.split(". ")[1]) + 1)
    text = PARAGRAPH.split(". ")[1] + "."
    spans = {answer_span(text, *sentence, "en", rng, phrases=1.0) for _ in range(50)}
    assert spans and all(3 <= len(text[s:e].split()) <= 6 for s, e in spans)
    assert {answer_span(text, *sentence, "en", random.Random(k)) for k in range(50)} == {
        answer_span(text, *sentence, "en", random.Random(k), phrases=0.0) for k in range(50)}


@pytest.fixture(scope="module")
def items(shared_data: Path):
    return cloze_items(seed=0)


def test_cloze_items_point_at_their_answers_alone_or_among_distractors(items) -> None:
    plain = {i.uid: i for i in items if not i.uid.endswith("-multi")}
    multi = [i for i in items if i.uid.endswith("-multi")]
    assert len(plain) > 5000 and len(multi) == len(plain) - 1
    assert {i.uid.split("-")[1] for i in plain.values()} >= set(XQUAD_LANGUAGES) | {"quality"}
    for item in multi:
        alone = plain[item.uid.removesuffix("-multi")]
        (s, e), = item.evidence
        (a, b), = alone.evidence
        assert item.text[s:e] == alone.text[a:b] and alone.text in item.text.split("\n\n")
        assert item.question == alone.question and len(item.text.split("\n\n")) >= 3


def test_cloze_items_come_from_training_articles_only(items) -> None:
    """No evaluation paragraph of any language reaches the cloze items."""
    texts = {i.text for i in items}
    held_out = {q.paragraph for lang in XQUAD_LANGUAGES for p in xquad_articles(lang, "eval")
                for q in p}
    train = {q.paragraph for lang in XQUAD_LANGUAGES for p in xquad_articles(lang, "train")
             for q in p}
    assert not any(para in text for text in texts for para in held_out if len(para) > 40)
    assert any(para in texts for para in train)


def test_cloze_items_are_the_same_for_the_same_seed(items) -> None:
    again = cloze_items(seed=0)
    assert [i.to_json() for i in again[:500]] == [i.to_json() for i in items[:500]]
    assert [i.question for i in cloze_items(seed=1)[:50]] != [i.question for i in items[:50]]


def test_extra_labels_are_trained_on_and_never_validated_on(
        tiny_bert_checkpoint: Path, tmp_path: Path) -> None:
    """``--extra``: the validation items are the same with or without the extra labels."""
    pytest.importorskip("torch")
    from transformers import BertForTokenClassification

    from training.checkpoint import save_shards
    from training.train import main

    model = BertForTokenClassification.from_pretrained(tiny_bert_checkpoint)
    base = tmp_path / "base"
    save_shards({k: v.detach().numpy() for k, v in model.state_dict().items()}, base)
    (base / "config.json").write_text((tiny_bert_checkpoint / "config.json").read_text())

    def labels(path: Path, prefix: str, n: int) -> Path:
        path.write_text("".join(json.dumps({
            "uid": f"{prefix}{k}", "question_ids": [5, 6], "token_ids": [7, 8, 9, 10],
            "token_word": [0, 1, 2, 3], "evidence": [0, 1, 0, 0],
            "targets": [0.1, 0.9, 0.2, 0.3]}) + "\n" for k in range(n)))
        return path

    real, extra = labels(tmp_path / "real.jsonl", "r", 20), labels(tmp_path / "x.jsonl", "x", 30)
    summaries = []
    for more in ([], ["--extra", str(extra)]):
        out = tmp_path / f"out{len(more)}"
        assert main(["--labels", str(real), "--base", str(base), "--out", str(out),
                     "--epochs", "1", "--batch", "8", "--val-share", "0.25", *more]) == 0
        summaries.append(json.loads((out / "train_summary.json").read_text()))
    assert [s["val_texts"] for s in summaries] == [5, 5]
    assert [s["train_texts"] for s in summaries] == [15, 45]
