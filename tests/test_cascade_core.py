"""The cascade with the real compressor and a loopback remote: compression, redaction,
deferral (no request lost, across a restart too), ledger."""

from __future__ import annotations

import json
import time

import pytest

from edge_lingua.cascade import (
    Cascade,
    CircuitBreaker,
    DeferredQueue,
    Ledger,
    Policy,
    Redactor,
    RemoteClient,
    RetryPolicy,
    compressible,
)
from edge_lingua.cascade.queue import DONE, FAILED
from edge_lingua.errors import InvalidArgumentError, RemoteRequestError, RemoteUnavailableError
from tests.servers import DROP, OK, FaultServer, status

pytestmark = pytest.mark.timeout(90)

FAST = RetryPolicy(max_retries=1, backoff_base_s=0.01, backoff_max_s=0.02)
CONTEXT = (
    "The ducks lay sixteen eggs every day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers market "
    "daily for two dollars per fresh duck egg. The market opens at seven in the morning. "
) * 4


def remote(server: FaultServer) -> RemoteClient:
    return RemoteClient(server.url, timeout_s=2.0, retry=FAST,
                        breaker=CircuitBreaker(failure_threshold=50, reset_after_s=60))


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
    cascade = Cascade(remote=remote(fault), compressor=compressor, ledger=ledger)
    with pytest.raises(RemoteUnavailableError):
        cascade.ask(question())
    assert ledger.rows()[0]["error"] and ledger.rows()[0]["sent_tokens"] == 0


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
