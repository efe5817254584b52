"""Compression behaviour on models whose logits are set by hand (tests/controlled_models.py).

Each expectation here is computed on paper from the stated probabilities, so a change to
pooling, ranking, windowing, bundle checks or provider handling fails a test by name.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge_lingua.compressor import Compressor
from edge_lingua.errors import ChecksumMismatchError, InferenceError, ManifestError
from edge_lingua.perplexity import PerplexityCompressor
from tests.controlled_models import (
    lookup_classifier,
    surprisal,
    unigram_causal_lm,
    wordpiece_tokenizer,
)

# three words of two pieces each: "qz" = q ##z, "xw" = x ##w, "jk" = j ##k
PIECES = {"q": 0.9, "##z": 0.1, "x": 0.6, "##w": 0.6, "j": 0.3, "##k": 0.3}
# eight one-piece words with distinct keep probabilities
RANKED = {"ducks": 0.2, "lay": 0.9, "eggs": 0.4, "every": 0.8, "day": 0.1, "she": 0.7,
          "eats": 0.3, "three": 0.6}
MAX_SEQ_LEN = 16  # windows of 14 tokens between [CLS] and [SEP]


@pytest.fixture(scope="module")
def hand_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lookup_classifier(tmp_path_factory.mktemp("hand-set") / "bundle",
                             {**PIECES, **RANKED}, max_seq_len=MAX_SEQ_LEN)


@pytest.fixture(scope="module")
def compressor(hand_set: Path) -> Compressor:
    return Compressor.load(hand_set, threads=1)


def kept_words(result) -> list[str]:
    return [w for ws, ms in zip(result.words, result.kept_mask, strict=True)
            for w, k in zip(ws, ms, strict=True) if k]


def test_the_fixture_words_are_what_the_expectations_assume() -> None:
    tokenizer = wordpiece_tokenizer()
    assert tokenizer.encode("qz xw jk", add_special_tokens=False).tokens == [
        "q", "##z", "x", "##w", "j", "##k"]
    for word in RANKED:
        assert tokenizer.encode(word, add_special_tokens=False).tokens == [word]


# --- pooling and ranking -----------------------------------------------------------------------
def test_a_words_probability_is_the_mean_of_its_pieces(compressor: Compressor) -> None:
    scores = compressor.score("qz xw jk")
    assert scores.words == ["qz", "xw", "jk"]
    np.testing.assert_allclose(scores.token_probs, [0.9, 0.1, 0.6, 0.6, 0.3, 0.3], atol=1e-6)
    # mean: qz (0.9 + 0.1) / 2 = 0.5 < xw 0.6; the max of the pieces would rank qz first (0.9)
    np.testing.assert_allclose(scores.word_probs, [0.5, 0.6, 0.3], atol=1e-6)


@pytest.mark.parametrize("budget", [{"target_token": 2}, {"target_token": 3}, {"rate": 0.5}])
def test_the_word_with_the_best_mean_wins_the_budget(compressor: Compressor, budget) -> None:
    # every word costs 2 tokens, so each budget holds exactly one: xw (mean 0.6)
    result = compressor.compress("qz xw jk", **budget)
    assert kept_words(result) == ["xw"]
    assert result.compressed_prompt.split() == ["xw"]


@pytest.mark.parametrize(
    ("budget", "expected"),
    [
        ({"target_token": 1}, ["lay"]),
        ({"target_token": 2}, ["lay", "every"]),
        ({"rate": 0.5}, ["lay", "every", "she", "three"]),
        ({"target_token": 5}, ["eggs", "lay", "every", "she", "three"]),  # + eggs (0.4) ...
        ({"rate": 0.75}, ["eggs", "lay", "every", "she", "eats", "three"]),  # ... + eats (0.3)
    ],
)
def test_the_most_probable_words_are_kept_in_text_order(
    compressor: Compressor, budget: dict, expected: list[str]
) -> None:
    text = "ducks lay eggs every day she eats three"  # 0.2 0.9 0.4 0.8 0.1 0.7 0.3 0.6
    order = text.split()
    result = compressor.compress(text, **budget)
    assert kept_words(result) == sorted(expected, key=order.index)
    assert result.compressed_prompt.split() == sorted(expected, key=order.index)


def test_one_ranking_spans_every_context(compressor: Compressor) -> None:
    result = compressor.compress(["ducks lay eggs", "every day she"], target_token=2)
    assert result.kept_mask == [[False, True, False], [True, False, False]]


def test_digits_are_forced_only_when_asked(compressor: Compressor) -> None:
    text = "lay 12 every 7 she"  # the digits' pieces have keep probability sigmoid(-4)
    assert kept_words(compressor.compress(text, target_token=1)) == ["lay"]
    # whether forced words count inside the budget is issue 12's decision: only check they stay
    forced = kept_words(compressor.compress(text, target_token=1, force_reserve_digit=True))
    assert {"12", "7"} <= set(forced) <= {"lay", "12", "7"}


def test_drop_consecutive_drops_only_repeats_of_a_force_token(compressor: Compressor) -> None:
    text = "lay . . . every . . day ."
    result = compressor.compress(text, rate=1.0, force_tokens=["."], drop_consecutive=True)
    assert kept_words(result) == ["lay", ".", "every", ".", "day", "."]
    kept = compressor.compress(text, rate=1.0, force_tokens=["."])
    assert kept_words(kept) == text.split()


@pytest.mark.parametrize("budget", [2, 3, 5])
def test_the_budget_holds_in_the_target_tokenizer_and_drops_the_least_probable(
    hand_set: Path, tmp_path: Path, budget: int
) -> None:
    """A target tokenizer that also counts every space: three one-token words cost five
    tokens together, so words are dropped, least probable first, until the text fits."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["ducks", "lay", "eggs", "every", "day", "she", "eats", "three", " "]
    target = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(["[UNK]", *words])},
                                        unk_token="[UNK]"))
    target.pre_tokenizer = pre_tokenizers.Split(" ", behavior="isolated")
    path = tmp_path / "target.json"
    target.save(str(path))
    compressor = Compressor.load(hand_set, target_tokenizer=path)
    result = compressor.compress("ducks lay eggs every day she eats three", target_token=budget)
    ranking = ["lay", "every", "she", "three", "eggs", "eats", "ducks", "day"]
    kept = kept_words(result)
    assert result.compressed_tokens <= budget
    assert kept and set(kept) == set(ranking[: len(kept)])


# --- windows -----------------------------------------------------------------------------------
def test_windows_are_as_long_as_the_encoder_allows(compressor: Compressor) -> None:
    text = " ".join(["ducks"] * 40)  # 40 one-token words, no chunk end
    assert compressor.score(text).windows == [(0, 14), (14, 28), (28, 40)]


def test_a_line_break_ends_a_window(compressor: Compressor) -> None:
    text = " ".join(["lay"] * 5) + "\n" + " ".join(["lay"] * 30)
    assert compressor.score(text).windows == [(0, 5), (5, 19), (19, 33), (33, 35)]
    # without "\n" among the chunk ends the line break is an ordinary gap
    assert compressor.score(text, chunk_end_tokens=(".",)).windows == [
        (0, 14), (14, 28), (28, 35)]


def test_a_full_stop_ends_a_window_and_the_last_one_counts(compressor: Compressor) -> None:
    text = "lay lay . lay lay lay lay . lay lay lay lay lay lay lay lay lay lay lay"
    # the last "." inside the first 14 tokens is the 8th token
    assert compressor.score(text).windows == [(0, 8), (8, 19)]


def test_a_word_longer_than_a_window_is_split_and_still_compressed(
    compressor: Compressor,
) -> None:
    long_word = "x" * 30  # x ##x ##x ... : 30 pieces, more than one 14-token window
    text = f"lay {long_word} every"
    scores = compressor.score(text)
    assert scores.words == ["lay", long_word, "every"]
    assert all(hi - lo <= 14 for lo, hi in scores.windows)
    assert scores.windows[0][0] == 0 and scores.windows[-1][1] == 32
    result = compressor.compress(text, target_token=2)
    assert kept_words(result) == ["lay", "every"]


# --- bundles and providers ---------------------------------------------------------------------
def test_load_verifies_checksums_unless_told_not_to(hand_set: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(hand_set, copy)
    tokenizer = copy / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    # still a valid tokenizer.json, but not the one the manifest names
    with pytest.raises(ChecksumMismatchError, match=r"tokenizer\.json"):
        Compressor.load(copy)
    assert Compressor.load(copy, verify=False).compress("lay eggs", rate=0.5).compressed_tokens


def test_a_provider_that_fails_to_start_falls_back_to_cpu(
    hand_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """onnxruntime lists CUDA, but creating a session on it fails (as on a machine whose CUDA
    libraries are missing): the compressor warns and runs on CPU."""
    real_session = ort.InferenceSession
    attempts: list[list[str]] = []

    def session(path, sess_options=None, providers=None, **kwargs):
        attempts.append(list(providers or []))
        if providers and "CUDAExecutionProvider" in providers:
            raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected")
        return real_session(path, sess_options=sess_options, providers=providers, **kwargs)

    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", session)
    for request in (["cuda"], ["CUDA"], ["CUDAExecutionProvider"], None):
        attempts.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            compressor = Compressor.load(hand_set, providers=request)
        assert attempts[0] == ["CUDAExecutionProvider", "CPUExecutionProvider"], request
        assert compressor.provider == "CPUExecutionProvider"
        assert any("falling back to CPUExecutionProvider" in str(w.message) for w in caught)
        result = compressor.compress("ducks lay eggs every", target_token=2)
        assert kept_words(result) == ["lay", "every"]


def test_an_unavailable_provider_is_named_in_a_warning_only_when_requested(
    hand_set: Path,
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compressor = Compressor.load(hand_set, providers=["qnn"])
    assert compressor.provider == "CPUExecutionProvider"
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("QNNExecutionProvider" in m and "not available" in m for m in messages)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Compressor.load(hand_set)  # no preference: CUDA when there is one, quietly
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("name", ["", 3, None])
def test_a_provider_name_that_is_not_a_name_is_a_typed_error(hand_set: Path, name) -> None:
    from edge_lingua.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="provider names are non-empty strings"):
        Compressor.load(hand_set, providers=[name])


def test_a_model_that_fails_at_run_time_raises_inference_error(tmp_path: Path) -> None:
    # the table covers only the first 40 ids: corpus words (ids above) break the model
    broken = lookup_classifier(tmp_path / "broken", {}, table_rows=40)
    compressor = Compressor.load(broken)
    with pytest.raises(InferenceError, match="onnxruntime failed"):
        compressor.compress("ducks lay eggs", rate=0.5)


def test_golden_vectors_hold_every_option_case(hand_set: Path, tmp_path: Path) -> None:
    from edge_lingua_export.golden import write_golden_vectors

    text = ("lay 12 eggs . . every day\n" + " ".join(["she"] * 12) + " . three 7 ducks .")
    golden = json.loads(write_golden_vectors(hand_set, tmp_path, [text]).read_text())
    (case,) = golden["cases"]
    by_key = {key: r for r in case["results"] for key in r["options"]}
    for key in ("rate", "target_token", "force_tokens", "force_reserve_digit",
                "drop_consecutive", "chunk_end_tokens"):
        assert key in by_key, f"no golden result exercises {key}"
    words = case["contexts"][0]["words"]
    forced = next(r for r in case["results"] if r["options"].get("force_reserve_digit"))
    kept = [w for w, k in zip(words, forced["kept_mask"][0], strict=True) if k]
    assert {"12", "7"} <= set(kept)  # digits reserved
    assert kept.count(".") < words.count(".")  # ". ." dropped as consecutive
    assert forced["options"]["drop_consecutive"] and forced["options"]["force_reserve_digit"]
    assert by_key["target_token"]["compressed_tokens"] <= by_key["target_token"]["options"][
        "target_token"]
    # chunk ends change the windows, and the golden file records the rescored windows
    default_windows = case["contexts"][0]["windows"]
    rescored = by_key["chunk_end_tokens"]["rescored"][0]["windows"]
    assert rescored != default_windows


# --- perplexity methods ------------------------------------------------------------------------
UNIGRAM = {"the": 0.3, "on": 0.2, "cat": 0.1, "sat": 0.1, "mat": 0.05, "quantum": 0.002,
           "zebra": 0.001}
SENTENCE = "the cat sat on the mat the zebra sat on the quantum mat"  # 13 tokens


@pytest.fixture(scope="module")
def unigram(tmp_path_factory: pytest.TempPathFactory) -> PerplexityCompressor:
    return PerplexityCompressor.load(
        unigram_causal_lm(tmp_path_factory.mktemp("unigram") / "bundle", UNIGRAM))


def test_unigram_fixture_scores_what_it_says(unigram: PerplexityCompressor) -> None:
    ids = unigram.scorer.encode("the zebra").ids
    np.testing.assert_allclose(-unigram.scorer.token_logprobs(ids),
                               [surprisal(UNIGRAM, "the"), surprisal(UNIGRAM, "zebra")],
                               rtol=1e-5)


def test_iterative_perplexity_keeps_the_most_surprising_words(
    unigram: PerplexityCompressor,
) -> None:
    # rate 0.3 of 13 tokens: 3.9; one segment at tau = 3.9 / 14 keeps 3 one-token words, the
    # three most surprising: zebra (6.9 nats), quantum (6.2), mat (3.0)
    result = unigram.compress(SENTENCE, rate=0.3)
    assert kept_words(result) == ["mat", "zebra", "quantum"]
    assert result.compressed_tokens == 3


def test_self_information_keeps_the_most_informative_phrase(
    unigram: PerplexityCompressor,
) -> None:
    # phrases (cut before function words): "the cat sat" 6.2 nats, "on" 1.6, "the mat" 4.2,
    # "the zebra sat" 10.4, "on" 1.6, "the quantum mat" 10.4 - 0.7 ... ; 3.9 tokens hold one
    # three-word phrase: the one with the most nats
    values = {
        phrase: sum(surprisal(UNIGRAM, w) for w in phrase.split())
        for phrase in ("the cat sat", "the mat", "the zebra sat", "the quantum mat")
    }
    best = max(values, key=values.__getitem__)
    assert best == "the zebra sat"
    result = unigram.compress(SENTENCE, rate=0.3, method="self-information")
    assert result.compressed_prompt.split() == best.split()


# mean keep probability per context: 0.3 ("lay" 0.9 among three "day" 0.1), 0.8, 0.7, 0.6
FILTERED = ["lay day day day", "every every every every", "she she she she",
            "three three three three"]


@pytest.mark.parametrize(("budget", "expected"), [
    # level (rate + 1) / 2 = 0.75: threshold = 25th percentile of [.3 .6 .7 .8] = 0.525, so the
    # first context goes; the word cut then keeps rate x the 12 tokens left, best first
    ({"rate": 0.5}, ["", "every every every every", "she she", ""]),
    # level 0.95: threshold 0.345, the first context still goes; 10 of 12 tokens kept
    ({"rate": 0.9}, ["", "every every every every", "she she she she", "three three"]),
    # level 2 x 6 / 16 = 0.75, as for rate 0.5; 6 tokens
    ({"target_token": 6}, ["", "every every every every", "she she", ""]),
    # level 2 x 8 / 16 = 1: the threshold is the lowest context's score, and it stays
    ({"target_token": 8}, ["lay", "every every every every", "she she she", ""]),
    # a level over 1 counts as 1
    ({"target_token": 12}, ["lay", "every every every every", "she she she she",
                            "three three three"]),
])
def test_context_level_filter_drops_the_contexts_ranked_lowest(
    compressor: Compressor, budget: dict, expected: list[str]
) -> None:
    filtered = compressor.compress(FILTERED, use_context_level_filter=True, **budget)
    assert filtered.compressed_contexts == expected
    # without the filter "lay" (0.9) is the best word of all and is kept
    assert compressor.compress(FILTERED, **budget).compressed_contexts[0].startswith("lay")


def test_context_level_filter_ranks_two_contexts(compressor: Compressor) -> None:
    # scores 0.3 and 0.8; level 0.75: threshold 0.425, the first goes, 2 of 4 tokens kept
    two = ["lay day day day", "every every every every"]
    assert compressor.compress(two, use_context_level_filter=True, rate=0.5
                               ).compressed_contexts == ["", "every every"]
    assert compressor.compress(two, rate=0.5).compressed_contexts == ["lay", "every every every"]


def _rename_graph_input(bundle: Path, old: str, new: str | None) -> None:
    """Rename an input of the bundle's graph (``new`` None: remove it, when no node reads it)."""
    import onnx

    from tests.toolchain_models import rewrite_checksums

    model = onnx.load(str(bundle / "model.onnx"))
    for value in list(model.graph.input):
        if value.name == old:
            if new is None:
                model.graph.input.remove(value)
            else:
                value.name = new
    for node in model.graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
    onnx.save(model, str(bundle / "model.onnx"))
    rewrite_checksums(bundle)


def test_a_causal_graph_without_its_inputs_is_a_manifest_error(tmp_path: Path) -> None:
    no_mask = unigram_causal_lm(tmp_path / "no-mask", UNIGRAM)
    _rename_graph_input(no_mask, "attention_mask", None)
    with pytest.raises(ManifestError, match="the causal-LM graph has no 'attention_mask' input"):
        PerplexityCompressor.load(no_mask)
    no_cache = unigram_causal_lm(tmp_path / "no-cache", UNIGRAM)
    for kind in ("key", "value"):
        _rename_graph_input(no_cache, f"past_key_values.0.{kind}", f"cache.0.{kind}")
    with pytest.raises(ManifestError, match=r"no past_key_values inputs \(no KV cache\)"):
        PerplexityCompressor.load(no_cache)
