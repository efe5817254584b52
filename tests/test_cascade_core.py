"""The cascade with the real compressor and a loopback remote: compression, redaction,
deferral (no request lost, across a restart too), ledger."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from edge_lingua.cascade import (
    Cascade,
    CircuitBreaker,
    DeferredQueue,
    Ledger,
    LocalAnswer,
    Policy,
    Redactor,
    RemoteClient,
    RetryPolicy,
    compressible,
)
from edge_lingua.cascade.queue import DONE, FAILED
from edge_lingua.errors import (
    InvalidArgumentError,
    LocalModelError,
    RemoteRequestError,
    RemoteUnavailableError,
)
from tests.servers import DROP, OK, REPO, FaultServer, status

pytestmark = pytest.mark.timeout(90)

FAST = RetryPolicy(max_retries=1, backoff_base_s=0.01, backoff_max_s=0.02)
CONTEXT = (
    "The ducks lay sixteen eggs every day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers market "
    "daily for two dollars per fresh duck egg. The market opens at seven in the morning. "
) * 4


TOKENIZER = REPO / "edge_lingua" / "models" / "default" / "tokenizer.json"
SURE, UNSURE = -0.1, -3.0  # mean log-probabilities either side of Policy().min_confidence


def remote(server: FaultServer, model: str | None = None, timeout_s: float = 2.0
           ) -> RemoteClient:
    return RemoteClient(server.url, model=model, timeout_s=timeout_s, retry=FAST,
                        breaker=CircuitBreaker(failure_threshold=50, reset_after_s=60))


class ScriptedLocal:
    """An on-device model that answers with the given confidence, or fails (``None``)."""

    name = "scripted-local.gguf"

    def __init__(self, mean_logprob: float | None) -> None:
        self.mean_logprob = mean_logprob

    def generate(self, messages: list[dict[str, Any]], max_tokens: int) -> LocalAnswer:
        if self.mean_logprob is None:
            raise LocalModelError("the local model failed: the prompt is longer than n_ctx")
        return LocalAnswer("She makes 18 dollars.", self.mean_logprob, completion_tokens=4,
                           prompt_tokens=50, elapsed_s=0.01)


def question(i: int = 0, email: str = "") -> list[dict]:
    return [
        {"role": "system", "content": "Answer with a number."},
        {"role": "user", "content": [
            compressible(CONTEXT + email, pins=["two dollars"]),
            {"type": "text", "text": f"Question {i}: how much does she make every day?"},
        ]},
    ]


def test_escalation_sends_the_compressed_prompt_and_records_it(fault, compressor, tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    cascade = Cascade(remote=remote(fault), compressor=compressor, ledger=ledger,
                      policy=Policy(rate=0.4))
    result = cascade.ask(question(), max_tokens=16, temperature=0)
    assert result.route == "remote" and not result.degraded
    (received,) = fault.received
    sent = received.body["messages"][1]["content"]
    assert result.text == "Answer with a number.\n" + sent  # the echo of what went up
    assert "two dollars" in sent and sent.endswith("how much does she make every day?")
    assert received.body["max_tokens"] == 16 and received.body["temperature"] == 0
    assert 0 < result.sent_tokens < 0.7 * result.original_tokens
    (row,) = ledger.rows()
    assert row["route"] == "remote"
    assert (row["original_tokens"], row["sent_tokens"]) == (result.original_tokens,
                                                            result.sent_tokens)
    assert row["saved_tokens"] == result.saved_tokens > 0
    assert row["latency_s"] > 0 and row["completion_tokens"] == 3


def test_nothing_personal_leaves_the_device_when_redacting(fault, compressor):
    cascade = Cascade(remote=remote(fault), compressor=compressor, redactor=Redactor(),
                      policy=Policy(rate=0.9))
    cascade.ask(question(email=" Write to ann.lee@corp.example or +1 415 555 0132."),
                user="ann.lee@corp.example", metadata={"card": "4111 1111 1111 1111"})
    sent = fault.received[0].body
    wire = json.dumps(sent)
    assert "ann.lee@corp.example" not in wire and "555 0132" not in wire
    assert "4111" not in wire and sent["user"] == "[EMAIL]"


def test_remote_down_without_local_model_or_deferral_raises(fault, compressor, tmp_path):
    fault.script(default=DROP)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    cascade = Cascade(remote=remote(fault, model="gpt-test"), compressor=compressor,
                      ledger=ledger)
    started = time.perf_counter()
    with pytest.raises(RemoteUnavailableError):
        cascade.ask(question())
    elapsed = time.perf_counter() - started
    (row,) = ledger.rows()
    assert row["error"] and row["sent_tokens"] == 0
    assert row["model"] == "gpt-test" and 0 < row["latency_s"] <= elapsed


def test_remote_rejection_is_raised_not_deferred(fault, compressor, tmp_path):
    fault.script(status(400))
    queue = DeferredQueue(tmp_path / "q.sqlite")
    ledger = Ledger(tmp_path / "ledger.sqlite")
    cascade = Cascade(remote=remote(fault), compressor=compressor, queue=queue, ledger=ledger)
    with pytest.raises(RemoteRequestError):
        cascade.ask(question(), defer=True)
    assert queue.counts() == {}
    (row,) = ledger.rows()
    assert "HTTP 400" in row["error"] and row["sent_tokens"] == 0


def test_deferred_requests_survive_a_restart_and_are_all_sent(fault, compressor, tmp_path):
    fault.script(default=DROP)
    path = tmp_path / "deferred.sqlite"
    ledger = Ledger(tmp_path / "ledger.sqlite")
    first = Cascade(remote=remote(fault), compressor=compressor, queue=DeferredQueue(path),
                    ledger=ledger)
    deferred = [first.ask(question(i), defer=True) for i in range(5)]
    assert [r.route for r in deferred] == ["deferred"] * 5
    assert all(r.text is None and r.request_id for r in deferred)
    assert first.drain() == []  # still down: nothing lost, nothing sent
    assert DeferredQueue(path).counts() == {"pending": 5}

    # a new process on the same queue file, remote back: every request goes, in order
    fault.script(default=OK)
    before = len(fault.received)
    second = Cascade(remote=remote(fault), compressor=compressor, queue=DeferredQueue(path),
                     ledger=ledger)
    drained = second.drain()
    assert [r.request_id for r in drained] == [r.request_id for r in deferred]
    sent = [r.body["messages"][1]["content"] for r in fault.received[before:]]
    assert [s.rsplit("Question ", 1)[1][0] for s in sent] == ["0", "1", "2", "3", "4"]
    queue = DeferredQueue(path)
    assert queue.counts() == {DONE: 5}
    stored = queue.get(deferred[2].request_id)
    assert stored.response["choices"][0]["message"]["content"].endswith(
        "Question 2: how much does she make every day?")
    routes = [row["route"] for row in ledger.rows()]
    assert routes == ["deferred"] * 5 + ["drained"] * 5
    assert all(r.saved_tokens > 0 for r in drained)


def test_a_rejected_deferred_request_is_marked_failed_and_the_rest_go(fault, compressor,
                                                                      tmp_path):
    fault.script(default=DROP)
    queue = DeferredQueue(tmp_path / "q.sqlite")
    cascade = Cascade(remote=remote(fault), compressor=compressor, queue=queue)
    ids = [cascade.ask(question(i), defer=True).request_id for i in range(3)]
    fault.script(OK, status(422), default=OK)
    assert [r.request_id for r in cascade.drain()] == [ids[0], ids[2]]
    assert queue.get(ids[1]).status == FAILED and "422" in queue.get(ids[1]).error


def test_background_drainer_sends_when_the_remote_returns(fault, compressor, tmp_path):
    fault.script(default=status(503))
    queue = DeferredQueue(tmp_path / "q.sqlite")
    cascade = Cascade(remote=remote(fault), compressor=compressor, queue=queue)
    rid = cascade.ask(question(), defer=True).request_id
    drainer = cascade.start_drainer(interval_s=0.1)
    try:
        time.sleep(0.5)
        assert queue.get(rid).status == "pending" and queue.get(rid).attempts >= 1
        fault.script(default=OK)
        deadline = time.monotonic() + 10
        while queue.get(rid).status != DONE and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        drainer.stop()
    assert queue.get(rid).status == DONE


def test_bad_arguments_are_rejected(fault, compressor):
    with pytest.raises(InvalidArgumentError):
        Cascade(compressor=compressor)
    cascade = Cascade(remote=remote(fault), compressor=compressor)
    with pytest.raises(InvalidArgumentError, match="queue"):
        cascade.ask(question(), defer=True)
    with pytest.raises(InvalidArgumentError):
        cascade.ask(question(), max_tokens=0)
    with pytest.raises(InvalidArgumentError, match="tokenizer"):
        Cascade(remote=remote(fault))
    with pytest.raises(InvalidArgumentError):
        Policy(min_confidence=0.5)
    assert fault.received == []


def test_a_failed_escalation_is_recorded_like_the_request_it_was(fault, compressor, tmp_path):
    fault.script(OK, default=DROP)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    cascade = Cascade(remote=remote(fault), compressor=compressor, ledger=ledger,
                      redactor=Redactor(), policy=Policy(rate=0.5))
    ask = {"messages": question(email=" Write to ann.lee@corp.example."),
           "user": "bob@corp.example", "metadata": {"phone": "+1 415 555 0132"}}
    cascade.ask(**ask)
    with pytest.raises(RemoteUnavailableError) as info:
        cascade.ask(**ask)
    sent, failed = ledger.rows()
    # one e-mail address in the messages, one in ``user`` and a phone number in ``metadata``
    assert sent["redactions"] == failed["redactions"] == 3
    assert failed["route"] == "remote" and failed["error"] == str(info.value)
    assert failed["original_tokens"] == sent["original_tokens"] > sent["sent_tokens"] > 0
    assert (failed["sent_tokens"], failed["completion_tokens"], failed["saved_tokens"]) == (0, 0, 0)
    assert 0 < failed["compress_s"] < failed["latency_s"]


# --- ledger rows and results field by field (no compressor: the prompt goes up as written) ---
def test_a_local_answer_saves_every_token_the_remote_would_have_been_sent(fault):
    messages = [
        {"role": "system", "content": "Answer with a number."},
        {"role": "user", "content": [
            compressible(CONTEXT),
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "text", "text": "How much does she make every day?"},
        ]},
    ]
    local = Cascade(local=ScriptedLocal(SURE), tokenizer=TOKENIZER).ask(messages)
    escalated = Cascade(remote=remote(fault), tokenizer=TOKENIZER).ask(messages)
    assert (local.route, escalated.route) == ("local", "remote")
    assert local.original_tokens == escalated.original_tokens == escalated.sent_tokens > 100
    assert local.sent_tokens == 0 and local.saved_tokens == local.original_tokens


@pytest.mark.parametrize(("confidence", "route", "error"), [
    (SURE, "local", "None"),
    (UNSURE, "degraded", r"remote http://\S+ unavailable: .+"),  # why the remote was not used
])
def test_an_answer_from_the_device_is_recorded_under_the_local_model(
    fault, tmp_path: Path, confidence: float, route: str, error: str
) -> None:
    fault.script(default=DROP)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    local = ScriptedLocal(confidence)
    cascade = Cascade(local=local, remote=remote(fault), tokenizer=TOKENIZER, ledger=ledger)
    started = time.perf_counter()
    result = cascade.ask(question())
    elapsed = time.perf_counter() - started
    (row,) = ledger.rows()
    assert result.route == row["route"] == route and result.text == "She makes 18 dollars."
    assert row["model"] == local.name
    assert result.original_tokens == row["original_tokens"] > 100
    assert (result.sent_tokens, row["sent_tokens"], row["completion_tokens"]) == (0, 0, 4)
    assert 0 < result.latency_s == row["latency_s"] <= elapsed
    assert re.fullmatch(error, str(result.error)) and row["error"] == result.error
    assert result.confidence == confidence  # the device's own confidence in its answer


@pytest.mark.parametrize("with_remote", [False, True], ids=["local-only", "remote-down"])
def test_when_the_device_gives_no_answer_the_error_says_what_failed(fault, with_remote: bool):
    fault.script(default=DROP)
    cascade = Cascade(local=ScriptedLocal(None), remote=remote(fault) if with_remote else None,
                      tokenizer=TOKENIZER)
    with pytest.raises(LocalModelError) as info:
        cascade.ask(question())
    why = f" and the remote failed: remote {re.escape(fault.url)} unavailable: .+"
    assert re.fullmatch("the local model gave no answer" + (why if with_remote else ""),
                        str(info.value))


def test_a_deferred_request_is_recorded_with_its_id_and_the_reason_and_nothing_sent(
    fault, tmp_path: Path
) -> None:
    fault.script(default=DROP)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    queue = DeferredQueue(tmp_path / "q.sqlite")
    cascade = Cascade(remote=remote(fault, model="gpt-test"), tokenizer=TOKENIZER, queue=queue,
                      ledger=ledger, redactor=Redactor())
    started = time.perf_counter()
    # one e-mail address in the messages, one phone number in a parameter
    result = cascade.ask(question(email=" Write to ann.lee@corp.example."), defer=True,
                         metadata={"phone": "+1 415 555 0132"})
    elapsed = time.perf_counter() - started
    (row,) = ledger.rows()
    assert result.route == row["route"] == "deferred" and result.text is None
    assert row["model"] == "gpt-test"
    assert result.request_id == row["request_id"] == queue.pending()[0].id
    assert "unavailable" in result.error and row["error"] == result.error
    assert result.original_tokens == row["original_tokens"] > 100
    assert (result.sent_tokens, row["sent_tokens"], row["completion_tokens"],
            row["saved_tokens"]) == (0, 0, 0, 0)
    assert 0 <= row["compress_s"] <= row["latency_s"] == result.latency_s <= elapsed
    assert row["redactions"] == 2


# --- the background drainer -----------------------------------------------------------------
def idle_cascade(tmp_path: Path) -> Cascade:
    """A cascade with a queue whose remote is never called (the tests replace ``drain``)."""
    return Cascade(remote=RemoteClient("http://127.0.0.1:9/v1"), tokenizer=TOKENIZER,
                   queue=DeferredQueue(tmp_path / "q.sqlite"))


@pytest.mark.parametrize("interval_s", [0, -1.0])
def test_the_drain_interval_must_be_positive(tmp_path: Path, interval_s: float) -> None:
    with pytest.raises(InvalidArgumentError, match="interval_s must be > 0"):
        idle_cascade(tmp_path).start_drainer(interval_s)


def test_the_drainer_runs_on_a_named_daemon_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    drainer = idle_cascade(tmp_path).start_drainer(interval_s=60)
    try:
        (thread,) = set(threading.enumerate()) - before
        assert thread.name == "edge-lingua-drainer"
        assert thread.daemon  # never keeps the process alive
    finally:
        drainer.stop()
    assert not thread.is_alive()


def test_the_drainer_logs_a_failed_round_and_keeps_draining(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cascade = idle_cascade(tmp_path)
    rounds: list[int] = []
    again = threading.Event()

    def drain() -> list:
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("disk full")
        again.set()
        return []

    monkeypatch.setattr(cascade, "drain", drain)
    caplog.set_level(logging.ERROR, logger="edge_lingua.cascade.core")
    drainer = cascade.start_drainer(interval_s=0.01)
    try:
        assert again.wait(5)
    finally:
        drainer.stop()
    (record,) = [r for r in caplog.records if r.exc_info]
    assert record.getMessage() == "draining the deferred queue failed"
    assert "disk full" in caplog.text


def test_stop_waits_no_longer_than_its_timeout_for_a_hung_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cascade = idle_cascade(tmp_path)
    entered, release = threading.Event(), threading.Event()

    def drain() -> list:
        entered.set()
        release.wait(5)
        return []

    monkeypatch.setattr(cascade, "drain", drain)
    drainer = cascade.start_drainer(interval_s=0.01)
    try:
        assert entered.wait(5)
        started = time.monotonic()
        drainer.stop(timeout_s=0.05)
        assert time.monotonic() - started < 1.0
    finally:
        release.set()
        drainer.stop()


def test_a_drained_request_is_answered_and_recorded_under_its_id(fault, tmp_path: Path) -> None:
    fault.script(default=DROP)
    ledger = Ledger(tmp_path / "ledger.sqlite")
    queue = DeferredQueue(tmp_path / "q.sqlite")
    cascade = Cascade(remote=remote(fault, model="gpt-test"), tokenizer=TOKENIZER, queue=queue,
                      ledger=ledger)
    deferred = cascade.ask(question(), defer=True)
    fault.script(default=OK)
    started = time.perf_counter()
    (result,) = cascade.drain()
    elapsed = time.perf_counter() - started
    row = ledger.rows()[-1]
    assert result.route == row["route"] == "drained"
    assert result.request_id == row["request_id"] == deferred.request_id
    assert result.text and result.text == queue.get(deferred.request_id).response[
        "choices"][0]["message"]["content"]
    assert row["model"] == fault.received[-1].body["model"]
    assert result.original_tokens == row["original_tokens"] == deferred.original_tokens
    assert result.sent_tokens == row["sent_tokens"] > 0
    assert 0 <= row["latency_s"] == result.latency_s <= elapsed
    assert result.error is None and row["error"] is None


@pytest.mark.parametrize("max_tokens", [0, -1, 2.0, True])
def test_max_tokens_must_be_a_positive_integer(fault, max_tokens) -> None:
    cascade = Cascade(remote=remote(fault), tokenizer=TOKENIZER)
    message = f"max_tokens must be a positive integer, got {max_tokens!r}"
    if max_tokens is True:  # a bool is an int to Python; one token is a positive integer
        cascade.ask(question(), max_tokens=max_tokens)
        return
    with pytest.raises(InvalidArgumentError, match=f"^{re.escape(message)}$"):
        cascade.ask(question(), max_tokens=max_tokens)


def test_an_unsure_local_answer_escalates_and_the_result_says_everything(fault, tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    cascade = Cascade(local=ScriptedLocal(UNSURE), remote=remote(fault, model="gpt-test"),
                      tokenizer=TOKENIZER, ledger=ledger, redactor=Redactor(),
                      policy=Policy(try_local=True))
    started = time.perf_counter()
    result = cascade.ask(question(), max_tokens=1, user="ann@corp.example")
    elapsed = time.perf_counter() - started
    (received,) = fault.received
    assert received.body["max_tokens"] == 1 and received.body["user"] == "[EMAIL]"
    (row,) = ledger.rows()
    assert result.route == row["route"] == "remote"
    assert result.confidence == UNSURE  # the device's confidence, though it was not used
    assert result.response["choices"][0]["message"]["content"] == result.text
    assert 0 < result.latency_s == row["latency_s"] <= elapsed
    assert row["model"] == "gpt-test" and row["redactions"] == 1
    # a remote that names no model of its own: the ledger records the one the answer names
    Cascade(remote=remote(fault), tokenizer=TOKENIZER, ledger=ledger).ask(question(), model="m-2")
    assert ledger.rows()[-1]["model"] == "m-2"


class CountingLocal(ScriptedLocal):
    """A scripted local model that counts its calls and the max_tokens it was given."""

    def __init__(self, mean_logprob: float | None) -> None:
        super().__init__(mean_logprob)
        self.calls: list[int] = []

    def generate(self, messages: list[dict[str, Any]], max_tokens: int) -> LocalAnswer:
        self.calls.append(max_tokens)
        return super().generate(messages, max_tokens)


def test_without_try_local_the_device_answers_only_when_the_remote_is_down(fault):
    local = CountingLocal(SURE)
    cascade = Cascade(local=local, remote=remote(fault), tokenizer=TOKENIZER,
                      policy=Policy(try_local=False))
    assert cascade.ask(question(), max_tokens=7).route == "remote" and local.calls == []
    fault.script(default=DROP)
    degraded = cascade.ask(question(), max_tokens=7)
    assert degraded.route == "degraded" and degraded.text == "She makes 18 dollars."
    assert local.calls == [7]  # asked once, with the caller's max_tokens


def test_an_unsure_answer_tried_first_is_not_asked_again_when_the_remote_is_down(fault):
    local = CountingLocal(UNSURE)
    fault.script(default=DROP)
    result = Cascade(local=local, remote=remote(fault), tokenizer=TOKENIZER).ask(
        question(), max_tokens=5)
    assert result.route == "degraded" and local.calls == [5]


def test_the_policy_sets_the_budget_and_the_forced_words_of_what_is_sent(fault, compressor):
    def sent(policy: Policy) -> str:
        Cascade(remote=remote(fault), compressor=compressor, policy=policy).ask(question())
        return json.dumps(fault.received[-1].body["messages"])

    loose, tight = sent(Policy(rate=0.9)), sent(Policy(rate=0.3))
    assert len(tight) < 0.75 * len(loose)
    budget = sent(Policy(rate=0.9, target_token=30))
    assert len(budget) < len(tight)  # a token budget wins over the rate
    forced = sent(Policy(rate=0.3, force_tokens=("breakfast",)))
    assert forced.count("breakfast") == CONTEXT.count("breakfast") > tight.count("breakfast")
