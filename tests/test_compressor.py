"""LLMLingua-2 compression semantics on a bundle from the project's own exporter."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from edge_lingua.compressor import Compressor
from edge_lingua.errors import (
    EmptyInputError,
    InputEncodingError,
    InvalidArgumentError,
    NoDefaultModelError,
)
from edge_lingua.segmentation import join_units, segment

SAMPLE = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' "
    "market daily for $2 per fresh duck egg. How much in dollars does she make every day at "
    "the farmers' market?\nJanet sells 16 - 3 - 4 = 9 duck eggs a day.\n"
    "She makes 9 * 2 = $18 every day at the farmer's market.\n#### 18"
)


@pytest.fixture(scope="module")
def compressor(tiny_bert_bundle: Path) -> Compressor:
    return Compressor.load(tiny_bert_bundle, threads=1)


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(word == other for other in it) for word in small)


def test_output_is_the_kept_words_in_order(compressor: Compressor) -> None:
    result = compressor.compress(SAMPLE, rate=0.5)
    words, mask = result.words[0], result.kept_mask[0]
    kept = [w for w, k in zip(words, mask, strict=True) if k]
    assert 0 < len(kept) < len(words)
    assert result.compressed_prompt == result.compressed_contexts[0]
    # the output is made of the kept words, in order, and nothing else
    assert re.sub(r"\s", "", result.compressed_prompt) == "".join(kept)
    assert _is_subsequence(kept, words)
    assert result.method == "llmlingua2" and result.provider == "CPUExecutionProvider"
    assert result.elapsed_s > 0


@pytest.mark.parametrize("rate", [0.2, 0.33, 0.5, 0.9, 1.0])
def test_rate_budget_is_met(compressor: Compressor, rate: float) -> None:
    result = compressor.compress(SAMPLE, rate=rate)
    assert result.compressed_tokens <= rate * result.origin_tokens
    # a threshold, not a random cut: nothing dropped is more probable than what was kept,
    # except where the dropped word alone would have broken the budget
    assert result.compressed_tokens >= rate * result.origin_tokens - 12
    if rate == 1.0:
        assert all(result.kept_mask[0])


def test_target_token_budget_is_met_and_wins_over_rate(compressor: Compressor) -> None:
    result = compressor.compress(SAMPLE, rate=0.9, target_token=20)
    assert result.compressed_tokens <= 20
    assert result.compressed_tokens >= 15


def test_kept_words_are_the_most_probable(compressor: Compressor) -> None:
    scores = compressor.score(SAMPLE)
    result = compressor.compress(SAMPLE, rate=0.5)
    keep = np.asarray(result.kept_mask[0])
    # a threshold: every word ranked above the most probable dropped word is kept
    order = np.argsort(-scores.word_probs, kind="stable")
    first_dropped = next(i for i in order if not keep[i])
    assert all(keep[i] for i in order[: list(order).index(first_dropped)])


def test_force_tokens_and_digits_are_kept(compressor: Compressor) -> None:
    result = compressor.compress(
        SAMPLE, rate=0.2, force_tokens=["?", "="], force_reserve_digit=True
    )
    words, mask = result.words[0], result.kept_mask[0]
    for word, kept in zip(words, mask, strict=True):
        if word in ("?", "=") or re.search(r"\d", word):
            assert kept, word
    assert "?" in result.compressed_prompt and "16" in result.compressed_prompt


def test_forced_words_may_exceed_the_budget_but_nothing_else(compressor: Compressor) -> None:
    result = compressor.compress(SAMPLE, target_token=3, force_reserve_digit=True)
    digits = [w for w in result.words[0] if re.search(r"\d", w)]
    kept = [w for w, k in zip(result.words[0], result.kept_mask[0], strict=True) if k]
    assert [w for w in kept if re.search(r"\d", w)] == digits
    assert len(kept) - len(digits) <= 3


def test_drop_consecutive_removes_repeated_force_tokens(compressor: Compressor) -> None:
    text = "alpha . . . beta . . gamma ."
    kept = compressor.compress(text, rate=1.0, force_tokens=["."], drop_consecutive=True)
    assert kept.compressed_prompt.count(".") == 3
    plain = compressor.compress(text, rate=1.0, force_tokens=["."])
    assert plain.compressed_prompt.count(".") == 6


def test_newlines_survive_as_separators(compressor: Compressor) -> None:
    result = compressor.compress("first line here\nsecond line here\nthird", rate=1.0)
    assert result.compressed_prompt == "first line here\nsecond line here\nthird"


def test_several_contexts_and_context_level_filter(compressor: Compressor) -> None:
    contexts = [SAMPLE, "The sky is blue today.", SAMPLE.upper(), "Numbers 1 2 3 4."]
    plain = compressor.compress(contexts, rate=0.5)
    assert len(plain.compressed_contexts) == 4 and len(plain.kept_mask) == 4
    assert plain.compressed_prompt == "\n\n".join(c for c in plain.compressed_contexts if c)
    filtered = compressor.compress(contexts, rate=0.3, use_context_level_filter=True)
    dropped = [i for i, m in enumerate(filtered.kept_mask) if not any(m)]
    assert dropped, "the context-level filter dropped no context at rate 0.3"
    scores = [compressor.score(c).token_probs.mean() for c in contexts]
    assert all(scores[i] <= max(scores[j] for j in range(4) if j not in dropped) for i in dropped)
    assert filtered.compressed_tokens <= 0.3 * filtered.origin_tokens


def test_long_prompt_is_split_into_windows_at_sentence_ends(compressor: Compressor) -> None:
    text = " ".join([SAMPLE] * 12)
    scores = compressor.score(text)
    max_tokens = compressor.bundle.manifest.max_seq_len - 2
    assert len(scores.windows) > 3
    assert scores.windows[0][0] == 0 and scores.windows[-1][1] == scores.token_ids.size
    for (lo, hi), (nxt, _) in zip(scores.windows, scores.windows[1:], strict=False):
        assert 0 < hi - lo <= max_tokens and hi == nxt
        last_word = scores.words[scores.token_word[hi - 1]]
        assert scores.token_word[hi - 1] != scores.token_word[hi], "a word was split"
        assert last_word == "." or "\n" in text[scores.word_spans[scores.token_word[hi - 1]][1]:
                                                scores.word_spans[scores.token_word[hi]][0]]
    result = compressor.compress(text, rate=0.33)
    assert result.compressed_tokens <= 0.33 * result.origin_tokens


def test_compress_many_matches_compress(compressor: Compressor) -> None:
    prompts = [SAMPLE, "A short one. With two sentences.", [SAMPLE, "second context"]]
    many = compressor.compress_many(prompts, rate=0.4)
    for prompt, result in zip(prompts, many, strict=True):
        single = compressor.compress(prompt, rate=0.4)
        assert result.compressed_prompt == single.compressed_prompt
        assert result.kept_mask == single.kept_mask


def test_target_tokenizer_counts_tokens(compressor: Compressor, tiny_bert_bundle: Path,
                                        tmp_path: Path) -> None:
    from tests.toolchain_models import _bytelevel_tokenizer

    path = tmp_path / "target.json"
    _bytelevel_tokenizer().save(str(path))
    other = Compressor.load(tiny_bert_bundle, target_tokenizer=path)
    result = other.compress(SAMPLE, rate=0.5)
    from tokenizers import Tokenizer

    target = Tokenizer.from_file(str(path))
    assert result.origin_tokens == len(target.encode(SAMPLE, add_special_tokens=False).ids)
    assert result.compressed_tokens == len(
        target.encode(result.compressed_prompt, add_special_tokens=False).ids
    )
    assert result.compressed_tokens <= 0.5 * result.origin_tokens


@pytest.mark.parametrize(
    "text",
    [
        "Emoji 😀🎉 in a sentence 👍🏽 with family 👨‍👩‍👧 too.",
        "中文文本压缩测试。日本語のテキストも。한국어 문장입니다.",
        "שלום עולם, זה טקסט מימין לשמאל. مرحبا بالعالم هذا نص عربي.",
        "control\x00chars\x07and\x1b[31mescapes\x1b[0m\ttabs\rcarriage",
        "Ünïcödé àccents naïve café résumé Ångström.",
        "\u200b\u200d zero width \ufeff and combining e\u0301.",
    ],
)
def test_unusual_text_gives_a_result(compressor: Compressor, text: str) -> None:
    result = compressor.compress(text, rate=0.5)
    kept = [w for w, k in zip(result.words[0], result.kept_mask[0], strict=True) if k]
    assert re.sub(r"\s", "", result.compressed_prompt) == "".join(kept).replace(" ", "")
    assert all(w in text for w in kept)
    assert result.compressed_tokens <= max(0.5 * result.origin_tokens, 0)


@pytest.mark.parametrize("text", ["", "   ", "\n\t \n", ["", "  "]])
def test_empty_input_is_a_typed_error(compressor: Compressor, text: str | list[str]) -> None:
    with pytest.raises(EmptyInputError, match="empty"):
        compressor.compress(text)


@pytest.mark.parametrize("rate", [0, -0.1, 1.01, 2, math.nan, math.inf, True, "0.5"])
def test_rate_outside_range_is_a_typed_error(compressor: Compressor, rate: object) -> None:
    with pytest.raises(InvalidArgumentError, match="rate"):
        compressor.compress(SAMPLE, rate=rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("target", [0, -5, 2.5, False])
def test_bad_target_token_is_a_typed_error(compressor: Compressor, target: object) -> None:
    with pytest.raises(InvalidArgumentError, match="target_token"):
        compressor.compress(SAMPLE, target_token=target)  # type: ignore[arg-type]


def test_bad_types_and_invalid_unicode_are_typed_errors(compressor: Compressor) -> None:
    with pytest.raises(InvalidArgumentError):
        compressor.compress(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        compressor.compress(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(InputEncodingError):
        compressor.compress("broken \ud800 surrogate")


def test_empty_context_among_others_is_kept_empty(compressor: Compressor) -> None:
    result = compressor.compress(["", SAMPLE], rate=0.5)
    assert result.compressed_contexts[0] == "" and result.words[0] == []


def test_unavailable_provider_falls_back_to_cpu_with_warning(tiny_bert_bundle: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compressor = Compressor.load(tiny_bert_bundle, providers=["qnn", "cuda"])
    assert compressor.provider == "CPUExecutionProvider"
    assert any("not available" in str(w.message) for w in caught)
    assert compressor.compress(SAMPLE, rate=0.5).provider == "CPUExecutionProvider"


def test_session_options_are_validated(tiny_bert_bundle: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="threads"):
        Compressor.load(tiny_bert_bundle, threads=0)
    with pytest.raises(InvalidArgumentError, match="graph_optimization"):
        Compressor.load(tiny_bert_bundle, graph_optimization="max")
    for level in ("disable", "basic", "extended", "all"):
        compressor = Compressor.load(tiny_bert_bundle, graph_optimization=level, threads=1)
        assert compressor.compress(SAMPLE, rate=0.5).compressed_tokens > 0


def test_graph_optimization_does_not_change_the_output(tiny_bert_bundle: Path) -> None:
    base = Compressor.load(tiny_bert_bundle, graph_optimization="disable").score(SAMPLE)
    fast = Compressor.load(tiny_bert_bundle, graph_optimization="all").score(SAMPLE)
    np.testing.assert_allclose(base.logits, fast.logits, atol=1e-4)


def test_no_default_model_is_a_typed_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import edge_lingua.compressor as module

    monkeypatch.setattr(module, "shipped_bundle_path", lambda name="default": tmp_path / name)
    with pytest.raises(NoDefaultModelError, match="no default model"):
        Compressor.load()
    with pytest.raises(NoDefaultModelError, match="no small model"):
        Compressor.load("small")


def test_join_units_never_invents_text() -> None:
    from tokenizers import Tokenizer

    from tests.toolchain_models import _wordpiece_tokenizer

    tokenizer: Tokenizer = _wordpiece_tokenizer()
    text = "a-b  c\n\nd,e (f)g"
    seg = segment(tokenizer, text)
    assert seg.words() == ["a-b", "c", "d", ",", "e", "(", "f", ")", "g"]
    keep = np.array([1, 1, 1, 0, 1, 0, 1, 1, 1], dtype=bool)
    # a whole line kept is copied; dropped units leave one space, never glued words
    assert join_units(text, seg.word_spans, keep) == "a-b  c\n\nd e f)g"
    keep[:2] = False
    assert join_units(text, seg.word_spans, keep) == "d e f)g"


def test_a_prompt_longer_than_a_section_meets_the_budget_over_all_its_sections(
    compressor: Compressor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_lingua import sections

    monkeypatch.setattr(sections, "SECTION_CHARS", 1 << 13)  # 8 KiB sections, the same code
    line = "The committee met on Tuesday to discuss the budget for the new library wing.\n"
    text = line * (4 * sections.SECTION_CHARS // len(line) + 40)
    assert len(sections.section_bounds(text)) == 5
    origin = compressor.compress(text, rate=1.0, structure="markdown").origin_tokens
    half = compressor.compress(text, rate=0.5)
    assert half.origin_tokens == origin
    assert abs(half.compressed_tokens - origin / 2) <= 0.02 * origin
    small = compressor.compress(text, target_token=1500)
    assert 1450 <= small.compressed_tokens <= 1500
    assert compressor.compress(text, target_token=10 * origin).compressed_prompt == text
