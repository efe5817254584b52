"""Property tests: subsequence, budget and determinism hold for any text."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_lingua.compressor import Compressor

WORDS = st.sampled_from(
    ["the", "ducks", "lay", "16", "eggs", "per", "day", ".", ",", "?", "$2", "48/2", "\n",
     "market", "😀", "你好", "שלום", "Ångström", "x" * 30, "well-known", "e.g.", "\t", "3.14"]
)
TEXTS = st.lists(WORDS, min_size=1, max_size=200).map(" ".join).filter(lambda t: t.strip())
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def compressor(tiny_bert_bundle: Path) -> Compressor:
    return Compressor.load(tiny_bert_bundle, threads=1)


def _subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(word == other for other in it) for word in small)


@SETTINGS
@given(text=TEXTS, rate=st.floats(min_value=0.01, max_value=1.0))
def test_output_is_a_subsequence_within_budget(compressor: Compressor, text: str,
                                               rate: float) -> None:
    result = compressor.compress(text, rate=rate)
    kept = [w for w, k in zip(result.words[0], result.kept_mask[0], strict=True) if k]
    assert _subsequence(kept, result.words[0])
    assert re.sub(r"\s", "", result.compressed_prompt) == "".join(kept).replace(" ", "")
    assert result.compressed_tokens <= rate * result.origin_tokens + 1e-9


@SETTINGS
@given(text=TEXTS, target=st.integers(min_value=1, max_value=300),
       force=st.lists(st.sampled_from([".", "?", ",", "day"]), max_size=3),
       digits=st.booleans())
def test_budget_plus_forced_tokens(compressor: Compressor, text: str, target: int,
                                   force: list[str], digits: bool) -> None:
    result = compressor.compress(text, target_token=target, force_tokens=force,
                                 force_reserve_digit=digits)
    words, mask = result.words[0], result.kept_mask[0]
    forced = [w for w in words if w in force or (digits and re.search(r"\d", w))]
    kept = [w for w, k in zip(words, mask, strict=True) if k]
    assert all(w in kept for w in forced)
    forced_tokens = sum(len(compressor._tokenizer.encode(w, add_special_tokens=False).ids)
                        for w in forced)
    assert result.compressed_tokens <= target + forced_tokens


@SETTINGS
@given(text=TEXTS)
def test_same_input_same_output(compressor: Compressor, text: str) -> None:
    first = compressor.compress(text, rate=0.4)
    second = compressor.compress(text, rate=0.4)
    assert first.compressed_prompt == second.compressed_prompt
    assert first.kept_mask == second.kept_mask


def test_eight_threads_compressing_concurrently_agree(compressor: Compressor) -> None:
    texts = [
        " ".join(["Janet sells 16 - 3 - 4 = 9 duck eggs a day.", "She makes $18.", "#### 18"] * k)
        for k in range(1, 17)
    ]
    expected = [compressor.compress(t, rate=0.33).compressed_prompt for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            got = list(pool.map(lambda t: compressor.compress(t, rate=0.33).compressed_prompt,
                                texts))
            assert got == expected
