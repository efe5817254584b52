"""Which texts of a Responses or Anthropic Messages body the proxy compresses, by scope and
by the client's marks, and that each compressed text goes back where it came from.

In process, on the shipped model (the ``compressor`` fixture), without a server: a text the
proxy compresses comes back shorter; a text it leaves alone comes back as written. Also where
each API's event stream tells the completion tokens the proxy records.
"""

from __future__ import annotations

import copy
import itertools
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edge_lingua.compressor import Compressor
from edge_lingua.proxy.apis import MESSAGES, RESPONSES, Api
from edge_lingua.proxy.app import UsageScanner
from tests.test_cascade_units import words


def count(text: str) -> int:
    """Characters: the proxy counts the texts joined, so a count must add up over them."""
    return len(text)


TEXTS = [words(150, seed) for seed in range(8)]


def compressed(before: str, after: str) -> bool:
    """``after`` is ``before`` compressed (shorter), not ``before`` as written."""
    assert isinstance(after, str)
    return count(after) < count(before)


def _messages_body() -> dict:
    return {
        "system": TEXTS[0],
        "messages": [
            {"role": "user", "content": TEXTS[1]},
            {"role": "assistant", "content": [
                {"type": "text", "text": TEXTS[2]},
                {"type": "image", "source": {"data": TEXTS[3]}},
                {"type": "text", "text": TEXTS[4], "compress": False},
            ]},
            {"role": "user", "content": [{"type": "text", "text": TEXTS[5]}]},
        ],
    }


@pytest.mark.parametrize(("scope", "expected"), [
    # system, user, assistant text, assistant text marked false, last user
    ("context", [True, True, True, False, False]),
    ("all", [True, True, True, False, True]),
    ("none", [False, False, False, False, False]),
])
def test_messages_scope_decides_what_is_compressed(compressor, scope, expected) -> None:
    body = _messages_body()
    prepared = MESSAGES.compress(body, compressor, count, scope, rate=0.3)
    got = [body["system"], body["messages"][0]["content"],
           body["messages"][1]["content"][0]["text"], body["messages"][1]["content"][2]["text"],
           body["messages"][2]["content"][0]["text"]]
    before = [TEXTS[0], TEXTS[1], TEXTS[2], TEXTS[4], TEXTS[5]]
    assert [compressed(b, a) for b, a in zip(before, got, strict=True)] == expected
    for b, a, squeezed in zip(before, got, expected, strict=True):
        assert squeezed or a == b
    assert body["messages"][1]["content"][1] == {"type": "image", "source": {"data": TEXTS[3]}}
    assert "compress" not in body["messages"][1]["content"][2]  # the mark never goes upstream
    assert prepared.original_tokens == sum(count(t) for t in before)
    assert prepared.sent_tokens == sum(count(t) for t in got)


def test_messages_marks_and_pins_of_the_client_win_over_the_scope(compressor) -> None:
    body = _messages_body()
    body["system"] = [{"type": "text", "text": TEXTS[0]}]
    last = body["messages"][2]
    last["compress"] = True
    last["pins"] = ["qzx-pinned-77"]
    last["content"][0]["text"] = TEXTS[5] + " qzx-pinned-77 " + TEXTS[6]
    MESSAGES.compress(body, compressor, count, "none", rate=0.3)
    assert body["system"] == [{"type": "text", "text": TEXTS[0]}]  # scope none: as written
    text = last["content"][0]["text"]
    assert compressed(TEXTS[5] + " x " + TEXTS[6], text) and "qzx-pinned-77" in text
    assert "compress" not in last and "pins" not in last
    body = _messages_body()
    body["system"] = [{"type": "text", "text": TEXTS[0]}, {"type": "text", "text": TEXTS[7]}]
    MESSAGES.compress(body, compressor, count, "context", rate=0.3)
    assert all(compressed(t, block["text"])
               for t, block in zip((TEXTS[0], TEXTS[7]), body["system"], strict=True))


def test_messages_without_compressible_text_are_left_alone(compressor) -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]}
    original = copy.deepcopy(body)
    prepared = MESSAGES.compress(body, compressor, count, "all", rate=0.3)
    assert body == original
    assert (prepared.messages, prepared.original_tokens, prepared.sent_tokens) == ([], 0, 0)
    assert prepared.compression is None and prepared.compress_s == 0.0  # no time spent


def test_responses_instructions_and_message_items_by_scope(compressor) -> None:
    def body() -> dict:
        return {"instructions": TEXTS[0], "input": [
            {"type": "message", "role": "developer", "content": TEXTS[1]},
            {"type": "function_call_output", "call_id": "c1", "output": TEXTS[2]},
            {"role": "user", "content": [{"type": "input_text", "text": TEXTS[3]},
                                         {"type": "input_image", "image_url": "data:x"}]},
            {"type": "message", "role": "tool", "content": TEXTS[4]},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": TEXTS[5]}]},
        ]}

    context = body()
    RESPONSES.compress(context, compressor, count, "context", rate=0.3)
    items = context["input"]
    assert compressed(TEXTS[0], context["instructions"])
    assert compressed(TEXTS[1], items[0]["content"])
    assert items[1]["output"] == TEXTS[2]  # not a message item
    assert compressed(TEXTS[3], items[2]["content"][0]["text"])
    assert items[2]["content"][1] == {"type": "input_image", "image_url": "data:x"}
    assert items[3]["content"] == TEXTS[4]  # a role the proxy does not compress
    assert items[4]["content"][0]["text"] == TEXTS[5]  # the live question
    everything = body()
    RESPONSES.compress(everything, compressor, count, "all", rate=0.3)
    assert compressed(TEXTS[5], everything["input"][4]["content"][0]["text"])
    assert everything["input"][3]["content"] == TEXTS[4]
    marked = body()
    marked["input"][3]["compress"] = True
    marked["input"][4]["content"][0]["compress"] = True
    RESPONSES.compress(marked, compressor, count, "none", rate=0.3)
    assert marked["instructions"] == TEXTS[0]
    assert marked["input"][0]["content"] == TEXTS[1]
    assert compressed(TEXTS[4], marked["input"][3]["content"])
    assert compressed(TEXTS[5], marked["input"][4]["content"][0]["text"])


@pytest.mark.parametrize(("scope", "squeezed"), [("context", False), ("all", True)])
def test_responses_string_input_is_the_question(compressor, scope, squeezed) -> None:
    body = {"instructions": TEXTS[0], "input": TEXTS[1]}
    RESPONSES.compress(body, compressor, count, scope, rate=0.3)
    assert compressed(TEXTS[0], body["instructions"])
    assert compressed(TEXTS[1], body["input"]) == squeezed
    assert squeezed or body["input"] == TEXTS[1]


@pytest.mark.parametrize(("api", "body"), [
    (RESPONSES, {"instructions": TEXTS[0], "input": TEXTS[1]}),
    (MESSAGES, {"system": TEXTS[0], "messages": [{"role": "user", "content": TEXTS[1]}]}),
], ids=["responses", "messages"])
def test_the_rate_decides_how_far_the_texts_are_squeezed(compressor: Compressor, api: Api,
                                                         body: dict) -> None:
    sent = [api.compress(copy.deepcopy(body), compressor, count, "context", rate=rate)
            .sent_tokens for rate in (0.3, 0.8)]
    assert sent[0] < sent[1] < count(TEXTS[0]) + count(TEXTS[1])


def _events(*payloads: dict | str, name: str | None = None) -> bytes:
    """Server-sent events, one per payload (a string is sent as it is)."""
    head = f"event: {name}\n" if name else ""
    return b"".join(f"{head}data: {p if isinstance(p, str) else json.dumps(p)}\n\n".encode()
                    for p in payloads)


@pytest.mark.parametrize(("stream", "tokens"), [
    (_events({"choices": [], "usage": {"completion_tokens": 7}}, "[DONE]"), 7),  # chat
    (_events({"type": "response.completed", "response": {"usage": {"output_tokens": 9}}},
             name="response.completed"), 9),  # responses
    (_events({"type": "message_start", "message": {"usage": {"output_tokens": 0}}},
             {"type": "message_delta", "usage": {"output_tokens": 3}}), 3),  # messages
    (_events({"choices": []}, "[DONE]"), 0),  # no usage at all
    (b'data:{"usage": {"completion_tokens": 5}}\n\n', 5),  # no space after the colon
    (_events("", {"usage": {"completion_tokens": 4}}), 4),  # an empty event first
    (_events("keep-alive", {"usage": {"completion_tokens": 4}}), 4),  # not JSON first
    (_events({"usage": {"completion_tokens": 5}}, {"usage": {"completion_tokens": 0}}), 5),
], ids=["chat", "responses", "messages", "none", "no-space", "empty-first", "not-json-first",
        "zero-later"])
@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.integers(0, 400), max_size=6))
@example(cuts=[])
def test_completion_tokens_are_found_in_a_stream_however_it_is_cut(stream: bytes, tokens: int,
                                                                  cuts: list[int]) -> None:
    scanner = UsageScanner()
    bounds = [0, *sorted(c % (len(stream) + 1) for c in cuts), len(stream)]
    for start, end in itertools.pairwise(bounds):
        scanner.feed(stream[start:end])
    assert scanner.completion_tokens == tokens


# --- what the proxy asks of the compressor: its own rate and budget, or the request's ---------
def _prepared_body(body: dict, **config_fields):
    """The proxy's preparation of a chat ``body`` (parse, redact, compress), in process."""
    from edge_lingua.cascade import RemoteClient
    from edge_lingua.proxy import ProxyConfig
    from edge_lingua.proxy.apis import CHAT
    from edge_lingua.proxy.app import _prepare

    config = ProxyConfig(upstream=RemoteClient("http://127.0.0.1:9"), count=count,
                         **config_fields)
    return _prepare(json.dumps(body).encode(), CHAT, config)


def _prepared(compressor: Compressor, options: dict | None, **config_fields):
    body = {"model": "m", "messages": [{"role": "user", "content": words(400, 3)},
                                       {"role": "user", "content": "How many ducks?"}]}
    if options is not None:
        body["edge_lingua"] = options
    return _prepared_body(body, compressor=compressor, **config_fields)


@pytest.mark.parametrize(("config_fields", "options", "rate", "budget"), [
    ({"rate": 0.8}, None, 0.8, None),                                 # the proxy's rate
    ({"rate": 0.8}, {"rate": 0.3}, 0.3, None),                        # the request's rate
    ({"rate": 0.8}, {"target_token": 60}, None, 60),                  # the request's budget
    ({"rate": 0.8, "target_token": 60}, None, None, 60),              # the proxy's budget
    # a request's rate alone replaces the proxy's budget too
    ({"rate": 0.8, "target_token": 60}, {"rate": 0.5}, 0.5, None),
    # a request with both: the budget decides
    ({"rate": 0.8, "target_token": 60}, {"rate": 0.5, "target_token": 150}, None, 150),
])
def test_the_request_options_replace_the_proxys_rate_and_budget(
        compressor, config_fields, options, rate, budget):
    body, prepared = _prepared(compressor, options, **config_fields)
    result = prepared.compression
    assert "edge_lingua" not in body  # the extension never goes upstream
    assert body["messages"][-1]["content"] == "How many ducks?"  # scope=context: as written
    if rate is not None:
        assert result.compressed_tokens / result.origin_tokens == pytest.approx(rate, abs=0.08)
    else:
        assert budget - 25 <= result.compressed_tokens <= budget


@pytest.mark.parametrize(("scope", "asked"), [("context", True), ("all", False)])
def test_the_compressed_messages_go_upstream_read_for_the_last_question_in_scope_context(
        compressor, scope, asked):
    body, prepared = _prepared(compressor, None, rate=0.5, scope=scope)
    assert compressor.question_aware
    assert body["messages"] == prepared.messages  # what goes upstream is what was compressed
    assert len(body["messages"][0]["content"]) < len(words(400, 3))
    # scope=context leaves the last message as written and reads it as the question
    assert (prepared.compression.question_tokens > 0) is asked


def test_a_request_can_turn_compression_off_and_the_proxys_forced_words_stay(compressor):
    body, prepared = _prepared(compressor, {"compress": False}, rate=0.3)
    assert prepared.compression is None and body["messages"][0]["content"] == words(400, 3)
    body, prepared = _prepared(compressor, None, rate=0.2, force_tokens=("muffins",))
    kept = body["messages"][0]["content"]
    assert prepared.sent_tokens < prepared.original_tokens
    assert kept.count("muffins") == words(400, 3).count("muffins")


def test_the_proxy_redacts_message_text_but_never_the_fields_that_route_the_request():
    from edge_lingua.cascade.redaction import Redactor

    body, prepared = _prepared_body(
        {"model": "acme-large", "messages": [
            {"role": "user", "content": "the acme-secret plan, mail bob@example.com"}]},
        redactor=Redactor(patterns={"PROJECT": r"acme-\w+"}))
    assert body["model"] == "acme-large"
    assert body["messages"][0]["content"] == "the [PROJECT] plan, mail [EMAIL]"
    assert prepared.redactions == {"PROJECT": 1, "email": 1}
