"""Cascade building blocks: circuit breaker, retry timing, prompt preparation,
deferral queue, ledger and the ``edge-lingua ledger`` command."""

from __future__ import annotations

import email.utils
import json
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from edge_lingua.cascade.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from edge_lingua.cascade.ledger import Entry, Ledger, PriceTable, format_summary, summarise
from edge_lingua.cascade.policy import LocalAnswer, Policy
from edge_lingua.cascade.prompt import compressible, plain_messages, prepare, split_protected
from edge_lingua.cascade.queue import DONE, FAILED, PENDING, DeferredQueue
from edge_lingua.cascade.redaction import Redactor
from edge_lingua.cascade.remote import RetryPolicy, _describe, check_usage, parse_retry_after
from edge_lingua.errors import InvalidArgumentError, StorageError
from edge_lingua.result import CompressionResult
from tests.servers import REPO

pytestmark = pytest.mark.timeout(120)


def words(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    vocab = ["the", "ducks", "lay", "eggs", "every", "day", "she", "eats", "three", "for",
             "breakfast", "and", "bakes", "muffins"]
    return " ".join(rng.choice(vocab) for _ in range(n)) + "."


# --- circuit breaker and retry timing -------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_and_probes_once_after_reset():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_after_s=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == CLOSED
    breaker.record_failure()
    assert breaker.state == OPEN and not breaker.allow()
    assert breaker.retry_in() == pytest.approx(10)
    clock.now += 10
    assert breaker.state == HALF_OPEN
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one probe at a time
    breaker.record_failure()  # the probe failed: open again for a full period
    assert breaker.state == OPEN
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.allow()


def test_breaker_defaults_are_the_documented_ones():
    """docs/CASCADE.md: 5 consecutive failures open it, for 30 s."""
    breaker = CircuitBreaker()
    assert (breaker.failure_threshold, breaker.reset_after_s) == (5, 30.0)


@pytest.mark.parametrize(("settings", "message"), [
    ({"failure_threshold": 0}, "failure_threshold must be a positive integer, got 0"),
    ({"failure_threshold": 2.5}, "failure_threshold must be a positive integer, got 2.5"),
    ({"reset_after_s": 0}, "reset_after_s must be > 0, got 0"),
    ({"reset_after_s": -1.5}, "reset_after_s must be > 0, got -1.5"),
])
def test_breaker_refuses_bad_settings_with_their_values(settings, message):
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        CircuitBreaker(**settings)


def test_breaker_success_resets_the_failure_count():
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=1)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == CLOSED


def test_backoff_is_jittered_exponential_and_capped():
    policy = RetryPolicy(backoff_base_s=0.5, backoff_max_s=4.0)
    rng = random.Random(0)
    for retry, cap in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        waits = [policy.backoff(retry, rng) for _ in range(200)]
        assert all(0 <= w <= cap for w in waits)
        assert max(waits) > 0.8 * cap and min(waits) < 0.2 * cap  # spread over [0, cap]


def test_retry_after_parses_seconds_and_http_dates():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None



def test_retry_in_is_zero_whenever_a_call_may_go_now():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=10, clock=clock)
    assert breaker.retry_in() == 0.0  # closed
    breaker.record_failure()
    clock.now += 4
    assert breaker.retry_in() == pytest.approx(6)
    clock.now += 7
    assert breaker.state == HALF_OPEN and breaker.retry_in() == 0.0


def test_an_http_date_retry_after_is_measured_from_now_by_default():
    in_an_hour = email.utils.formatdate(time.time() + 3600, usegmt=True)
    assert 3590 <= parse_retry_after(in_an_hour) <= 3600
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # long past


@pytest.mark.parametrize(("error", "described"), [
    (ConnectionResetError(104, "Connection reset by peer"),
     "ConnectionResetError: [Errno 104] Connection reset by peer"),
    (ConnectionResetError(), "ConnectionResetError"),  # nothing to add to the type
])
def test_a_network_error_is_described_by_its_type_and_its_message_if_any(
    error: Exception, described: str
) -> None:
    assert _describe(error) == described


@pytest.mark.parametrize(("tokens", "text", "accepted"), [
    (1, "4", True), (0, "4", False), (3, "  \n", False),
])
def test_a_confident_local_answer_is_accepted_when_it_says_something(
    tokens: int, text: str, accepted: bool
) -> None:
    answer = LocalAnswer(text, mean_logprob=-0.1, completion_tokens=tokens, prompt_tokens=9,
                         elapsed_s=0.1)
    assert Policy(min_confidence=-0.5).accept(answer) is accepted

# --- prompt preparation ---------------------------------------------------------------------
def test_split_protected_keeps_code_and_pins_apart():
    text = (
        "Intro words here.\n```python\nx = 1  # keep me\n```\nMiddle with `inline()` and "
        "PIN-123 inside.\n~~~\nunclosed fence runs to the end"
    )
    pieces = split_protected(text, pins=["PIN-123"])
    assert "".join(p.text for p in pieces) == text
    protected = [p.text for p in pieces if not p.compress]
    assert "```python\nx = 1  # keep me\n```" in protected
    assert "`inline()`" in protected and "PIN-123" in protected
    assert protected[-1].startswith("~~~")


def test_prepare_compresses_only_marked_text_and_keeps_code_verbatim(compressor):
    count = compressor_counter(compressor)
    code = "```\nfor i in range(10):\n    print(i)\n```"
    context = f"{words(120, 1)}\n{code}\n{words(120, 2)} ORDER-77 {words(60, 3)}"
    question = "How many eggs does she sell every day?"
    messages = [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": [compressible(context, pins=["ORDER-77"]),
                                     {"type": "text", "text": question}]},
    ]
    prepared = prepare(messages, compressor, count, rate=0.4)
    system, user = prepared.messages
    assert system == {"role": "system", "content": "You are a careful assistant."}
    assert isinstance(user["content"], str)
    assert code in user["content"] and "ORDER-77" in user["content"]
    assert user["content"].endswith("\n" + question)
    assert "compress" not in json.dumps(prepared.messages)
    assert prepared.sent_tokens < prepared.original_tokens
    assert prepared.original_tokens == count(
        "You are a careful assistant." + context + question
    )
    # the same request without a compressor goes out as written
    plain = prepare(messages, None, count)
    assert plain.messages == plain_messages(messages)
    assert plain.saved_tokens == 0


def test_prepare_marks_whole_messages_and_redacts_everything_that_leaves(compressor):
    count = compressor_counter(compressor)
    messages = [
        {"role": "user", "compress": True,
         "content": f"{words(80, 4)} mail ann@corp.example or call +1 415 555 0132 {words(80, 5)}"},
        {"role": "user", "content": "my key is sk-abcdefghijklmnop123456, is that ok?"},
    ]
    prepared = prepare(messages, compressor, count, rate=0.9, redactor=Redactor())
    sent = json.dumps(prepared.messages)
    assert "ann@corp.example" not in sent and "sk-abcdefghijklmnop123456" not in sent
    assert "555 0132" not in sent
    assert prepared.redactions["api_key"] == 1
    assert prepared.messages[1]["content"] == "my key is [API_KEY], is that ok?"


@pytest.mark.parametrize(("messages", "message"), [
    ([], "messages must be a non-empty list of chat messages"),
    ("hello", "messages must be a non-empty list of chat messages"),
    ([{"content": "no role"}], "message 0 must be an object with a string 'role'"),
    ([{"role": "user", "content": 5}], "message 0 content must be a string or a list of parts"),
])
def test_prepare_rejects_malformed_messages(messages, message):
    with pytest.raises(InvalidArgumentError, match=f"^{re.escape(message)}$"):
        prepare(messages, None, len)


@pytest.mark.parametrize("limits", [{"backoff_base_s": -1}, {"backoff_max_s": -0.5},
                                    {"max_retry_after_s": -2}])
def test_retry_policy_refuses_negative_limits(limits):
    with pytest.raises(InvalidArgumentError,
                       match=r"^backoff and Retry-After limits must be >= 0$"):
        RetryPolicy(**limits)


@pytest.mark.parametrize("retries", [-1, 1.5, "3"])
def test_retry_policy_refuses_a_retry_count_that_is_not_a_count(retries):
    message = f"max_retries must be an integer >= 0, got {retries!r}"
    with pytest.raises(InvalidArgumentError, match=f"^{re.escape(message)}$"):
        RetryPolicy(max_retries=retries)


@pytest.mark.parametrize(("value", "message"), [
    ("high", "min_confidence must be a number, got 'high'"),
    (float("nan"), "min_confidence must be a number, got nan"),
    (0.5, "min_confidence is a mean log-probability, so <= 0; got 0.5"),
])
def test_a_policy_refuses_a_confidence_that_is_no_log_probability(value, message):
    with pytest.raises(InvalidArgumentError, match=f"^{re.escape(message)}$"):
        Policy(min_confidence=value)


def test_a_policy_takes_zero_as_its_confidence_threshold():
    assert Policy(min_confidence=0).min_confidence == 0


def test_retry_policy_takes_zero_for_every_limit():
    policy = RetryPolicy(max_retries=0, backoff_base_s=0, backoff_max_s=0, max_retry_after_s=0)
    assert policy.backoff(0, random.Random(0)) == 0



class RecordingCompressor:
    """A compressor whose output is ``keep(context)`` for each context, and which notes what
    it was asked (the options of every call)."""

    def __init__(self, keep: Any = lambda context: context, question_aware: bool = True) -> None:
        self.keep = keep
        self.question_aware = question_aware
        self.calls: list[dict[str, Any]] = []

    @property
    def questions(self) -> list[str | None]:
        return [call["question"] for call in self.calls]

    def compress(self, context: str | list[str], *, rate: float | None = None,
                 target_token: int | None = None, force_tokens: Iterable[str] = (),
                 question: str | None = None) -> CompressionResult:
        self.calls.append({"contexts": context, "rate": rate, "target_token": target_token,
                           "force_tokens": force_tokens, "question": question})
        contexts = [self.keep(c) for c in ([context] if isinstance(context, str) else context)]
        return CompressionResult("\n".join(contexts), contexts, [], [], 0, 0, 0.0, "echo", "echo")


IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


@pytest.mark.parametrize(("last_user", "asked"), [
    ("How many eggs?", "How many eggs?"),
    ([{"type": "text", "text": "How many eggs"}, IMAGE, {"type": "text", "text": "per day?"}],
     "How many eggs\nper day?"),
    ([IMAGE], None),  # no text: nothing to ask
], ids=["string", "parts", "no-text"])
def test_the_last_user_message_is_the_question_the_context_is_compressed_for(
    last_user: Any, asked: str | None
) -> None:
    compressor = RecordingCompressor()
    messages = [{"role": "user", "content": "an old question"},
                {"role": "system", "content": words(40), "compress": True},
                {"role": "user", "content": last_user}]
    prepare(messages, compressor, len, rate=0.5, ask_last_user=True)
    assert compressor.questions == [asked]


@pytest.mark.parametrize("question_aware", [True, False])
def test_prepare_hands_the_compressor_its_options_and_a_question_only_when_asked(
        question_aware: bool) -> None:
    compressor = RecordingCompressor(question_aware=question_aware)
    messages = [{"role": "system", "content": words(40), "compress": True},
                {"role": "user", "content": "How many eggs?"}]
    prepare(messages, compressor, len, rate=0.4, target_token=12, force_tokens=["eggs"])
    prepare(messages, compressor, len, rate=0.7, ask_last_user=True)
    assert compressor.calls == [
        {"contexts": [words(40)], "rate": 0.4, "target_token": 12, "force_tokens": ("eggs",),
         "question": None},
        {"contexts": [words(40)], "rate": 0.7, "target_token": None, "force_tokens": (),
         "question": "How many eggs?" if question_aware else None},
    ]


def test_split_protected_prefers_the_longest_pin_and_makes_no_empty_pieces():
    from edge_lingua.cascade.prompt import Piece

    assert split_protected("use ab and abc now", ["ab", "abc"]) == [
        Piece("use ", True), Piece("ab", False), Piece(" and ", True), Piece("abc", False),
        Piece(" now", True)]
    assert split_protected("abc", ["ab", "abc"]) == [Piece("abc", False)]
    assert split_protected("x|y and z", ["x|y", "z"]) == [
        Piece("x|y", False), Piece(" and ", True), Piece("z", False)]
    assert split_protected("plain", ["", "absent"]) == [Piece("plain", True)]
    assert split_protected("", ["pin"]) == []


def _first_word(context: str) -> str:
    return context.split()[0] if context.split() else ""


def test_compressed_parts_go_back_in_place_with_their_surrounding_whitespace():
    compressor = RecordingCompressor(keep=_first_word)
    context = [{"type": "text", "text": "  alpha delta beta gamma\n", "compress": True,
                "pins": ["gamma"]},
               IMAGE,
               {"type": "text", "text": "as written", "pins": ["ignored"]}]
    messages = [{"role": "user", "content": context, "pins": ["beta"]},
                {"role": "user", "content": [{"type": "text", "text": "one two"},
                                             {"type": "text", "text": "three five PIN four six",
                                              "compress": True, "pins": ["PIN"]}]},
                {"role": "assistant", "content": None, "compress": True},
                {"role": "user", "content": "last"}]
    prepared = prepare(messages, compressor, len)
    # pins of the message and of the part both hold; only the text between them is compressed
    assert compressor.calls[0]["contexts"] == ["  alpha delta ", "three five ", " four six"]
    assert prepared.messages == [
        {"role": "user", "content": [{"type": "text", "text": "  alpha beta gamma\n"}, IMAGE,
                                     {"type": "text", "text": "as written"}]},
        {"role": "user", "content": "one two\nthree PIN four"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "last"},
    ]
    assert (prepared.original_tokens, prepared.sent_tokens) == (
        len("  alpha delta beta gamma\nas writtenone twothree five PIN four sixlast"),
        len("  alpha beta gamma\nas writtenone twothree PIN fourlast"))


def test_a_piece_compressed_to_nothing_leaves_its_whitespace():
    compressor = RecordingCompressor(keep=lambda context: " ")
    messages = [{"role": "user", "compress": True, "pins": ["PIN"],
                 "content": "PIN  some words\n  PIN words\tPIN"}]
    prepared = prepare(messages, compressor, len)
    assert prepared.messages[0]["content"] == "PIN  PIN PIN"  # the leading whitespace


def test_a_text_part_without_a_string_text_is_refused():
    messages = [{"role": "user", "content": [{"type": "text", "text": None}]}]
    with pytest.raises(InvalidArgumentError,
                       match=r"^a text content part needs a string 'text'$"):
        prepare(messages, None, len)


def compressor_counter(compressor):
    from edge_lingua.cascade.prompt import tokenizer_counter

    return tokenizer_counter(compressor.bundle.tokenizer_path)


# --- deferral queue -------------------------------------------------------------------------
@pytest.mark.parametrize("lease_s", [0, -1.0])
def test_a_lease_must_last_some_time(tmp_path: Path, lease_s: float) -> None:
    with pytest.raises(InvalidArgumentError, match="lease_s must be > 0"):
        DeferredQueue(tmp_path / "q.sqlite", lease_s)


@pytest.mark.parametrize(("open_store", "what"), [
    (Ledger, "ledger"), (DeferredQueue, "deferral queue")])
def test_each_sqlite_failure_names_the_store_and_the_cause(
    tmp_path: Path, open_store: Any, what: str
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError) as raised:
        open_store(blocker / "store.sqlite")
    assert str(raised.value) == (
        f"cannot create the {what} folder {blocker}: File exists")
    with pytest.raises(StorageError) as raised:
        open_store(tmp_path)  # a folder, not a file
    assert str(raised.value) == f"cannot open the {what} {tmp_path}: unable to open database file"
    path = tmp_path / "store.sqlite"
    store = open_store(path)
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(StorageError) as raised, store._db() as db:
        db.execute("SELECT 1")
    assert str(raised.value) == f"cannot write the {what} {path}: file is not a database"


def test_the_deferral_queue_syncs_every_commit_and_the_ledger_does_not(tmp_path: Path) -> None:
    """A deferred request must survive a power cut (synchronous=FULL, 2); the ledger's rows
    may lose the last commits (NORMAL, 1, under WAL)."""
    for store, level in ((DeferredQueue(tmp_path / "q.sqlite"), 2),
                         (Ledger(tmp_path / "l.sqlite"), 1)):
        with store._db() as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.execute("PRAGMA synchronous").fetchone()[0] == level


def test_queue_keeps_requests_across_reopen_and_threads(tmp_path):
    path = tmp_path / "q" / "deferred.sqlite"
    queue = DeferredQueue(path)
    ids: list[str] = []
    lock = threading.Lock()

    def put(n: int) -> None:
        for i in range(10):
            rid = DeferredQueue(path).put({"messages": [{"role": "user", "content": f"{n}-{i}"}]},
                                          {"n": n})
            with lock:
                ids.append(rid)

    threads = [threading.Thread(target=put, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    reopened = DeferredQueue(path)
    pending = reopened.pending()
    assert sorted(d.id for d in pending) == sorted(ids) and len(ids) == 40
    first = reopened.claim("a")
    assert first.id == pending[0].id and first.attempts == 1
    assert reopened.claim("b").id == pending[1].id  # a leased request is not claimed twice
    assert not reopened.complete(first.id, {"choices": []}, owner="b")  # only the holder can
    assert reopened.complete(first.id, {"choices": []}, owner="a")
    assert not reopened.complete(first.id, {"choices": []}, owner="a")  # and only once
    assert reopened.fail(pending[1].id, "HTTP 400", owner="b")
    assert queue.get(first.id).status == DONE and queue.get(first.id).attempts == 1
    assert queue.get(pending[1].id).error == "HTTP 400"
    assert queue.counts() == {PENDING: 38, DONE: 1, FAILED: 1}
    assert [d.id for d in queue.pending(limit=2)] == [d.id for d in pending[2:4]]
    with pytest.raises(InvalidArgumentError, match="no deferred request with id 'nope'"):
        queue.get("nope")


# --- ledger ---------------------------------------------------------------------------------
def test_price_table_validation_and_lookup(tmp_path):
    table = PriceTable.from_json({"big": {"input_per_mtok": 2.0, "output_per_mtok": 8.0},
                                  "*": {"input_per_mtok": 1.0, "output_per_mtok": 1.0}})
    assert table.price("big").cost(1_000_000, 500_000) == pytest.approx(6.0)
    assert table.price("other").input_per_mtok == 1.0
    with pytest.raises(InvalidArgumentError):
        PriceTable.from_json({"m": {"input_per_mtok": "x"}})
    with pytest.raises(InvalidArgumentError):
        PriceTable.from_json({"m": {"input_per_mtok": -1, "output_per_mtok": 0}})
    bad = tmp_path / "prices.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidArgumentError):
        PriceTable.load(bad)


def test_ledger_records_routes_costs_and_summarises(tmp_path):
    prices = PriceTable.from_json({"gpt": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}})
    ledger = Ledger(tmp_path / "ledger.sqlite", prices)
    ledger.record(Entry("remote", "gpt", 1000, 400, 50, 0.5, 0.01))
    ledger.record(Entry("local", "gemma", 300, 0, 20, 0.2))
    ledger.record(Entry("deferred", "gpt", 800, 0, 0, 0.1, request_id="r1", error="down"))
    ledger.record(Entry("drained", "gpt", 800, 300, 10, 0.3, request_id="r1"))
    ledger.record(Entry("remote", "gpt", 900, 0, 0, 2.0, error="unavailable"))
    ledger.record(Entry("degraded", "gemma", 200, 0, 5, 2.5, error="unavailable"))
    with pytest.raises(InvalidArgumentError):
        ledger.record(Entry("teleported", None, 1, 1, 1, 0.1))
    rows = ledger.rows()
    assert [r["saved_tokens"] for r in rows] == [600, 300, 0, 500, 0, 200]
    assert rows[0]["cost_usd"] == pytest.approx((400 * 1 + 50 * 2) / 1e6)
    assert rows[0]["baseline_cost_usd"] == pytest.approx((1000 * 1 + 50 * 2) / 1e6)
    assert rows[1]["cost_usd"] is None  # no price for the local model
    summary = summarise(rows)
    total = summary["total"]
    assert total["requests"] == 6 and total["errors"] == 3
    assert total["original_tokens"] == 4000 and total["sent_tokens"] == 700
    assert total["saved_tokens"] == 1600
    assert rows[4]["cost_usd"] == 0.0 and rows[4]["baseline_cost_usd"] == 0.0
    assert list(summary["routes"]) == ["local", "remote", "degraded", "deferred", "drained"]
    assert summary["routes"]["remote"]["latency_p50_s"] == 0.5
    assert summary["routes"]["remote"]["latency_p95_s"] == 2.0
    text = format_summary(summary)
    assert text.splitlines()[0].split()[:3] == ["route", "requests", "errors"]
    assert text.splitlines()[-1].split()[:2] == ["total", "6"]


def _row(route, original, sent, saved, completion, latency, cost, baseline, error=None):
    return {"route": route, "original_tokens": original, "sent_tokens": sent,
            "saved_tokens": saved, "completion_tokens": completion, "latency_s": latency,
            "cost_usd": cost, "baseline_cost_usd": baseline, "error": error}


def test_summary_figures_are_the_hand_computed_ones():
    rows = [_row("remote", 1000, 400, 600, 50, 0.5, 0.0005, 0.0011),
            _row("local", 300, 0, 300, 20, 0.2, None, None),
            _row("remote", 900, 0, 0, 0, 2.0, 0.0, 0.0, error="unavailable")]
    summary = summarise(rows)
    assert summary["total"] == {
        "requests": 3, "errors": 1, "original_tokens": 2200, "sent_tokens": 400,
        "saved_tokens": 900, "saved_pct": 40.91, "completion_tokens": 70,
        # nearest rank of [0.2, 0.5, 2.0]: p50 the 2nd, p95 the 3rd
        "latency_p50_s": 0.5, "latency_p95_s": 2.0,
        "cost_usd": 0.0005, "baseline_cost_usd": 0.0011}
    assert list(summary["routes"]) == ["local", "remote"]  # in ROUTES order, not row order
    assert summary["routes"]["local"] == {
        "requests": 1, "errors": 0, "original_tokens": 300, "sent_tokens": 0,
        "saved_tokens": 300, "saved_pct": 100.0, "completion_tokens": 20,
        "latency_p50_s": 0.2, "latency_p95_s": 0.2, "cost_usd": None, "baseline_cost_usd": None}
    assert summary["routes"]["remote"]["saved_pct"] == 31.58
    assert summary["routes"]["remote"]["errors"] == 1
    assert format_summary(summary).splitlines() == [
        "route   requests  errors  original  sent  saved  saved%  p50 s  p95 s    cost $  "
        "baseline $",
        "local          1       0       300     0    300   100.0  0.200  0.200         -  "
        "         -",
        "remote         2       1      1900   400    600    31.6  0.500  2.000  0.000500  "
        "  0.001100",
        "total          3       1      2200   400    900    40.9  0.500  2.000  0.000500  "
        "  0.001100",
    ]


def test_summary_percentiles_and_rounding():
    rows = [_row("proxy", 10, 5, 5, 1, latency, 0.1234567, 0.2345678)
            for latency in (0.4, 0.123456, 0.3, 0.2)]
    total = summarise(rows)["total"]
    assert total["latency_p50_s"] == 0.2 and total["latency_p95_s"] == 0.4
    assert summarise(rows[1:2])["total"]["latency_p50_s"] == 0.1235
    assert total["cost_usd"] == 0.493827 and total["baseline_cost_usd"] == 0.938271
    # nearest rank over 101 values: p50 is the 51st, p95 the 96th
    hundred = summarise([_row("proxy", 1, 1, 0, 0, i / 100, None, None) for i in range(101)])
    assert hundred["total"]["latency_p50_s"] == 0.5 and hundred["total"]["latency_p95_s"] == 0.95
    empty = summarise([])
    assert empty == {"total": {
        "requests": 0, "errors": 0, "original_tokens": 0, "sent_tokens": 0, "saved_tokens": 0,
        "saved_pct": 0.0, "completion_tokens": 0, "latency_p50_s": None, "latency_p95_s": None,
        "cost_usd": None, "baseline_cost_usd": None}, "routes": {}}


def test_price_table_reads_a_file_and_names_what_is_wrong(tmp_path):
    good = tmp_path / "prices.json"
    good.write_text(json.dumps({"m": {"input_per_mtok": "0.5", "output_per_mtok": 2}}),
                    encoding="utf-8")
    price = PriceTable.load(good).price("m")
    assert (price.input_per_mtok, price.output_per_mtok) == (0.5, 2.0)
    assert price.cost(2_000_000, 250_000) == pytest.approx(1.5)
    assert PriceTable.load(good).price("other") is None and PriceTable().price(None) is None
    assert PriceTable.from_json({3: {"input_per_mtok": 1, "output_per_mtok": 1}}).price("3")
    with pytest.raises(InvalidArgumentError, match=r"^a price table is a JSON object of model"):
        PriceTable.from_json([1, 2])
    free = PriceTable.from_json({"free": {"input_per_mtok": 0, "output_per_mtok": 0.5}})
    assert free.price("free").cost(1_000_000, 1_000_000) == 0.5  # exactly: per million
    with pytest.raises(InvalidArgumentError, match="price of 'm' needs numeric input_per_mtok"):
        PriceTable.from_json({"m": {"input_per_mtok": 1}})
    with pytest.raises(InvalidArgumentError, match="price of 'm' needs numeric"):
        PriceTable.from_json({"m": None})
    with pytest.raises(InvalidArgumentError, match="price of 'm' is negative"):
        PriceTable.from_json({"m": {"input_per_mtok": 0, "output_per_mtok": -0.5}})
    assert PriceTable.from_json(  # free output is a price, not a negative one
        {"m": {"input_per_mtok": 0.5, "output_per_mtok": 0}}).price("m").output_per_mtok == 0
    with pytest.raises(InvalidArgumentError, match=r"cannot read price table .*missing\.json"):
        PriceTable.load(tmp_path / "missing.json")


def test_ledger_command_prints_summary_and_json(tmp_path):
    db = tmp_path / "ledger.sqlite"
    ledger = Ledger(db)
    ledger.record(Entry("proxy", "m", 500, 200, 10, 0.25))
    ledger.record(Entry("proxy", "m", 300, 100, 10, 0.75))
    cli = [sys.executable, "-m", "edge_lingua.cli", "ledger"]
    out = subprocess.run([*cli, str(db), "--json"], capture_output=True, text=True, timeout=60,
                         cwd=REPO)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["total"]["saved_tokens"] == 500
    assert summary["total"]["saved_pct"] == 62.5
    assert summary["routes"]["proxy"]["latency_p95_s"] == 0.75
    table = subprocess.run([*cli, str(db)], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert table.returncode == 0 and "proxy" in table.stdout
    missing = subprocess.run([*cli, str(tmp_path / "none.sqlite")], capture_output=True,
                             text=True, timeout=60, cwd=REPO)
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "no ledger" in missing.stderr


def test_ledger_latency_is_wall_clock_of_its_entries(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    before = time.time()
    ledger.record(Entry("remote", None, 10, 5, 1, 0.1))
    assert before <= ledger.rows()[0]["ts"] <= time.time()


def test_cascade_import_stays_light():
    code = ("import sys, edge_lingua.cascade, edge_lingua.proxy, edge_lingua.cascade.cli; "
            "print(sorted(m for m in ('llama_cpp', 'torch', 'transformers', 'optimum', "
            "'phonenumbers', 'stdnum', 'detect_secrets') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=Path(REPO))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("usage", "problem"), [
    ({"prompt_tokens": 0, "completion_tokens": 3}, None),
    ({"input_tokens": 12, "output_tokens": 0, "cache_read_input_tokens": -1}, None),
    (None, None),
    ([1, 2], "'usage' is list, not an object"),
    ({"prompt_tokens": -1}, "'usage.prompt_tokens' is not a non-negative integer"),
    ({"completion_tokens": 2.0}, "'usage.completion_tokens' is not a non-negative integer"),
    ({"input_tokens": True}, "'usage.input_tokens' is not a non-negative integer"),
    ({"output_tokens": "7"}, "'usage.output_tokens' is not a non-negative integer"),
])
def test_usage_counts_must_be_non_negative_integers(usage: Any, problem: str | None) -> None:
    assert check_usage({} if usage is None else {"usage": usage}) == problem
