"""Bounded memory on megabyte prompts: sections, and a peak-RSS bound that catches growth."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_lingua import sections
from edge_lingua.compressor import Compressor
from edge_lingua.sections import section_bounds

# Sections of 4 Ki characters in these tests: the same code path as the default 128 Ki, at a
# size that keeps the tests fast.
SMALL_SECTION = 4096

PARAGRAPH = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' "
    "market daily for $2 per fresh duck egg.\nHow much in dollars does she make every day?\n\n"
)


@pytest.fixture(scope="module")
def compressor(tiny_bert_bundle: Path) -> Compressor:
    return Compressor.load(tiny_bert_bundle, threads=1)


def _long_text(n_chars: int) -> str:
    return (PARAGRAPH * (n_chars // len(PARAGRAPH) + 1))[:n_chars]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \n\t."), max_size=300), st.integers(1, 40))
def test_section_bounds_cover_the_text_in_order_within_the_limit(text: str, limit: int) -> None:
    bounds = section_bounds(text, limit)
    assert "".join(text[lo:hi] for lo, hi in bounds) == text
    assert all(0 < hi - lo <= limit for lo, hi in bounds) or text == ""
    for lo, hi in bounds[:-1]:
        piece = text[lo:hi]
        if "\n" in text[lo : lo + limit]:  # a line break in reach: the cut follows one
            assert piece.endswith("\n")
        elif any(c in " \t" for c in text[lo : lo + limit]):  # else whitespace: no word cut
            assert piece[-1] in " \t"


@pytest.fixture
def small_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sections, "SECTION_CHARS", SMALL_SECTION)


@pytest.mark.usefixtures("small_sections")
def test_long_prompt_is_compressed_in_sections_within_its_budget(compressor: Compressor) -> None:
    text = _long_text(3 * SMALL_SECTION + 1000)
    result = compressor.compress(text, rate=0.4)
    assert result.compressed_tokens <= 0.4 * result.origin_tokens * 1.01
    assert result.origin_tokens == sum(
        compressor._count(text[lo:hi]) for lo, hi in section_bounds(text))
    words, kept = result.words[0], np.asarray(result.kept_mask[0])
    assert len(words) == kept.size == sum(
        len(compressor.score(text[lo:hi]).words) for lo, hi in section_bounds(text))
    assert "".join(words) == "".join(text.split())  # every non-space character, in order
    assert result.compressed_contexts == [result.compressed_prompt]
    # the output is each section's own compression, joined
    sections = [compressor.compress(text[lo:hi], rate=0.4, structure="text")
                for lo, hi in section_bounds(text)]
    assert result.compressed_prompt == "".join(s.compressed_prompt for s in sections)
    many = compressor.compress_many([text, PARAGRAPH], rate=0.4)
    assert many[0].compressed_prompt == result.compressed_prompt


@pytest.mark.usefixtures("small_sections")
def test_target_token_budget_holds_over_all_sections(compressor: Compressor) -> None:
    text = _long_text(4 * SMALL_SECTION + 500)
    result = compressor.compress(text, target_token=1000)
    assert len(section_bounds(text)) == 5
    assert 900 < result.compressed_tokens <= 1000 * 1.01


def test_prompts_up_to_a_section_are_compressed_whole(
    compressor: Compressor, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = _long_text(2 * SMALL_SECTION)
    whole = compressor.compress(text, rate=0.4)
    monkeypatch.setattr(sections, "SECTION_CHARS", len(text))
    assert replace(compressor.compress(text, rate=0.4), elapsed_s=0) == replace(whole, elapsed_s=0)
    monkeypatch.setattr(sections, "SECTION_CHARS", len(text) - 1)
    assert compressor.compress(text, rate=0.4).compressed_prompt != whole.compressed_prompt


def test_peak_memory_does_not_grow_with_the_prompt(tiny_bert_bundle: Path, tmp_path: Path) -> None:
    """``edge-lingua compress`` on 64 Ki and 512 Ki characters in sections of 16 Ki: the peak
    (VmHWM) may not grow with the input. Holding the whole prompt's units and tokens costs
    ~400 bytes per character (180 MB more here), keeping each section's scores ~100 (45 MB);
    what is left grows ~8 bytes per character (the result's word and keep lists, the text)."""
    child = (
        "import sys\n"
        "import edge_lingua.sections\n"
        "edge_lingua.sections.SECTION_CHARS = 1 << 14\n"
        "from edge_lingua.bench import peak_rss_mb\n"
        "from edge_lingua.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "print('PEAK', peak_rss_mb(), file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )

    def peak(n_bytes: int) -> float:
        path = tmp_path / f"{n_bytes}.txt"
        path.write_text(_long_text(n_bytes), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-c", child, "compress", str(path), "--rate", "0.33",
             "--bundle", str(tiny_bert_bundle), "--threads", "1"],
            capture_output=True, text=True, timeout=600, check=True)
        assert len(done.stdout) > n_bytes // 5
        return float(done.stderr.split("PEAK")[-1])

    small, large = peak(2**16), peak(2**19)
    assert large - small < 20, json.dumps({"64 Ki": small, "512 Ki": large})
