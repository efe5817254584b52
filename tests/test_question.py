"""compress(question=...): the pair input, the manifest flag, truncation and bad input."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_lingua.bundle import Manifest, read_manifest
from edge_lingua.compressor import Compressor
from edge_lingua.errors import (
    EmptyQuestionError,
    InvalidArgumentError,
    ManifestError,
    QuestionNotSupportedError,
)
from edge_lingua.question import QuestionTruncatedWarning, encoder_rows
from edge_lingua.relevance import context_relevance
from tests.toolchain_models import paragraphs
from tests.warning_site import points_at

MAX_QUESTION = 24
TEXT = " ".join(paragraphs(3, seed=5))
QUESTION = "what did the farmer sell at the market"


@pytest.fixture(scope="module")
def question_bundle(tiny_bert_checkpoint: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT checkpoint exported as a question-aware bundle (its config says so)."""
    from edge_lingua_export.classifier import export_classifier
    from tests.toolchain_models import cached_build

    def build(folder: Path) -> None:
        src = tmp_path_factory.mktemp("question-bert-hf") / "hf"
        shutil.copytree(tiny_bert_checkpoint, src)
        config = json.loads((src / "config.json").read_text())
        config["edge_lingua_max_question_tokens"] = MAX_QUESTION
        (src / "config.json").write_text(json.dumps(config))
        export_classifier(src, folder)

    return cached_build(f"question-bert-{MAX_QUESTION}", tmp_path_factory, build)


@pytest.fixture(scope="module")
def asked(question_bundle: Path) -> Compressor:
    return Compressor.load(question_bundle, providers=["cpu"])


def test_manifest_says_question_pair(question_bundle: Path, tiny_bert_bundle: Path) -> None:
    manifest = read_manifest(question_bundle)
    assert manifest.question_aware
    assert manifest.input_format == "question-pair"
    assert manifest.max_question_tokens == MAX_QUESTION
    data = manifest.to_json()
    assert data["question_aware"] is True and data["input_format"] == "question-pair"
    old = read_manifest(tiny_bert_bundle)
    assert not old.question_aware and old.input_format == "single"
    assert "question_aware" not in old.to_json()  # existing manifests round-trip unchanged
    assert Manifest.from_json(old.to_json()) == old


@pytest.mark.parametrize("change", [
    {"question_aware": True},  # flag without the pair format
    {"input_format": "question-pair"},  # format without the flag
    {"question_aware": True, "input_format": "question-pair", "max_question_tokens": 0},
    {"question_aware": True, "input_format": "question-pair", "max_question_tokens": 10_000},
    {"input_format": "triple"},
])
def test_manifest_rejects_inconsistent_input_format(question_bundle: Path, change) -> None:
    data = read_manifest(question_bundle).to_json()
    for key in ("question_aware", "input_format", "max_question_tokens"):
        data.pop(key, None)
    with pytest.raises(ManifestError):
        Manifest.from_json({**data, **change})


def test_question_changes_the_scores(asked: Compressor) -> None:
    plain = asked.score(TEXT).token_probs
    one = asked.score(TEXT, question=QUESTION).token_probs
    other = asked.score(TEXT, question="who wrote the letter to the king").token_probs
    assert one.shape == plain.shape
    assert not np.allclose(one, plain)
    assert not np.allclose(one, other)


def test_question_never_leaks_into_the_output(asked: Compressor) -> None:
    question = "zebra quokka"  # words the text does not hold
    assert "zebra" not in TEXT and "quokka" not in TEXT
    plain = asked.compress(TEXT, rate=0.5)
    result = asked.compress(TEXT, question=question, rate=0.5)
    assert "zebra" not in result.compressed_prompt and "quokka" not in result.compressed_prompt
    assert result.words == plain.words
    assert result.origin_tokens == plain.origin_tokens
    assert result.question_tokens > 0 and not result.question_truncated
    assert plain.question_tokens == 0


def test_long_question_is_cut_and_the_result_says_so(asked: Compressor) -> None:
    long_question = " ".join(["which farmer sold the most bread"] * 6)
    with pytest.warns(QuestionTruncatedWarning) as caught:
        result = asked.compress(TEXT, question=long_question, rate=0.5)
    assert len(caught) == 1 and points_at(caught[0].filename, __file__)  # once, at the caller's
    assert result.question_truncated
    assert result.question_tokens == MAX_QUESTION
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        short = asked.compress(TEXT, question="which farmer", rate=0.5)
    assert not short.question_truncated


def test_windows_shrink_to_fit_the_question(asked: Compressor) -> None:
    long_text = " ".join(paragraphs(30, seed=9))
    limit = asked.bundle.manifest.max_seq_len
    q_tokens = len(asked._tokenizer.encode(QUESTION, add_special_tokens=False).ids)
    plain = asked.score(long_text)
    scored = asked.score(long_text, question=QUESTION)
    assert max(hi - lo for lo, hi in plain.windows) + 2 > limit - q_tokens - 1
    assert all(hi - lo + q_tokens + 3 <= limit for lo, hi in scored.windows)
    assert scored.windows[-1][1] == scored.token_ids.size
    assert scored.token_probs.size == plain.token_probs.size


def test_bad_questions_are_typed_errors(asked: Compressor, tiny_bert_bundle: Path) -> None:
    for empty in ("", "   \n"):
        with pytest.raises(EmptyQuestionError):
            asked.compress(TEXT, question=empty, rate=0.5)
    with pytest.raises(InvalidArgumentError):
        asked.compress(TEXT, question=42, rate=0.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        asked.compress_many([TEXT, TEXT], question=["one"], rate=0.5)
    single = Compressor.load(tiny_bert_bundle, providers=["cpu"])
    assert not single.question_aware
    with pytest.raises(QuestionNotSupportedError):
        single.compress(TEXT, question=QUESTION, rate=0.5)


def test_every_section_of_a_long_prompt_reads_the_question(
    asked: Compressor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_lingua import sections as module

    monkeypatch.setattr(module, "SECTION_CHARS", 1 << 13)  # 8 KiB sections, the same code
    text = "\n".join(paragraphs(60, seed=17)) + "\n"
    assert len(text) > 2 * module.SECTION_CHARS
    sections = [text[lo:hi] for lo, hi in module.section_bounds(text)]
    whole = asked.compress(text, question=QUESTION, rate=0.4)
    alone = [asked.compress(s, question=QUESTION, rate=0.4, structure="text") for s in sections]
    assert whole.compressed_prompt == "".join(r.compressed_prompt for r in alone)
    blind = "".join(asked.compress(s, rate=0.4, structure="text").compressed_prompt
                    for s in sections)
    assert whole.compressed_prompt != blind
    assert whole.question_tokens == alone[0].question_tokens > 0


def test_questions_per_prompt_match_single_calls(asked: Compressor) -> None:
    texts = paragraphs(2, seed=11)
    questions = [QUESTION, None]
    many = asked.compress_many(texts, question=questions, rate=0.4)
    for text, question, result in zip(texts, questions, many, strict=True):
        alone = asked.compress(text, question=question, rate=0.4)
        assert result.compressed_prompt == alone.compressed_prompt
        assert result.question_tokens == alone.question_tokens


def test_context_filter_ranks_by_question(asked: Compressor) -> None:
    contexts = paragraphs(4, seed=13)
    result = asked.compress(contexts, question=QUESTION, rate=0.3, use_context_level_filter=True)
    dropped = [not any(mask) for mask in result.kept_mask]
    assert any(dropped)
    scores = [asked.score(c, question=QUESTION) for c in contexts]
    relevance = context_relevance([s.token_probs for s in scores], True)
    assert relevance[int(np.argmax(relevance))] > relevance[dropped.index(True)]


def test_relevance_with_a_question_is_the_top_share() -> None:
    sure = np.r_[np.full(90, 0.1), np.full(10, 0.95)]  # a few tokens the classifier is sure of
    flat = np.full(100, 0.3)
    plain = context_relevance([sure, flat], question_given=False)
    asked = context_relevance([sure, flat], question_given=True)
    assert plain[1] > plain[0]  # the mean prefers the flat context
    assert asked[0] > asked[1]  # the top tenth prefers the one with a sure answer
    assert asked[0] == pytest.approx(0.95)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(5, 99), min_size=1, max_size=12),
                          st.one_of(st.none(), st.lists(st.integers(5, 99), min_size=1,
                                                        max_size=6))),
                min_size=1, max_size=5))
def test_encoder_rows_layout(rows: list[tuple[list[int], list[int] | None]]) -> None:
    from edge_lingua.question import Question

    windows = [np.asarray(w, dtype=np.int64) for w, _ in rows]
    questions = [None if q is None else Question(np.asarray(q, dtype=np.int64), False)
                 for _, q in rows]
    built = encoder_rows(windows, questions, bos=1, eos=2, pad=0)
    for row, (window, question) in enumerate(zip(windows, questions, strict=True)):
        ids, types, start = built.input_ids[row], built.token_type_ids[row], built.starts[row]
        n = start + window.size + 1
        assert ids[0] == 1 and ids[n - 1] == 2
        assert ids[start : start + window.size].tolist() == window.tolist()
        assert built.attention_mask[row].sum() == n and not ids[n:].any()
        if question is None:
            assert start == 1 and not types.any()
        else:
            assert ids[1 : start - 1].tolist() == question.token_ids.tolist()
            assert ids[start - 1] == 2
            assert not types[:start].any() and types[start:n].all() and not types[n:].any()


def test_cli_question(question_bundle: Path, tmp_path: Path, capsys) -> None:
    from edge_lingua.cli import main

    text = tmp_path / "in.txt"
    text.write_text(TEXT, encoding="utf-8")
    assert main(["compress", str(text), "--bundle", str(question_bundle), "--rate", "0.5",
                 "--question", QUESTION, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["question_tokens"] > 0
    assert QUESTION not in data["compressed_prompt"]


def test_answer_retained_needs_the_whole_answer() -> None:
    from benchmarks.question_aware import answer_retained

    assert answer_retained(["December 25, 2021"], "Webb launched December 25, 2021 on Ariane")
    assert answer_retained(["December 25, 2021"], "launched December\n25, 2021")
    assert not answer_retained(["December 25, 2021"], "Webb was December on an")
    assert not answer_retained(["December 25, 2021"], "December 2021")


def test_meeting_windows_mark_the_relevant_turns() -> None:
    from benchmarks.question_aware import meeting_windows
    from training.qa_corpus import Meeting

    turns = [f"A: turn {i}" for i in range(100)]
    meeting = Meeting("m", turns, [("what about 50?", [(50, 52)])])
    [(query, window, relevant)] = meeting_windows([meeting], limit=5, seed=0, margin=20)
    assert query == "what about 50?"
    assert window == turns[30:73]
    assert [t for t, r in zip(window, relevant, strict=True) if r] == turns[50:53]


def test_proxy_scope_context_reads_the_last_user_message_as_the_question(
    asked: Compressor,
) -> None:
    from edge_lingua.cascade.prompt import prepare, tokenizer_counter

    count = tokenizer_counter(asked.bundle.tokenizer_path)
    marked = [{"role": "system", "content": TEXT, "compress": True},
              {"role": "user", "content": QUESTION}]
    with_question = prepare(marked, asked, count, rate=0.5, ask_last_user=True)
    without = prepare(marked, asked, count, rate=0.5)
    expected = asked.compress([TEXT], question=QUESTION, rate=0.5)
    assert with_question.compression.kept_mask == expected.kept_mask
    assert with_question.compression.question_tokens > 0
    assert without.compression.question_tokens == 0
    assert with_question.messages[1]["content"] == QUESTION  # the question goes up as written


def test_answer_retention_counts_answers_and_the_share_of_text_kept(shared_data: Path) -> None:
    """Per method and rate: answers kept whole, and how much of the paragraphs' cl100k tokens
    the output holds (models count a rate in their own, different tokens)."""
    from benchmarks.question_aware import answer_retention

    methods = {"all": lambda c, q, r: c, "half": lambda c, q, r: c[: len(c) // 2],
               "nothing": lambda c, q, r: ""}
    got = answer_retention(methods, ("en", "zh"), (0.5,), limit=6, slow_limit=0, slow=())
    for language in ("en", "zh"):
        run = {name: got[language][name]["0.5"] for name in methods}
        assert run["all"]["retained"] == 1.0 and run["all"]["kept_cl100k_share"] == 1.0
        assert run["nothing"]["retained"] == 0.0 and run["nothing"]["kept_cl100k_share"] == 0.0
        assert 0.3 < run["half"]["kept_cl100k_share"] < 0.7
        assert all(r["questions"] == 6 for r in run.values())
