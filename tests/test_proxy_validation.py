"""The proxy's request checks, called directly: each malformed field named, text counted
exactly against the character limit, nesting counted against the depth limit."""

from __future__ import annotations

import pytest

from edge_lingua.errors import InvalidFieldError, RequestTooLargeError
from edge_lingua.proxy import validation
from edge_lingua.proxy.config import Limits

IMAGE = {"type": "image_url", "image_url": {"url": "data:x"}}

# (check, body, characters of text the proxy may compress)
COUNTED = [
    (validation.chat, {"messages": [
        {"role": "system", "content": "abcd"},
        {"role": "user", "content": [{"type": "text", "text": "xyz"}, IMAGE]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "name": "f", "content": "ok"},
    ]}, 9),
    (validation.responses, {"instructions": "ab", "input": "xyz"}, 5),
    (validation.responses, {"instructions": "ab", "input": [
        {"role": "user", "content": "cde"},
        {"type": "function_call_output", "call_id": "c", "output": "not counted"},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "fg"}, {"type": "input_text", "text": "h"},
            {"type": "text", "text": "i"}, {"type": "input_image", "image_url": "x"}]},
    ]}, 9),
    (validation.messages, {"system": "abc", "messages": [
        {"role": "user", "content": "de"},
        {"role": "assistant", "content": [{"type": "text", "text": "f"}, {"type": "image"}]},
    ]}, 6),
    (validation.messages, {"system": [{"type": "text", "text": "ab"}, {"type": "image"}],
                           "messages": [{"role": "user", "content": "cd"}]}, 4),
]


@pytest.mark.parametrize(("check", "body", "chars"), COUNTED)
def test_text_is_counted_exactly_against_the_character_limit(check, body, chars) -> None:
    check(body, Limits(max_chars=chars))
    with pytest.raises(RequestTooLargeError) as info:
        check(body, Limits(max_chars=chars - 1))
    assert info.value.field == "messages"
    assert str(info.value) == (f"'messages' hold {chars} characters of text; the limit is "
                               f"{chars - 1}")


def test_too_many_messages_is_too_large() -> None:
    body = {"messages": [{"role": "user", "content": "x"}] * 3}
    validation.chat(body, Limits(max_messages=3))
    with pytest.raises(RequestTooLargeError, match="messages"):
        validation.chat(body, Limits(max_messages=2))


@pytest.mark.parametrize(("check", "body", "field", "message"), [
    (validation.chat, {"messages": []}, "messages", "must be a non-empty list"),
    (validation.chat, {"messages": [{"role": "user", "content": "x"}, {"content": "y"}]},
     "messages[1].role", "must be a string, not null"),
    (validation.chat, {"messages": [{"role": "user", "content": "x", "name": 3}]},
     "messages[0].name", "must be a string, not a number"),
    (validation.chat, {"messages": [{"role": "tool", "content": "x", "tool_call_id": True}]},
     "messages[0].tool_call_id", "must be a string, not a boolean"),
    (validation.chat, {"messages": [{"role": "assistant", "content": None, "tool_calls": {}}]},
     "messages[0].tool_calls", "must be a list"),
    (validation.chat, {"messages": [{"role": "assistant", "content": None,
                                     "tool_calls": [{"function": {"name": ["f"]}}]}]},
     "messages[0].tool_calls[0].function.name", "must be a string, not a list"),
    (validation.chat, {"messages": [{"role": "assistant", "content": None,
                                     "tool_calls": [{"function": "f"}]}]},
     "messages[0].tool_calls[0].function", "must be an object, not a string"),
    (validation.chat, {"messages": [{"role": "user", "content": 5}]},
     "messages[0].content", "must be a string or a list of content parts"),
    (validation.chat, {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
     "messages[0].content[0].text", "must be a string, not null"),
    (validation.chat, {"messages": [{"role": "user", "content": "x", "compress": 1}]},
     "messages[0].compress", "must be true or false, not a number"),
    (validation.chat, {"messages": [{"role": "user", "content": "x", "pins": ["a", 2]}]},
     "messages[0].pins[1]", "must be a string, not a number"),
    (validation.chat, {"messages": [{"role": "user", "content": "x"}], "stream": "yes"},
     "stream", "must be true or false, not a string"),
    (validation.chat, {"messages": [{"role": "user", "content": "x"}], "user": {}},
     "user", "must be a string, not an object"),
    (validation.chat, {"messages": [{"role": "user", "content": "x"}], "model": 1.5},
     "model", "must be a string, not a number"),
    (validation.responses, {"instructions": 7, "input": "x"}, "instructions",
     "must be a string, not a number"),
    (validation.responses, {"input": [{"role": "user", "content": "x"}, "y"]}, "input[1]",
     "must be an object, not a string"),
    (validation.responses, {"input": [{"role": "user", "content": "x"}, {"role": 2}]},
     "input[1].role", "must be a string, not a number"),
    # a body built in Python may hold what JSON cannot: the check names the type
    (validation.chat, {"messages": [("user", "x")]}, "messages[0]", "must be an object, not tuple"),
    (validation.responses, {"input": [{"role": "user", "content": [
        {"type": "input_text", "text": None}]}]}, "input[0].content[0].text",
     "must be a string, not null"),
    (validation.messages, {"system": [{"type": "text", "text": 1}],
                           "messages": [{"role": "user", "content": "x"}]},
     "system[0].text", "must be a string, not a number"),
    (validation.messages, {"messages": [{"role": "user", "content": "x"}, {"role": None}]},
     "messages[1].role", "must be a string, not null"),
    (validation.messages, {"messages": [{"role": "user", "content": [{"type": 1}]}]},
     "messages[0].content[0].type", "must be a string, not a number"),
])
def test_each_malformed_field_is_named(check, body, field, message) -> None:
    with pytest.raises(InvalidFieldError) as info:
        check(body, Limits())
    assert (info.value.field, str(info.value)) == (field, f"'{field}' {message}")


@pytest.mark.parametrize(("options", "field"), [
    ({"rate": True}, "edge_lingua.rate"), ({"rate": 0}, "edge_lingua.rate"),
    ({"rate": 1.5}, "edge_lingua.rate"), ({"rate": "0.5"}, "edge_lingua.rate"),
    ({"target_token": True}, "edge_lingua.target_token"),
    ({"target_token": 0}, "edge_lingua.target_token"),
    ({"target_token": 2.0}, "edge_lingua.target_token"),
    ({"compress": "yes"}, "edge_lingua.compress"), ("fast", "edge_lingua"),
])
def test_bad_options_are_named(options, field) -> None:
    with pytest.raises(InvalidFieldError) as info:
        validation.options({"edge_lingua": options})
    assert info.value.field == field


def test_good_options_are_returned() -> None:
    assert validation.options({}) == {} and validation.options({"edge_lingua": None}) == {}
    for rate in (1, 1.0, 0.25):
        assert validation.options({"edge_lingua": {"rate": rate}}) == {"rate": rate}
    given = {"rate": None, "target_token": 1, "compress": False}
    assert validation.options({"edge_lingua": given}) == given


def test_nesting_is_counted_against_the_depth_limit() -> None:
    limits = Limits(max_depth=4)  # the body is level 1, a value inside it level 2, ...
    assert validation.parse(b'{"a": {"b": [1]}}', limits) == {"a": {"b": [1]}}
    assert validation.parse(b'{"a": [{"b": {}}]}', limits) == {"a": [{"b": {}}]}
    with pytest.raises(InvalidFieldError, match="'body' nests deeper than 4 levels"):
        validation.parse(b'{"a": {"b": [[1]]}}', limits)
    with pytest.raises(InvalidFieldError, match="'body' nests deeper than 4 levels"):
        validation.parse(b'{"a": [{"b": {"c": 1}}]}', limits)
    with pytest.raises(InvalidFieldError, match="'body' is not JSON"):
        validation.parse(b"{nope", limits)
    with pytest.raises(InvalidFieldError, match="'body' must be a JSON object"):
        validation.parse(b"[1]", limits)
