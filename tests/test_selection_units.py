"""The selection layer's rules, one function at a time, against results worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_lingua.errors import InvalidArgumentError
from edge_lingua.selection import (
    DEFAULT_RATE,
    Budget,
    drop_consecutive_repeats,
    force_phrases,
    forced_words,
    make_budget,
    select,
    trim_to_budget,
)


# --- budgets -----------------------------------------------------------------------------------
def test_a_budget_is_a_rate_of_the_original_or_a_token_count() -> None:
    assert make_budget(None, None) == Budget(rate=DEFAULT_RATE, target_token=None)
    assert make_budget(0.25, None) == Budget(rate=0.25, target_token=None)
    assert make_budget(1, None) == Budget(rate=1.0, target_token=None)
    assert make_budget(0.25, 40) == Budget(rate=None, target_token=40)  # target_token wins
    assert make_budget(None, np.int64(7)) == Budget(rate=None, target_token=7)
    assert Budget(rate=0.25, target_token=None).tokens(200) == 50.0
    assert Budget(rate=None, target_token=40).tokens(200) == 40.0
    assert isinstance(make_budget(None, np.int64(7)).target_token, int)
    assert isinstance(make_budget(1, None).rate, float)


@pytest.mark.parametrize(("rate", "target_token", "message"), [
    (0.0, None, "rate must be in (0, 1], got 0.0"),
    (1.0000001, None, "rate must be in (0, 1], got 1.0000001"),
    (-0.5, None, "rate must be in (0, 1], got -0.5"),
    (math.nan, None, "rate must be in (0, 1], got nan"),
    (math.inf, None, "rate must be in (0, 1], got inf"),
    (True, None, "rate must be a number in (0, 1], got True"),
    ("0.5", None, "rate must be a number in (0, 1], got '0.5'"),
    (None, 0, "target_token must be > 0, got 0"),
    (None, -3, "target_token must be > 0, got -3"),
    (None, 2.0, "target_token must be an integer, got 2.0"),
    (None, True, "target_token must be an integer, got True"),
    (0.5, "10", "target_token must be an integer, got '10'"),
])
def test_a_bad_budget_is_refused_with_its_value(rate: object, target_token: object,
                                                message: str) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        make_budget(rate, target_token)  # type: ignore[arg-type]
    assert str(raised.value) == message


# --- forced words ------------------------------------------------------------------------------
def test_a_force_token_is_the_sequence_of_its_units() -> None:
    assert force_phrases(["The answer is", "\n", ".", "  "]) == (("The", "answer", "is"), (".",))
    assert force_phrases([]) == ()
    with pytest.raises(InvalidArgumentError, match="a list of strings, not one string"):
        force_phrases("The answer")
    with pytest.raises(InvalidArgumentError, match="must be strings, got 3"):
        force_phrases([".", 3])  # type: ignore[list-item]


def test_every_whole_occurrence_of_a_force_phrase_is_forced() -> None:
    words = ["The", "answer", "is", "The", "answer", "was", "is", "answer", "is"]
    mask = forced_words(words, ["answer is"], force_reserve_digit=False)
    assert mask.tolist() == [False, True, True, False, False, False, False, True, True]
    both = forced_words(words, ["answer is", "The answer"], force_reserve_digit=False)
    assert both.tolist() == [True, True, True, True, True, False, False, True, True]
    assert forced_words(words, [], force_reserve_digit=False).tolist() == [False] * 9
    assert forced_words(["answer"], ["answer is"], force_reserve_digit=False).tolist() == [False]


def test_digits_are_forced_only_when_asked() -> None:
    words = ["pay", "$12", "or", "x7", "seven", "3.5"]
    assert forced_words(words, [], force_reserve_digit=True).tolist() == [
        False, True, False, True, False, True]
    assert not forced_words(words, [], force_reserve_digit=False).any()
    with_phrase = forced_words(words, ["or"], force_reserve_digit=True)
    assert with_phrase.tolist() == [False, True, True, True, False, True]
    assert forced_words([], ["or"], force_reserve_digit=True).shape == (0,)


# --- select ------------------------------------------------------------------------------------
def test_the_most_probable_words_are_taken_until_the_next_does_not_fit() -> None:
    probs = np.array([0.9, 0.2, 0.8, 0.7, 0.1])
    costs = np.array([1.0, 1.0, 2.0, 1.0, 1.0])
    none = np.zeros(5, dtype=bool)
    assert select(probs, costs, none, 3.0).tolist() == [True, False, True, False, False]
    # 0.9 (1) then 0.8 (2) would make 3 > 2.5: a threshold stops there, although the cheaper
    # 0.7 and 0.2 would still fit
    assert select(probs, costs, none, 2.5).tolist() == [True, False, False, False, False]
    assert select(probs, costs, none, 4.0).tolist() == [True, False, True, True, False]
    assert select(probs, costs, none, 5.0).tolist() == [True, True, True, True, False]
    assert select(probs, costs, none, 6.0).tolist() == [True] * 5
    assert select(probs, costs, none, 0.5).tolist() == [False] * 5


def test_ties_go_to_the_earlier_word() -> None:
    probs = np.array([0.5, 0.5, 0.5, 0.5])
    costs = np.ones(4)
    assert select(probs, costs, np.zeros(4, dtype=bool), 2.0).tolist() == [
        True, True, False, False]


def test_forced_words_come_first_and_spend_the_budget() -> None:
    probs = np.array([0.9, 0.1, 0.8, 0.7])
    costs = np.array([1.0, 2.0, 1.0, 1.0])
    forced = np.array([False, True, False, False])
    assert select(probs, costs, forced, 3.0).tolist() == [True, True, False, False]
    assert select(probs, costs, forced, 4.0).tolist() == [True, True, True, False]
    # forced words over the budget are all kept, and nothing else
    assert select(probs, costs, forced, 1.0).tolist() == [False, True, False, False]
    assert select(probs, costs, forced, 2.0).tolist() == [False, True, False, False]
    everything = np.ones(4, dtype=bool)
    assert select(probs, costs, everything, 0.0).tolist() == [True] * 4


@given(st.lists(st.tuples(st.floats(0, 1), st.integers(1, 4)), min_size=1, max_size=30),
       st.floats(0, 60))
def test_select_keeps_a_prefix_of_the_ranking_within_the_budget(
        units: list[tuple[float, int]], budget: float) -> None:
    probs = np.array([p for p, _ in units])
    costs = np.array([float(c) for _, c in units])
    keep = select(probs, costs, np.zeros(len(units), dtype=bool), budget)
    assert costs[keep].sum() <= budget
    ranking = sorted(range(len(units)), key=lambda i: (-probs[i], i))
    taken = [bool(keep[i]) for i in ranking]
    assert taken == sorted(taken, reverse=True)  # a prefix of the ranking
    if not all(taken):  # and the next word in the ranking would not have fit
        nxt = ranking[taken.index(False)]
        assert costs[keep].sum() + costs[nxt] > budget


# --- repeats and trimming ----------------------------------------------------------------------
def test_a_repeated_single_unit_force_token_is_dropped_among_kept_words() -> None:
    words = [".", ".", "a", ".", ".", ".", "b", "!", "!", "the end", "the end"]
    keep = np.array([True, True, True, True, False, True, True, True, True, True, True])
    out = drop_consecutive_repeats(words, keep, [".", "!", "the end"])
    # "." after a dropped "." still follows the kept "." before it; "the end" is two units
    assert out.tolist() == [True, False, True, True, False, False, True, True, False, True, True]
    assert keep[1]  # the input mask is not changed
    assert drop_consecutive_repeats(words, keep, []).tolist() == keep.tolist()


def test_trimming_drops_the_least_probable_unforced_words() -> None:
    keep = np.array([True, True, True, False, True])
    probs = np.array([0.9, 0.1, 0.5, 0.0, 0.2])
    forced = np.array([False, True, False, False, False])
    assert trim_to_budget(keep, probs, forced, 1).tolist() == [True, True, True, False, False]
    assert trim_to_budget(keep, probs, forced, 2).tolist() == [True, True, False, False, False]
    assert trim_to_budget(keep, probs, forced, 0).tolist() == [True, True, True, False, False]
    assert trim_to_budget(keep, probs, forced, 9).tolist() == [False, True, False, False, False]
    only_forced = np.array([False, True, False, False, False])
    assert trim_to_budget(only_forced, probs, forced, 3).tolist() == only_forced.tolist()
    ties = trim_to_budget(np.ones(3, dtype=bool), np.full(3, 0.5), np.zeros(3, dtype=bool), 1)
    assert ties.tolist() == [False, True, True]
    assert keep.tolist() == [True, True, True, False, True]  # the input mask is not changed
