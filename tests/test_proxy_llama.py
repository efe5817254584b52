"""``edge-lingua serve`` as a real process between the official ``openai`` client and
llama-cpp-python's OpenAI-compatible server running Gemma 3 270M."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.servers import (
    FORWARD,
    REPO,
    FaultServer,
    LlamaServer,
    free_port,
    stop_process,
    wait_http,
)

openai = pytest.importorskip("openai", reason="the openai client is a test dependency")
pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (the cascade extra)")
pytestmark = [pytest.mark.llama, pytest.mark.slow, pytest.mark.timeout(240)]

UPSTREAM_KEY = "sk-live-upstream-key-must-never-be-logged-0042"
CLIENT_TOKEN = "local-app-token-7"
FEW_SHOT = (
    "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many "
    "clips in May. How many clips did Natalia sell altogether in April and May?\n"
    "Answer: Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether. "
    "The answer is 72.\n"
    "Question: Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of "
    "babysitting. How much did she earn?\n"
    "Answer: Weng earns 12/60 = $0.2 per minute. Working 50 minutes, she earned $10. "
    "The answer is 10.\n"
)
MESSAGES = [
    {"role": "user", "content": FEW_SHOT},
    {"role": "user", "content": "Question: Tom has 3 apples and buys 2 more. How many apples "
                                "does he have?\nAnswer:"},
]


@pytest.fixture(scope="module")
def stack(compressor, tmp_path_factory):
    """llama server <- fault server (to see the wire) <- edge-lingua serve (subprocess)."""
    work = tmp_path_factory.mktemp("proxy-llama")
    bundle = compressor.bundle.path
    with LlamaServer(work / "llama.log") as llama, FaultServer(upstream=llama.url) as wire:
        wire.script(default=FORWARD)
        port = free_port()
        log_path = work / "proxy.log"
        env = {**os.environ, "UPSTREAM_KEY": UPSTREAM_KEY, "EDGE_LINGUA_PROXY_TOKEN": CLIENT_TOKEN,
               "HF_HUB_OFFLINE": "1"}
        args = [sys.executable, "-m", "edge_lingua.cli", "serve", "--upstream", wire.url,
                "--port", str(port), "--bundle", str(bundle), "--rate", "0.5",
                "--upstream-key-env", "UPSTREAM_KEY", "--ledger", str(work / "ledger.sqlite"),
                "--timeout", "120"]
        with log_path.open("wb") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       cwd=REPO)
        try:
            wait_http(f"http://127.0.0.1:{port}/health", 120, process)
            yield {"url": f"http://127.0.0.1:{port}/v1", "wire": wire, "process": process,
                   "log": log_path, "ledger": work / "ledger.sqlite"}
        finally:
            stop_process(process)


def client(stack, key: str = CLIENT_TOKEN) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack["url"], api_key=key, max_retries=0, timeout=120)


def test_openai_client_gets_gemma_answers_with_savings(stack):
    before = len(stack["wire"].received)
    raw = client(stack).chat.completions.with_raw_response.create(
        model="gemma-3-270m", messages=MESSAGES, max_tokens=8, temperature=0)
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.usage.completion_tokens <= 8
    assert completion.choices[0].finish_reason in ("stop", "length")
    (wire,) = stack["wire"].received[before:]
    assert wire.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert wire.body["messages"][1] == MESSAGES[1]
    assert len(wire.body["messages"][0]["content"]) < len(FEW_SHOT)
    saved = int(raw.headers["x-edge-lingua-saved-tokens"])
    assert saved > 0 and saved == (int(raw.headers["x-edge-lingua-original-tokens"])
                                   - int(raw.headers["x-edge-lingua-sent-tokens"]))


def test_streaming_answer_from_gemma_arrives_in_chunks(stack):
    stream = client(stack).chat.completions.create(
        model="gemma-3-270m", messages=MESSAGES, max_tokens=8, temperature=0, stream=True)
    chunks = list(stream)
    deltas = [c.choices[0].delta.content for c in chunks
              if c.choices and c.choices[0].delta.content]
    assert len(deltas) >= 2  # token by token, not one blob
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_wrong_client_token_is_refused(stack):
    before = len(stack["wire"].received)
    with pytest.raises(openai.AuthenticationError):
        client(stack, key="nope").chat.completions.create(model="m", messages=MESSAGES)
    assert len(stack["wire"].received) == before


def test_ledger_command_and_logs_after_the_session(stack):
    # its own two requests: the test passes alone and in any order
    for _ in range(2):
        client(stack).chat.completions.create(model="gemma-3-270m", messages=MESSAGES,
                                              max_tokens=4, temperature=0)
    deadline = time.monotonic() + 10
    out = None
    while time.monotonic() < deadline:
        out = subprocess.run([sys.executable, "-m", "edge_lingua.cli", "ledger",
                              str(stack["ledger"]), "--json"], capture_output=True, text=True,
                             timeout=60, cwd=REPO)
        if out.returncode == 0 and json.loads(out.stdout)["total"]["requests"] >= 2:
            break
        time.sleep(0.2)
    summary = json.loads(out.stdout)
    assert summary["routes"]["proxy"]["requests"] >= 2
    assert summary["total"]["saved_tokens"] > 0
    log = stack["log"].read_text(errors="replace")
    assert "POST /v1/chat/completions" in log  # the proxy does log its requests ...
    assert UPSTREAM_KEY not in log  # ... but never the upstream key
    assert stack["process"].poll() is None
