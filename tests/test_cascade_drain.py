"""Draining the deferred queue stops at the first request the remote cannot take: the rest
are not tried (each try would cost the caller its retries and timeouts) and stay queued."""

from __future__ import annotations

import pytest

from edge_lingua.cascade import Cascade, DeferredQueue
from tests.servers import DROP, OK
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
