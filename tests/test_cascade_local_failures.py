"""The cascade when the on-device model fails: a typed error when nothing else can answer, the
remote's answer when it can. The failures are real llama.cpp ones (a file that is not a GGUF
model, a prompt longer than the model's context)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edge_lingua.cascade import (
    Cascade,
    CircuitBreaker,
    LocalModel,
    Policy,
    RemoteClient,
    RetryPolicy,
)
from edge_lingua.errors import InvalidArgumentError, LocalModelError
from tests.servers import DROP, LLAMA_THREADS, OK, gemma_path

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (the cascade extra)")
pytestmark = [pytest.mark.llama, pytest.mark.timeout(240)]

LONG = [{"role": "user", "content": "Count the ducks: " + "duck " * 400 + "How many?"}]


@pytest.fixture(scope="module")
def short_context_local() -> LocalModel:
    """Gemma 3 270M with a 128-token context: LONG does not fit."""
    return LocalModel(gemma_path(), n_ctx=128, n_threads=LLAMA_THREADS)


def _remote(fault) -> RemoteClient:
    return RemoteClient(fault.url, timeout_s=5.0,
                        retry=RetryPolicy(max_retries=1, backoff_base_s=0.01, backoff_max_s=0.02),
                        breaker=CircuitBreaker(failure_threshold=50, reset_after_s=60))


def test_a_file_that_is_not_a_model_is_a_local_model_error(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF but not really a model" * 100)
    with pytest.raises(LocalModelError, match="could not load"):
        LocalModel(fake, n_ctx=128)


def test_a_missing_model_file_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"local model file .*absent\.gguf does not"):
        LocalModel(tmp_path / "absent.gguf")


def test_without_llama_cpp_the_error_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp fails
    with pytest.raises(LocalModelError, match=r"^llama-cpp-python is not installed: "
                                              r"pip install 'edge-lingua\[cascade\]'$"):
        LocalModel(model)


def test_a_model_loads_quietly_with_a_2048_token_context_by_default(
    capfd: pytest.CaptureFixture[str]
) -> None:
    path = gemma_path()
    capfd.readouterr()
    model = LocalModel(path, n_threads=3)
    assert "llama_model_loader" not in capfd.readouterr().err  # no load log, no metadata dump
    llama = model._llama  # the prompt is evaluated with the same threads as the answer
    assert (llama.n_ctx(), llama.n_threads, llama.n_threads_batch) == (2048, 3, 3)
    assert model.name == path.name  # what the ledger records as the model


def test_the_local_failure_is_a_typed_error_when_no_remote_exists(short_context_local) -> None:
    with pytest.raises(LocalModelError, match=r"^the local model failed: .*context"):
        short_context_local.generate(LONG, max_tokens=4)
    cascade = Cascade(local=short_context_local, tokenizer=_tokenizer())
    with pytest.raises(LocalModelError, match="no answer"):
        cascade.ask(LONG, max_tokens=4)


def test_local_and_remote_failing_together_says_both(short_context_local, fault) -> None:
    fault.script(default=DROP)
    cascade = Cascade(local=short_context_local, remote=_remote(fault), tokenizer=_tokenizer())
    with pytest.raises(LocalModelError, match="remote failed"):
        cascade.ask(LONG, max_tokens=4)


def test_a_failing_local_model_escalates_to_the_remote(short_context_local, fault) -> None:
    fault.script(default=OK)
    cascade = Cascade(local=short_context_local, remote=_remote(fault),
                      policy=Policy(try_local=True), tokenizer=_tokenizer())
    result = cascade.ask(LONG, max_tokens=4)
    assert result.route == "remote" and result.text
    assert len(fault.received) == 1


def _tokenizer() -> Path:
    from edge_lingua.compressor import default_bundle_path

    return default_bundle_path() / "tokenizer.json"
