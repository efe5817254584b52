"""Draining the deferred queue stops at the first request the remote cannot take: the rest
are not tried (each try would cost the caller its retries and timeouts) and stay queued."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from edge_lingua.cascade import Cascade, DeferredQueue
from tests.servers import DROP, OK, delay
from tests.test_cascade_core import FAST, question, remote

pytestmark = pytest.mark.timeout(90)


def test_drain_stops_when_the_remote_is_unreachable(fault, compressor, tmp_path):
    fault.script(default=DROP)
    queue = DeferredQueue(tmp_path / "q.sqlite")
    cascade = Cascade(remote=remote(fault), compressor=compressor, queue=queue)
    ids = [cascade.ask(question(i), defer=True).request_id for i in range(3)]
    before = len(fault.received)
    assert cascade.drain() == []
    assert len(fault.received) - before <= FAST.max_retries + 1  # one request's tries
    assert queue.get(ids[0]).attempts == 1
    assert [queue.get(i).attempts for i in ids[1:]] == [0, 0]
    assert queue.counts() == {"pending": 3}
    fault.script(default=OK)
    assert [r.request_id for r in cascade.drain()] == ids


def test_a_drained_post_that_times_out_is_sent_again_under_its_idempotency_key(
    fault, compressor, tmp_path
):
    fault.script(default=DROP)  # the remote is down: the request is deferred
    queue = DeferredQueue(tmp_path / "q.sqlite")
    cascade = Cascade(remote=remote(fault, timeout_s=0.4), compressor=compressor, queue=queue)
    request_id = cascade.ask(question(), defer=True).request_id
    fault.script(delay(1.0), default=OK)
    before = len(fault.received)
    drained = cascade.drain()
    assert [r.request_id for r in drained] == [request_id]
    sent = fault.received[before:]
    assert len(sent) == 2  # the timed-out try and the one that was answered
    assert {r.headers["Idempotency-Key"] for r in sent} == {request_id}
    assert queue.counts() == {"done": 1}


def test_a_drainer_whose_lease_ran_out_mid_answer_leaves_the_request_and_goes_on(
    fault, compressor, tmp_path, caplog
):
    fault.script(default=DROP)
    queue = DeferredQueue(tmp_path / "q.sqlite", lease_s=0.3)
    cascade = Cascade(remote=remote(fault), compressor=compressor, queue=queue)
    first, second = (cascade.ask(question(i), defer=True).request_id for i in range(2))
    fault.script(delay(1.6), default=OK)  # the first answer comes after the lease ran out
    before = len(fault.received)
    drained: list = []
    with caplog.at_level(logging.WARNING, logger="edge_lingua.cascade"):
        drainer = threading.Thread(target=lambda: drained.extend(cascade.drain()))
        drainer.start()
        deadline = time.monotonic() + 30
        while len(fault.received) == before and time.monotonic() < deadline:
            time.sleep(0.01)  # until the first request is with the remote
        time.sleep(0.5)
        other = queue.claim("another-drainer")  # the lapsed lease is free to take
        assert other is not None and other.id == first
        assert queue.complete(first, {"answered": "by the other drainer"}, "another-drainer")
        drainer.join(timeout=30)
    assert [r.request_id for r in drained] == [second]
    assert queue.get(first).response == {"answered": "by the other drainer"}
    assert any(first in r.getMessage() and "ran out" in r.getMessage() for r in caplog.records)
