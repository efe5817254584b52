"""Throughput, latency and memory of ``edge-lingua serve`` against calling the upstream directly.

A loopback OpenAI-style upstream answers at once (it echoes the request); clients post chat
requests with a ``--words``-word context and a short question at 1, 8 and 32 at a time:

* ``direct``   – to the upstream itself (the floor);
* ``proxy``    – through ``edge-lingua serve --no-compress`` (the server's own overhead);
* ``compress`` – through ``edge-lingua serve --rate 0.5`` (the default model compressing).

For each it reports requests/s, p50/p95 latency, and the proxy process's RSS after the level
and its peak (VmHWM). The proxy runs as its own process, started fresh for each mode.

    python -m benchmarks.proxy [--words 500 --requests 3 --out docs/results/proxy.json]
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, machine, write_json

LEVELS = (1, 8, 32)
TOKENIZER = REPO / "edge_lingua" / "models" / "default" / "tokenizer.json"
VOCAB = ("the", "ducks", "lay", "eggs", "every", "day", "she", "eats", "three", "for",
         "breakfast", "and", "bakes", "muffins", "her", "friends", "at", "market", "selling",
         "each", "fresh", "egg", "two", "dollars")


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][-1]["content"]
        answer = json.dumps({"id": "x", "object": "chat.completion", "model": "echo",
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": text}}],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


class _Upstream(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 resets bursts of connections


def _request(words: int, seed: int) -> bytes:
    rng = random.Random(seed)
    context = " ".join(rng.choice(VOCAB) for _ in range(words)) + "."
    return json.dumps({"model": "m", "messages": [
        {"role": "system", "content": context},
        {"role": "user", "content": "How much does she make every day?"}]}).encode()


def _post(port: int, path: str, body: bytes) -> float:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
    finally:
        connection.close()
    return time.perf_counter() - started


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _memory_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields["VmRSS"], "peak_rss_mb": fields["VmHWM"]}


def _start_proxy(upstream_port: int, options: list[str]) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_lingua.cli", "serve", "--upstream",
         f"http://127.0.0.1:{upstream_port}/v1", "--port", str(port), *options],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the proxy did not start")


def _level(port: int, path: str, clients: int, per_client: int, words: int) -> dict[str, Any]:
    bodies = [_request(words, i) for i in range(clients * per_client)]
    _post(port, path, bodies[0])  # warm up
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(pool.map(lambda b: _post(port, path, b), bodies))
    wall = time.perf_counter() - started
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    return {"clients": clients, "requests": len(bodies),
            "throughput_rps": round(len(bodies) / wall, 2),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p95_ms": round(p95 * 1000, 1)}


def run(words: int, per_client: int) -> dict[str, Any]:
    upstream = _Upstream(("127.0.0.1", 0), _Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    upstream_port = upstream.server_address[1]
    modes: dict[str, list[dict[str, Any]]] = {}
    try:
        modes["direct"] = [_level(upstream_port, "/v1/chat/completions", n, per_client, words)
                           for n in LEVELS]
        for mode, options in (("proxy", ["--no-compress", "--tokenizer", str(TOKENIZER)]),
                              ("compress", ["--rate", "0.5"])):
            process, port = _start_proxy(upstream_port, options)
            try:
                modes[mode] = [{**_level(port, "/v1/chat/completions", n, per_client, words),
                                **_memory_mb(process.pid)} for n in LEVELS]
            finally:
                process.terminate()
                process.wait(30)
    finally:
        upstream.shutdown()
    return modes


def table(modes: dict[str, list[dict[str, Any]]]) -> str:
    direct = {row["clients"]: row for row in modes["direct"]}
    lines = ["| mode | clients | req/s | p50 ms | p95 ms | p50 over direct ms | RSS MB "
             "| peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
    for mode, rows in modes.items():
        for row in rows:
            over = row["p50_ms"] - direct[row["clients"]]["p50_ms"]
            lines.append(f"| {mode} | {row['clients']} | {row['throughput_rps']} | "
                         f"{row['p50_ms']} | {row['p95_ms']} | "
                         f"{'-' if mode == 'direct' else f'{over:.1f}'} | "
                         f"{row.get('rss_mb', '-')} | {row.get('peak_rss_mb', '-')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--words", type=int, default=500, help="context words per request")
    parser.add_argument("--requests", type=int, default=3, help="requests per client per level")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "proxy.json")
    args = parser.parse_args(argv)
    modes = run(args.words, args.requests)
    result = {
        "command": " ".join(["python -m benchmarks.proxy", *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "words": args.words, "requests_per_client": args.requests,
        "modes": modes,
    }
    write_json(args.out, result)
    print(table(modes))
    print(f"cpu: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
          f"isa: {', '.join(result['machine']['isa'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
