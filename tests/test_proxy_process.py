"""``edge-lingua serve`` as a process: peak memory under 20 concurrent 1,000-word requests,
the breaker options, and what its log holds."""

from __future__ import annotations

import http.client
import json
import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.servers import DROP, REPO, FaultServer, free_port, stop_process, wait_http

pytestmark = pytest.mark.timeout(240)

TOKENIZER = REPO / "edge_lingua" / "models" / "default" / "tokenizer.json"
RSS_LIMIT_KB = 400 * 1024
VOCAB = ("the", "ducks", "lay", "eggs", "every", "day", "she", "eats", "three", "for",
         "breakfast", "and", "bakes", "muffins", "her", "friends", "at", "market", "selling",
         "each", "fresh", "egg", "two", "dollars")


def serve(fault: FaultServer, log: Path, *options: str, env: dict | None = None
          ) -> tuple[subprocess.Popen, int]:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "edge_lingua.cli", "serve", "--upstream", fault.url,
             "--port", str(port), *options],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 120, process)
    except BaseException:
        stop_process(process)
        raise
    return process, port


def post(port: int, body: dict, path: str = "/v1/chat/completions") -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=200)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident set size (VmHWM), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_peak_rss_stays_bounded_under_20_concurrent_1000_word_requests(fault, tmp_path):
    process, port = serve(fault, tmp_path / "proxy.log", "--rate", "0.5")
    try:
        def ask(seed: int) -> int:
            rng = random.Random(seed)
            document = " ".join(rng.choice(VOCAB) for _ in range(1000)) + "."
            return post(port, {"model": "m", "messages": [
                {"role": "system", "content": document},
                {"role": "user", "content": "How much does she make?"}]})[0]

        with ThreadPoolExecutor(20) as pool:
            assert list(pool.map(ask, range(20))) == [200] * 20
        peak = peak_rss_kb(process.pid)
    finally:
        stop_process(process)
    assert len(fault.received) == 20
    assert peak <= RSS_LIMIT_KB, f"peak RSS {peak / 1024:.0f} MB"


def test_breaker_options_and_the_process_log(tmp_path):
    log = tmp_path / "proxy.log"
    with FaultServer() as fault:
        fault.script(default=DROP)
        process, port = serve(fault, log, "--no-compress", "--tokenizer", str(TOKENIZER),
                              "--retries", "0", "--breaker-threshold", "2",
                              "--breaker-cooldown", "120", "--redact")
        try:
            secret = "card 4111111111111111 and SSN-like 078-05-1120 for bob@example.com"
            body = {"model": "m", "messages": [{"role": "user", "content": secret}]}
            codes = [post(port, body)[0] for _ in range(3)]
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/v1/x%0d%0aFORGED-LINE%1b[2J")
            assert connection.getresponse().status == 404
            connection.close()
        finally:
            stop_process(process)
    assert codes == [502, 502, 503]  # two failures open the circuit; the third never goes out
    assert len(fault.received) == 2
    text = log.read_text(errors="replace")
    assert "4111111111111111" not in text and "078-05-1120" not in text
    assert "bob@example.com" not in text
    assert "\\x0d\\x0aFORGED-LINE\\x1b[2J" in text
    assert not any(line.startswith("FORGED-LINE") for line in text.splitlines())
    assert "\x1b" not in text


def test_serve_shows_the_playground_behind_the_proxy_token(fault, tmp_path):
    process, port = serve(fault, tmp_path / "proxy.log", "--client-token-env", "PLAY_TOKEN",
                          env={"PLAY_TOKEN": "s3cret"})
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/")
        page = connection.getresponse()
        assert page.status == 200 and b"edge-lingua playground" in page.read()
        connection.close()
        status, _ = post(port, {"text": "a short text to compress"},
                         path="/v1/edge-lingua/compress")
        assert status == 401
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("POST", "/v1/edge-lingua/compress",
                           json.dumps({"text": "a short text to compress", "rate": 0.5}),
                           {"Content-Type": "application/json", "Authorization": "Bearer s3cret"})
        answer = connection.getresponse()
        data = json.loads(answer.read())
        connection.close()
        assert answer.status == 200 and data["origin_tokens"] > 0 and len(data["kept"]) == 5
    finally:
        stop_process(process)
