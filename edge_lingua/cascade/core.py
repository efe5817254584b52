"""The cascade: answer on the device when it can, else send a compressed prompt up."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from tokenizers import Tokenizer

from edge_lingua.cascade.ledger import Entry, Ledger
from edge_lingua.cascade.policy import LocalAnswer, Policy
from edge_lingua.cascade.prompt import (
    PreparedRequest,
    PromptCompressor,
    TokenCounter,
    plain_messages,
    prepare,
    tokenizer_counter,
)
from edge_lingua.cascade.queue import DeferredQueue, new_owner
from edge_lingua.cascade.redaction import STRUCTURAL_KEYS, Redactor
from edge_lingua.cascade.remote import RemoteClient
from edge_lingua.errors import (
    InvalidArgumentError,
    LocalModelError,
    RemoteRequestError,
    RemoteUnavailableError,
)

log = logging.getLogger(__name__)

LOCAL = "local"
REMOTE = "remote"
DEGRADED = "degraded"
DEFERRED = "deferred"
DRAINED = "drained"


class LocalGenerator(Protocol):
    """What the cascade needs from an on-device model (:class:`LocalModel` fits)."""

    name: str

    def generate(self, messages: list[dict[str, Any]], max_tokens: int) -> LocalAnswer: ...


@dataclass(frozen=True)
class CascadeResult:
    """The answer to one request and how it was obtained.

    ``route`` is ``local``, ``remote``, ``degraded`` (remote unreachable: the local answer,
    however unsure), ``deferred`` (queued: ``text`` is None, collect it by ``request_id``)
    or ``drained`` (a queued request answered later).
    """

    route: str
    text: str | None
    original_tokens: int
    sent_tokens: int
    latency_s: float
    confidence: float | None = None
    request_id: str | None = None
    response: dict[str, Any] | None = None
    error: str | None = None

    @property
    def degraded(self) -> bool:
        return self.route == DEGRADED

    @property
    def saved_tokens(self) -> int:
        return self.original_tokens - self.sent_tokens


class Cascade:
    """Edge-to-cloud cascade.

    ``local``: the on-device model (or None); ``remote``: the remote endpoint's client (or
    None for on-device only); ``compressor``: what shortens the marked parts before they
    go up (None sends them as written); ``tokenizer``: the target LLM's tokenizer.json
    used for the ledger's token counts (default: the compressor bundle's tokenizer);
    ``queue``: where deferred requests wait; ``ledger``: where every request is recorded.
    """

    def __init__(
        self,
        *,
        local: LocalGenerator | None = None,
        remote: RemoteClient | None = None,
        compressor: PromptCompressor | None = None,
        policy: Policy | None = None,
        redactor: Redactor | None = None,
        tokenizer: str | Path | Tokenizer | None = None,
        queue: DeferredQueue | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        if local is None and remote is None:
            raise InvalidArgumentError("a cascade needs a local model, a remote, or both")
        self.local = local
        self.remote = remote
        self.compressor = compressor
        self.policy = policy or Policy()
        self.redactor = redactor
        self.queue = queue
        self.ledger = ledger
        self._count = _counter(tokenizer, compressor)
        self._owner = new_owner()

    def ask(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        max_tokens: int = 256,
        defer: bool = False,
        **params: Any,
    ) -> CascadeResult:
        """Answer a chat request; ``params`` (temperature, stop, ...) go to the remote as is.

        Raises :class:`RemoteUnavailableError` only when the remote is unreachable, there is
        no local model and ``defer`` is false; :class:`RemoteRequestError` when the remote
        rejects the request.
        """
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidArgumentError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        if defer and self.queue is None:
            raise InvalidArgumentError("defer=True needs a cascade built with queue=DeferredQueue")
        started = time.perf_counter()
        plain = plain_messages(messages)
        local_answer = None
        if self.local is not None and (self.policy.try_local or self.remote is None):
            local_answer = self._local(plain, max_tokens)
            if self.remote is None or self.policy.accept(local_answer):
                return self._finish_local(LOCAL, local_answer, plain, started, None)
        prepared = prepare(
            messages, self.compressor, self._count,
            rate=self.policy.rate, target_token=self.policy.target_token,
            force_tokens=self.policy.force_tokens, redactor=self.redactor,
        )
        if self.redactor is not None:  # ``user`` and any other field leave the device too
            params, redaction = self.redactor.redact_json(params, skip=STRUCTURAL_KEYS)
            prepared = replace(prepared, redactions=_merged(prepared.redactions, redaction.counts))
        payload = {**params, "messages": prepared.messages, "max_tokens": max_tokens}
        assert self.remote is not None
        try:
            reply = self.remote.chat(payload)
        except RemoteRequestError as exc:
            self._record_failure(prepared, started, exc)
            raise
        except RemoteUnavailableError as exc:
            if defer:
                return self._defer(payload, prepared, started, str(exc))
            if self.local is None:
                self._record_failure(prepared, started, exc)
                raise
            if local_answer is None:
                local_answer = self._local(plain, max_tokens)
            return self._finish_local(DEGRADED, local_answer, plain, started, str(exc))
        text, completion = _answer(reply.body)
        latency = time.perf_counter() - started
        self._record(Entry(REMOTE, _model(reply.body, self.remote), prepared.original_tokens,
                           prepared.sent_tokens, completion, latency, prepared.compress_s,
                           _n(prepared.redactions)))
        return CascadeResult(REMOTE, text, prepared.original_tokens, prepared.sent_tokens,
                             latency, None if local_answer is None else local_answer.mean_logprob,
                             response=reply.body)

    def drain(self) -> list[CascadeResult]:
        """Send queued requests, oldest first, until the queue is empty or the remote fails.

        Each request is claimed with a lease first (see :class:`DeferredQueue`), so several
        threads, cascades or processes can drain one queue and each request goes out and is
        recorded once. It is sent with its id as the Idempotency-Key. A request the remote
        rejects (4xx) is marked failed; one it cannot take now goes back to the queue.
        """
        if self.queue is None or self.remote is None:
            return []
        done: list[CascadeResult] = []
        while (item := self.queue.claim(self._owner)) is not None:
            started = time.perf_counter()
            try:
                reply = self.remote.chat(item.payload, idempotency_key=item.id,
                                         retry_timeouts=True)
            except RemoteUnavailableError:
                self.queue.release(item.id, self._owner)
                break
            except RemoteRequestError as exc:
                self.queue.fail(item.id, str(exc), self._owner)
                continue
            if not self.queue.complete(item.id, reply.body, self._owner):
                log.warning("lease on deferred request %s ran out before its answer came; "
                            "another drainer has it", item.id)
                continue
            text, completion = _answer(reply.body)
            latency = time.perf_counter() - started
            original, sent = item.meta["original_tokens"], item.meta["sent_tokens"]
            self._record(Entry(DRAINED, _model(reply.body, self.remote), original, sent,
                               completion, latency, request_id=item.id))
            done.append(CascadeResult(DRAINED, text, original, sent, latency,
                                      request_id=item.id, response=reply.body))
        return done

    def start_drainer(self, interval_s: float = 30.0) -> Drainer:
        """Drain the queue every ``interval_s`` seconds on a daemon thread until stopped."""
        return Drainer(self, interval_s)

    # --- internals -----------------------------------------------------------------------
    def _local(self, messages: list[dict[str, Any]], max_tokens: int) -> LocalAnswer | None:
        assert self.local is not None
        try:
            return self.local.generate(messages, max_tokens)
        except LocalModelError as exc:
            log.warning("local model failed: %s", exc)
            return None

    def _finish_local(
        self, route: str, answer: LocalAnswer | None, messages: list[dict[str, Any]],
        started: float, error: str | None,
    ) -> CascadeResult:
        if answer is None:
            why = f" and the remote failed: {error}" if error else ""
            raise LocalModelError(f"the local model gave no answer{why}")
        original = self._count("".join(_texts(messages)))
        latency = time.perf_counter() - started
        assert self.local is not None
        self._record(Entry(route, self.local.name, original, 0, answer.completion_tokens, latency,
                           error=error))
        return CascadeResult(route, answer.text, original, 0, latency, answer.mean_logprob,
                             error=error)

    def _defer(
        self, payload: dict[str, Any], prepared: PreparedRequest, started: float, error: str
    ) -> CascadeResult:
        assert self.queue is not None
        meta = {"original_tokens": prepared.original_tokens, "sent_tokens": prepared.sent_tokens}
        request_id = self.queue.put(payload, meta)
        latency = time.perf_counter() - started
        self._record(Entry(DEFERRED, None if self.remote is None else self.remote.model,
                           prepared.original_tokens, 0, 0, latency, prepared.compress_s,
                           _n(prepared.redactions), request_id=request_id, error=error))
        return CascadeResult(DEFERRED, None, prepared.original_tokens, 0, latency,
                             request_id=request_id, error=error)

    def _record_failure(
        self, prepared: PreparedRequest, started: float, exc: Exception
    ) -> None:
        assert self.remote is not None
        self._record(Entry(REMOTE, self.remote.model, prepared.original_tokens, 0, 0,
                           time.perf_counter() - started, prepared.compress_s,
                           _n(prepared.redactions), error=str(exc)))

    def _record(self, entry: Entry) -> None:
        if self.ledger is not None:
            self.ledger.record(entry)


class Drainer:
    """A daemon thread that calls ``cascade.drain()`` periodically; ``stop()`` ends it."""

    def __init__(self, cascade: Cascade, interval_s: float) -> None:
        if interval_s <= 0:
            raise InvalidArgumentError(f"interval_s must be > 0, got {interval_s!r}")
        self._cascade = cascade
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edge-lingua-drainer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._cascade.drain()
            except Exception:  # keep draining later; the queue keeps the requests
                log.exception("draining the deferred queue failed")

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)


def _counter(
    tokenizer: str | Path | Tokenizer | None, compressor: PromptCompressor | None
) -> TokenCounter:
    if tokenizer is not None:
        return tokenizer_counter(tokenizer)
    bundle = getattr(compressor, "bundle", None)
    if bundle is not None:
        return tokenizer_counter(bundle.tokenizer_path)
    raise InvalidArgumentError(
        "pass tokenizer= (the target LLM's tokenizer.json) so the cascade can count tokens"
    )


def _texts(messages: list[dict[str, Any]]) -> list[str]:
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(p["text"] for p in content
                       if isinstance(p, dict) and p.get("type") == "text")
    return out


def _answer(body: dict[str, Any]) -> tuple[str, int]:
    """The first choice's text and the completion token count of a chat-completions answer."""
    choice = body["choices"][0] if body.get("choices") else {}
    message = choice.get("message") or {}
    text = message.get("content") or ""
    usage = body.get("usage") or {}
    return text, int(usage.get("completion_tokens") or 0)


def _model(body: dict[str, Any], remote: RemoteClient) -> str | None:
    return remote.model or body.get("model")


def _n(counts: dict[str, int]) -> int:
    return sum(counts.values())


def _merged(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in {*a, *b}}
