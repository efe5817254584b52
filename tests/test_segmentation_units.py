"""The segmentation layer's token attachment and window cuts, against results worked out by
hand on contexts built piece by piece (no tokenizer: offsets and token-to-unit maps are given)."""

from __future__ import annotations

import numpy as np
import pytest

from edge_lingua.segmentation import (
    Segmented,
    attach_tokens,
    join_units,
    split_units,
    window_bounds,
)


def _offsets(*pairs: tuple[int, int]) -> np.ndarray:
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def test_a_token_goes_with_the_unit_of_its_first_non_space_character() -> None:
    units = split_units("  ab  cd\n ef")  # units ab [2, 4), cd [6, 8), ef [10, 12)
    assert units.words() == ["ab", "cd", "ef"]
    tokens = _offsets((0, 1),    # whitespace only, before every unit: the first unit
                      (2, 4),    # ab
                      (4, 7),    # "  c": leading spaces, then cd
                      (7, 8),    # d
                      (8, 10),   # "\n ": whitespace only: the unit after it, ef
                      (10, 12),  # ef
                      (5, 5),    # empty, between ab and cd: the unit before it
                      (12, 12),  # empty, at the end of the text: the last unit
                      (4, 11))   # "  cd\n e": cd, its first non-space character
    assert attach_tokens(units, tokens).tolist() == [0, 0, 1, 1, 2, 2, 0, 2, 1]
    # one token, on the second unit
    assert attach_tokens(units, _offsets((6, 8))).tolist() == [1]
    assert attach_tokens(units, _offsets()).tolist() == []


def _context(text: str, tokens_per_unit: list[int]) -> Segmented:
    """``text`` split into units, each made of the given number of tokens."""
    units = split_units(text)
    assert len(tokens_per_unit) == units.n_units
    token_word = np.repeat(np.arange(units.n_units), tokens_per_unit)
    offsets = units.spans[token_word]
    return Segmented(units=units, token_ids=np.arange(token_word.size, dtype=np.int64),
                     token_word=token_word, token_offsets=offsets,
                     token_readable=np.ones(token_word.size, dtype=bool))


@pytest.mark.parametrize(("text", "tokens", "max_tokens", "ends", "windows"), [
    # fits: one window
    ("aa bb\ncc dd", [2, 1, 1, 2], 6, ["\n"], [(0, 6)]),
    # a line break ends a chunk: the window ends after bb (token 3), not at the last whole
    # unit that fits (token 4)
    ("aa bb\ncc dd", [2, 1, 1, 2], 4, ["\n"], [(0, 3), (3, 6)]),
    ("aa bb\ncc dd", [2, 1, 1, 2], 4, [], [(0, 4), (4, 6)]),
    # a chunk-end token ends a chunk too
    ("aa . cc dd", [2, 1, 1, 2], 4, ["."], [(0, 3), (3, 6)]),
    # the last chunk end inside the window wins; cc, not followed by a line break, is none
    ("aa\nbb cc dd\n", [1, 1, 1, 1], 3, ["\n"], [(0, 1), (1, 4)]),
    # a window ends after a whole unit, never inside one that fits in a window
    ("aa bb", [1, 3], 3, [], [(0, 1), (1, 4)]),
    # a unit longer than a window is split inside it
    ("aa bb", [5, 1], 2, [], [(0, 2), (2, 4), (4, 6)]),
    ("", [], 4, ["\n"], []),
])
def test_windows_end_at_chunk_ends_then_at_whole_units(
    text: str, tokens: list[int], max_tokens: int, ends: list[str],
    windows: list[tuple[int, int]],
) -> None:
    assert window_bounds(_context(text, tokens), max_tokens, ends) == windows


@pytest.mark.parametrize(("text", "keep", "joined"), [
    # a leading blank line stays when the first line with words keeps some
    ("\nab cd", [True, False], "\nab"),
    # the first line, kept whole, is copied from its first character
    ("ab\ncd ef", [True, True, False], "ab\ncd"),
    # a line kept whole is copied as it is, trailing spaces and all
    ("ab cd\nef gh  \nij kl", [True, False, True, True, True, False], "ab\nef gh  \nij"),
    # a partly kept line keeps its indentation and line break
    ("  ab cd\nef", [False, True, True], "  cd\nef"),
])
def test_kept_units_rebuild_their_lines(text: str, keep: list[bool], joined: str) -> None:
    units = split_units(text)
    assert units.n_units == len(keep)
    assert join_units(text, units.spans, np.asarray(keep)) == joined
