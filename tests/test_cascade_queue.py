"""The deferral queue under concurrency and crashes: two drainers (objects, threads,
processes) deliver each request once, a drainer killed mid-delivery leaves at most its
in-flight request to be re-sent under the same idempotency key, the ledger counts each
request once; ``~`` paths and unwritable paths."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from edge_lingua.cascade import Cascade, DeferredQueue, Ledger, RemoteClient, RetryPolicy
from edge_lingua.cascade.queue import DONE
from edge_lingua.errors import StorageError
from tests.servers import REPO, delay

pytestmark = pytest.mark.timeout(120)

TOKENIZER = REPO / "edge_lingua" / "models" / "default" / "tokenizer.json"
N = 30

DRAINER = textwrap.dedent("""
    import os, sys, time
    from edge_lingua.cascade import Cascade, DeferredQueue, Ledger, RemoteClient, RetryPolicy
    url, queue, ledger, tokenizer, lease, go = sys.argv[1:7]
    remote = RemoteClient(url, timeout_s=30, retry=RetryPolicy(max_retries=0))
    cascade = Cascade(remote=remote, tokenizer=tokenizer, queue=DeferredQueue(queue, float(lease)),
                      ledger=Ledger(ledger))
    open(f"{go}.{os.getpid()}", "w").close()  # ready
    while not os.path.exists(go):  # start together with the other drainers
        time.sleep(0.01)
    print("drained", len(cascade.drain()), flush=True)
""")


def fill(path: Path, n: int = N) -> list[str]:
    queue = DeferredQueue(path)
    return [queue.put({"messages": [{"role": "user", "content": f"deferred {i}"}]},
                      {"original_tokens": 10, "sent_tokens": 4}) for i in range(n)]


def cascade(fault, tmp_path: Path, lease_s: float = 300.0) -> Cascade:
    remote = RemoteClient(fault.url, timeout_s=30, retry=RetryPolicy(max_retries=0))
    return Cascade(remote=remote, tokenizer=TOKENIZER,
                   queue=DeferredQueue(tmp_path / "q.sqlite", lease_s),
                   ledger=Ledger(tmp_path / "ledger.sqlite"))


def drainer_process(fault, tmp_path: Path, lease_s: float = 300.0) -> subprocess.Popen:
    """A drainer in its own process; it drains once ``tmp_path / "go"`` exists."""
    return subprocess.Popen(
        [sys.executable, "-c", DRAINER, fault.url, str(tmp_path / "q.sqlite"),
         str(tmp_path / "ledger.sqlite"), str(TOKENIZER), str(lease_s), str(tmp_path / "go")],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def delivered(fault) -> Counter:
    return Counter(r.body["messages"][0]["content"] for r in fault.received)


def drained_rows(tmp_path: Path) -> list[dict]:
    return [r for r in Ledger(tmp_path / "ledger.sqlite").rows() if r["route"] == "drained"]


def test_two_cascades_on_one_queue_deliver_each_request_once(fault, tmp_path):
    fault.script(default=delay(0.01))
    ids = fill(tmp_path / "q.sqlite")
    first, second = cascade(fault, tmp_path), cascade(fault, tmp_path)
    results: dict[str, list] = {}
    threads = [threading.Thread(target=lambda c=c, k=k: results.__setitem__(k, c.drain()))
               for k, c in (("a", first), ("b", second), ("c", first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert delivered(fault) == Counter({f"deferred {i}": 1 for i in range(N)})
    assert sorted(r.request_id for rs in results.values() for r in rs) == sorted(ids)
    assert len(results["a"]) and len(results["b"])  # both objects took part
    assert len(drained_rows(tmp_path)) == N
    assert DeferredQueue(tmp_path / "q.sqlite").counts() == {DONE: N}


def test_two_drainer_processes_deliver_each_request_once(fault, tmp_path):
    fault.script(default=delay(0.05))
    fill(tmp_path / "q.sqlite")
    processes = [drainer_process(fault, tmp_path) for _ in range(2)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    (tmp_path / "go").touch()
    outputs = [p.communicate(timeout=90) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    counts = [int(out.split()[-1]) for out, _ in outputs]
    assert sum(counts) == N and min(counts) > 0, counts
    assert delivered(fault) == Counter({f"deferred {i}": 1 for i in range(N)})
    assert len(drained_rows(tmp_path)) == N


def test_sigkill_mid_drain_resends_only_the_in_flight_request_with_its_key(fault, tmp_path):
    ids = fill(tmp_path / "q.sqlite", 5)
    fault.script(delay(5.0))  # the first delivery hangs; the drainer is killed during it
    process = drainer_process(fault, tmp_path, lease_s=1.0)
    (tmp_path / "go").touch()
    deadline = time.monotonic() + 30
    while not fault.received and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert len(fault.received) == 1
    time.sleep(1.1)  # the dead drainer's lease runs out
    drained = cascade(fault, tmp_path).drain()
    assert [r.request_id for r in drained] == ids
    received = fault.received
    assert len(received) == 6
    assert received[0].headers["Idempotency-Key"] == received[1].headers["Idempotency-Key"] \
        == ids[0]
    assert [r.headers["Idempotency-Key"] for r in received[1:]] == ids
    assert len(drained_rows(tmp_path)) == 5


def test_a_queue_file_written_before_leases_is_upgraded_and_keeps_its_requests(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the schema before leases: no lease_owner / lease_until
        db.execute("CREATE TABLE deferred (id TEXT PRIMARY KEY, created REAL NOT NULL, "
                   "updated REAL NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL "
                   "DEFAULT 0, payload TEXT NOT NULL, meta TEXT NOT NULL, response TEXT, "
                   "error TEXT)")
        db.execute("INSERT INTO deferred (id, created, updated, status, payload, meta) "
                   "VALUES ('old-1', 1.0, 1.0, 'pending', '{\"model\": \"m\"}', '{}')")
    queue = DeferredQueue(path, lease_s=60)
    with sqlite3.connect(path) as db:
        columns = {row[1]: row[2] for row in db.execute("PRAGMA table_info(deferred)")}
    assert columns["lease_owner"] == "TEXT" and columns["lease_until"] == "REAL"
    claimed = queue.claim("drainer-a")
    assert claimed is not None and claimed.id == "old-1" and claimed.payload == {"model": "m"}
    assert claimed.attempts == 1
    assert queue.claim("drainer-b") is None  # the lease holds
    DeferredQueue(path)  # opening an upgraded file again changes nothing
    assert [d.id for d in queue.pending()] == ["old-1"]


def test_ledger_counts_a_drained_request_once_whoever_records_it(tmp_path):
    from edge_lingua.cascade.ledger import Entry

    ledger = Ledger(tmp_path / "l.sqlite")
    for _ in range(2):
        ledger.record(Entry("drained", "m", 10, 4, 1, 0.1, request_id="r1"))
        ledger.record(Entry("remote", "m", 10, 4, 1, 0.1))
    assert [r["route"] for r in ledger.rows()] == ["drained", "remote", "remote"]


def test_home_is_expanded_in_queue_ledger_and_prices(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    queue = DeferredQueue("~/.edge-lingua/deferred.sqlite")
    ledger = Ledger("~/.edge-lingua/ledger.sqlite")
    assert queue.path == ledger.path.parent / "deferred.sqlite"
    assert (tmp_path / "home" / ".edge-lingua" / "ledger.sqlite").is_file()
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("make", [DeferredQueue, Ledger])
def test_unwritable_paths_are_a_typed_error(tmp_path, make):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="cannot create"):
        make(blocker / "sub" / "x.sqlite")
    with pytest.raises(StorageError, match="cannot"):
        make(tmp_path)  # a folder, not a database file


@pytest.mark.parametrize("args", [["ledger", "{blocker}/x.sqlite"],
                                  ["serve", "--upstream", "http://127.0.0.1:9/v1",
                                   "--no-compress", "--tokenizer", str(TOKENIZER),
                                   "--ledger", "{blocker}/sub/l.sqlite"]])
def test_cli_reports_unusable_paths_in_one_line_with_exit_2(tmp_path, args):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    argv = [a.format(blocker=blocker) for a in args]
    out = subprocess.run([sys.executable, "-m", "edge_lingua.cli", *argv], capture_output=True,
                         text=True, timeout=60, cwd=REPO)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().count("\n") == 0 and str(blocker) in out.stderr


def test_a_claimed_request_is_the_queued_one_with_its_attempt_counted(tmp_path):
    queue = DeferredQueue(tmp_path / "queue.sqlite")
    request_id = queue.put({"messages": [{"role": "user", "content": "hi"}]}, {"why": "down"})
    (queued,) = queue.pending()
    assert 0 < queued.created <= time.time()
    claimed = queue.claim("drainer-a")
    assert claimed == replace(queued, attempts=queued.attempts + 1)
    assert claimed.id == request_id and claimed.status == "pending"


def test_each_queued_request_gets_an_id_of_its_own(tmp_path):
    queue = DeferredQueue(tmp_path / "queue.sqlite")
    ids = [queue.put({"messages": [{"role": "user", "content": str(n)}]}) for n in range(3)]
    assert len(set(ids)) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    assert [queued.id for queued in queue.pending()] == ids


def test_draining_needs_both_a_queue_and_a_remote(tmp_path):
    from tests.test_cascade_core import SURE, TOKENIZER, ScriptedLocal

    queue = DeferredQueue(tmp_path / "queue.sqlite")
    queue.put({"messages": [{"role": "user", "content": "hi"}]}, {})
    remote = RemoteClient("http://127.0.0.1:9", retry=RetryPolicy(max_retries=0))
    assert Cascade(remote=remote, tokenizer=TOKENIZER).drain() == []  # no queue
    local = ScriptedLocal(SURE)
    assert Cascade(local=local, queue=queue, tokenizer=TOKENIZER).drain() == []  # no remote
    assert len(queue.pending()) == 1  # nothing was claimed
