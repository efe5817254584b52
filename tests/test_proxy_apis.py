"""Which texts of a Responses or Anthropic Messages body the proxy compresses, by scope and
by the client's marks, and that each compressed text goes back where it came from.

In process, on the shipped model (the ``compressor`` fixture), without a server: a text the
proxy compresses comes back shorter; a text it leaves alone comes back as written.
"""

from __future__ import annotations

import copy

import pytest

from edge_lingua.proxy.apis import MESSAGES, RESPONSES
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
    assert prepared.compression is None


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
