"""The cascade with real parts: Gemma 3 270M on the device (llama-cpp-python) and
llama-cpp-python's OpenAI-compatible server as the remote, reached through a loopback
fault server that can cut it off."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from edge_lingua.cascade import (
    Cascade,
    CircuitBreaker,
    DeferredQueue,
    Ledger,
    LocalModel,
    Policy,
    RemoteClient,
    RetryPolicy,
    compressible,
)
from edge_lingua.cascade.queue import DONE
from edge_lingua.errors import InvalidArgumentError
from tests.servers import DROP, FORWARD, LLAMA_THREADS, FaultServer, LlamaServer, gemma_path

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (the cascade extra)")
pytestmark = [pytest.mark.llama, pytest.mark.slow, pytest.mark.timeout(240)]

MAX_TOKENS = 8
CONTEXT = (
    "Question: Natalia sold clips to 48 of her friends in April, and then she sold half as many "
    "clips in May. How many clips did Natalia sell altogether in April and May?\n"
    "Answer: Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether in "
    "April and May. The answer is 72.\n"
    "Question: Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of "
    "babysitting. How much did she earn?\n"
    "Answer: Weng earns 12/60 = $0.2 per minute. Working 50 minutes, she earned 0.2 x 50 = $10. "
    "The answer is 10.\n"
)
MESSAGES = [{"role": "user", "content": [
    compressible(CONTEXT),
    {"type": "text", "text": "Question: Tom has 3 apples and buys 2 more. How many apples does "
                             "he have?\nAnswer:"},
]}]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with LlamaServer(log, n_ctx=2048) as server:
        yield server


@pytest.fixture(scope="module")
def local():
    return LocalModel(gemma_path(), n_ctx=2048, n_threads=LLAMA_THREADS, chat_format="gemma")


@pytest.fixture
def fault(llama_server):
    with FaultServer(upstream=llama_server.url) as server:
        server.script(default=FORWARD)
        yield server


def remote(server: FaultServer) -> RemoteClient:
    return RemoteClient(server.url, timeout_s=60.0,
                        retry=RetryPolicy(max_retries=1, backoff_base_s=0.01),
                        breaker=CircuitBreaker(failure_threshold=10, reset_after_s=60))


def test_local_model_is_deterministic_and_reports_its_confidence(local):
    first = local.generate([{"role": "user", "content": "Count: one, two, three,"}], MAX_TOKENS)
    again = local.generate([{"role": "user", "content": "Count: one, two, three,"}], MAX_TOKENS)
    assert replace(again, elapsed_s=first.elapsed_s) == first
    assert 0 < first.completion_tokens <= MAX_TOKENS and first.prompt_tokens > 5
    assert math.isfinite(first.mean_logprob) and first.mean_logprob <= 0
    other = local.generate([{"role": "user", "content": "zq xv 91 ;; @@"}], MAX_TOKENS)
    assert other.mean_logprob != first.mean_logprob
    with pytest.raises(InvalidArgumentError):
        LocalModel("/no/such/model.gguf")


def _greedy_by_hand(content: str, max_tokens: int) -> tuple[int, str, int, list[float]]:
    """Greedy decoding of Gemma's chat prompt for ``content``, one token at a time, with every
    step's log-softmax read from llama.cpp's full logits: (prompt tokens, answer text, answer
    tokens, log-probs)."""
    import numpy as np
    from llama_cpp import Llama

    reference = Llama(model_path=str(gemma_path()), n_ctx=256, n_threads=LLAMA_THREADS,
                      logits_all=True, verbose=False)
    prompt = f"<start_of_turn>user\n{content}<end_of_turn>\n<start_of_turn>model\n"
    tokens = reference.tokenize(prompt.encode(), add_bos=True, special=True)
    reference.eval(tokens)
    generated: list[int] = []
    logprobs: list[float] = []
    stops = {reference.token_eos(), *reference.tokenize(b"<end_of_turn>", add_bos=False,
                                                         special=True)}
    while len(generated) < max_tokens:
        logits = np.asarray(reference.scores[reference.n_tokens - 1], dtype=np.float64)
        token = int(np.argmax(logits))
        logprobs.append(float(logits.max() - np.log(np.sum(np.exp(logits)))))
        if token in stops:
            break
        generated.append(token)
        reference.eval([token])
    return len(tokens), reference.detokenize(generated).decode(), len(generated), logprobs


@pytest.mark.parametrize("content", ["Count: one, two, three,", "Write the word yes."])
def test_the_answer_is_greedy_and_its_confidence_the_mean_greedy_log_probability(local, content):
    import time

    started = time.perf_counter()
    answer = local.generate([{"role": "user", "content": content}], MAX_TOKENS)
    wall = time.perf_counter() - started
    prompt_tokens, text, completion_tokens, logprobs = _greedy_by_hand(content, MAX_TOKENS)
    assert answer.text == text
    assert (answer.prompt_tokens, answer.completion_tokens) == (prompt_tokens, completion_tokens)
    assert answer.mean_logprob == pytest.approx(sum(logprobs) / len(logprobs), abs=1e-4)
    assert 0 < answer.elapsed_s <= wall


def test_confident_local_answer_stays_on_the_device(local, compressor, fault, tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    cascade = Cascade(local=local, remote=remote(fault), compressor=compressor, ledger=ledger,
                      policy=Policy(min_confidence=-50.0))
    result = cascade.ask(MESSAGES, max_tokens=MAX_TOKENS)
    assert result.route == "local" and result.text and result.sent_tokens == 0
    assert fault.received == []
    (row,) = ledger.rows()
    assert row["route"] == "local" and row["saved_tokens"] == row["original_tokens"] > 0


def test_unsure_local_answer_escalates_the_compressed_prompt(local, compressor, fault, tmp_path):
    confidence = local.generate(
        [{"role": "user", "content": CONTEXT + "\n" + MESSAGES[0]["content"][1]["text"]}],
        MAX_TOKENS,
    ).mean_logprob
    ledger = Ledger(tmp_path / "ledger.sqlite")
    cascade = Cascade(local=local, remote=remote(fault), compressor=compressor, ledger=ledger,
                      policy=Policy(min_confidence=min(0.0, confidence + 0.01), rate=0.5))
    result = cascade.ask(MESSAGES, max_tokens=MAX_TOKENS, temperature=0)
    assert result.route == "remote"
    assert result.confidence == pytest.approx(confidence)
    (received,) = fault.received
    sent = received.body["messages"][0]["content"]
    assert sent.endswith("How many apples does he have?\nAnswer:")
    assert len(sent) < len(CONTEXT)
    assert result.response["object"] == "chat.completion"  # llama_cpp.server answered
    assert result.text == result.response["choices"][0]["message"]["content"]
    assert result.response["usage"]["completion_tokens"] <= MAX_TOKENS
    assert 0 < result.sent_tokens < result.original_tokens
    assert ledger.rows()[0]["completion_tokens"] == result.response["usage"]["completion_tokens"]


def test_remote_down_returns_the_local_answer_marked_degraded(local, compressor, fault):
    fault.script(default=DROP)
    cascade = Cascade(local=local, remote=remote(fault), compressor=compressor,
                      policy=Policy(try_local=False))
    result = cascade.ask(MESSAGES, max_tokens=MAX_TOKENS)
    assert result.route == "degraded" and result.degraded
    assert result.text and math.isfinite(result.confidence)
    assert "unavailable" in result.error
    assert len(fault.received) == 2  # the first try and one retry


def test_deferred_requests_reach_the_real_remote_when_it_returns(compressor, fault, tmp_path):
    fault.script(default=DROP)
    queue = DeferredQueue(tmp_path / "deferred.sqlite")
    cascade = Cascade(remote=remote(fault), compressor=compressor, queue=queue)
    ids = [cascade.ask(MESSAGES, max_tokens=MAX_TOKENS, defer=True).request_id for _ in range(2)]
    assert queue.counts() == {"pending": 2}
    fault.script(default=FORWARD)
    drained = cascade.drain()
    assert [r.request_id for r in drained] == ids
    assert all(r.response["object"] == "chat.completion" for r in drained)
    assert queue.counts() == {DONE: 2}
