"""The redactor: one test per pattern of the README's list, ordinary text left alone, app
patterns and hook, every string of a JSON body, and redaction before compression."""

from __future__ import annotations

import re
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_lingua.cascade.prompt import prepare, tokenizer_counter
from edge_lingua.cascade.redaction import (
    STRUCTURAL_KEYS,
    Redaction,
    Redactor,
    _replace,
    _require,
)
from edge_lingua.errors import InvalidArgumentError, MissingDependencyError

pytestmark = pytest.mark.timeout(120)

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9"
       "lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")

# (kind, secret as it appears in the text) – the README's pattern list, one row each.
PATTERNS = [
    ("api_key", "AKIAIOSFODNN7EXAMPLE"),  # AWS access key id
    ("api_key", "ASIAQWERTYUIOPASDFGH"),  # AWS temporary (STS) key id
    ("api_key", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),  # GitHub classic
    ("api_key", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"),
    ("api_key", JWT),  # bare JWT
    ("api_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dcAbCdEf"),  # Stripe live key
    ("api_key", "rk_live_4eC39HqLyjWDarjtT1zdp7dcXy"),  # Stripe restricted key
    ("api_key", "sk-proj-abcDEF0123456789xyzABC"),  # OpenAI
    ("api_key", "sk-ant-api03-abcdefghijklmnop0123"),  # Anthropic
    ("api_key", "ya29.a0AfH6SMBx-abcdefghijklmnop_qrstuv"),  # Google OAuth token
    ("api_key", "AIzaSyA1234567890abcdefghijklmnopqrstuv"),  # Google API key
    ("api_key", "hf_abcdefghijklmnopqrstuvwxyz0123456789"),  # Hugging Face
    ("api_key", "xoxb-123456789012-abcdefghijkl"),  # Slack
    ("api_key", "glpat-abcdefghij0123456789"),  # GitLab (detect-secrets)
    ("email", "john.doe+news@example.co.uk"),
    ("card", "4111 1111 1111 1111"),  # Visa, Luhn-valid, spaced
    ("card", "5500-0000-0000-0004"),  # Mastercard, dashed
    ("card", "378282246310005"),  # Amex, 15 digits
    ("iban", "GB82 WEST 1234 5698 7654 32"),
    ("iban", "DE89370400440532013000"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "0044 20 7946 0958"),
    ("phone", "020 7946 0958"),
    ("phone", "(415) 555-0132"),
    ("phone", "415-555-0132"),
    ("phone", "4155550132"),
    ("phone", "+1 415 555 0132"),
]


@pytest.mark.parametrize(("kind", "secret"), PATTERNS, ids=[s[:16] for _, s in PATTERNS])
def test_each_pattern_is_redacted(kind, secret):
    result = Redactor().redact(f"before {secret} after.")
    assert result.text == f"before [{kind.upper()}] after."
    assert result.counts == {kind: 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
         "aws_secret_access_key=[API_KEY]"),
        ('api_key = "q8Zr2LmT0pXv9sKw"', 'api_key = "[API_KEY]"'),
        ("password: hunter2hunter2!", "password: [API_KEY]!"),
        ("Authorization: Bearer abcdef1234567890XYZ", "Authorization: Bearer [API_KEY]"),
        # detect-secrets' keyword patterns: the value goes, the name and quotes stay
        ('aws_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', 'aws_key = "[API_KEY]"'),
        ("//registry.npmjs.org/:_authToken=0123abcd-0123-abcd-0123-0123456789ab",
         "//registry.npmjs.org/:_authToken=[API_KEY]"),
        # a key inside an assigned value: one placeholder over both, nothing of either left
        ("password=abcd.sk-proj-abcDEF0123456789xyzABC end", "password=[API_KEY] end"),
    ],
)
def test_values_assigned_to_secret_names_are_redacted(text, expected):
    assert Redactor().redact(text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "Natalia sold 48 clips in April 2024 for $1,200.50 and 3.14159 pies",
        "scores 12 14 16 18 20, version 1.2.3, ratio 10-20-30",
        "an @mention and user@localhost are not addresses",
        "order 4111 1111 1111 1112 fails the Luhn check",  # one digit off a valid card
        "GB82 WEST 1234 5698 7654 33 fails the IBAN checksum",
        "id 9876543210 and zip 94105 and year 20240115",
        "the sk-short and ghp_short names are no keys",
    ],
)
def test_ordinary_numbers_and_words_are_left_alone(text):
    assert Redactor().redact(text).text == text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**6), max_size=8))
def test_plain_integers_and_prices_are_never_redacted(numbers):
    text = " and ".join(f"{n} items for ${n / 100:.2f}" for n in numbers)
    assert Redactor().redact(text).text == text


def test_kinds_are_selectable_and_checked():
    text = "mail a@b.io call +1 415 555 0132"
    assert Redactor(kinds=("email",)).redact(text).text == "mail [EMAIL] call +1 415 555 0132"
    with pytest.raises(InvalidArgumentError):
        Redactor(kinds=("ssn",))


def test_app_patterns_and_hook_run_first():
    ssn = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
    redactor = Redactor(patterns={"ticket": r"TCK-\d{6}", "ssn": ssn},
                        hook=lambda text: text.replace("Project Falcon", "[PROJECT]"))
    result = redactor.redact("Project Falcon: TCK-123456, SSN 078-05-1120, bob@example.com")
    assert result.text == "[PROJECT]: [TICKET], SSN [SSN], [EMAIL]"
    assert result.counts == {"ticket": 1, "ssn": 1, "email": 1}
    for bad in ({"ticket": "("}, {"two words": "x"}):
        with pytest.raises(InvalidArgumentError):
            Redactor(patterns=bad)


def test_every_string_of_a_json_body_is_redacted_but_structure():
    body = {
        "model": "bob@example.com-model", "user": "alice@example.com",
        "messages": [
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {
                "name": "notify_bob@example.com", "arguments": '{"phone": "+44 20 7946 0958"}'}}]},
            {"role": "tool", "name": "card 4111111111111111", "tool_call_id": "call_1",
             "content": [{"type": "text", "text": "IBAN DE89370400440532013000"}]},
        ],
        "metadata": {"deep": [[{"x": "ghp_16C7e42F292c6912E7710c838347Ae178B4a"}]]},
    }
    redacted, result = Redactor().redact_json(body, skip=STRUCTURAL_KEYS)
    assert redacted["model"] == "bob@example.com-model"  # structure is left alone
    assert redacted["user"] == "[EMAIL]"
    function = redacted["messages"][0]["tool_calls"][0]["function"]
    assert function == {"name": "[EMAIL]", "arguments": '{"phone": "[PHONE]"}'}
    assert redacted["messages"][1]["name"] == "card [CARD]"
    assert redacted["messages"][1]["content"][0]["text"] == "IBAN [IBAN]"
    assert redacted["metadata"]["deep"][0][0]["x"] == "[API_KEY]"
    assert result.counts == {"email": 2, "phone": 1, "card": 1, "iban": 1, "api_key": 1}
    assert body["user"] == "alice@example.com"  # the input is not changed


@pytest.mark.parametrize("rate", [0.5, 0.33])
def test_no_secret_survives_compression_in_pieces(compressor, rate):
    """Redaction runs before compression, so no secret of the list leaks even in part."""
    filler = "The quarterly report covers revenue, costs and the hiring plan for next year."
    text = " ".join(f"{filler} Item {i}: {secret}." for i, (_, secret) in enumerate(PATTERNS))
    messages = [{"role": "user", "content": text, "compress": True}]
    count = tokenizer_counter(compressor.bundle.tokenizer_path)
    prepared = prepare(messages, compressor, count, rate=rate, redactor=Redactor())
    sent = prepared.messages[0]["content"]
    assert prepared.sent_tokens < 0.8 * prepared.original_tokens
    for _, secret in PATTERNS:
        for piece in re.split(r"[\s@.+()_-]+", secret):
            if len(piece) >= 5 and not piece.isalpha():
                assert piece not in sent, (secret, piece)
    assert sum(prepared.redactions.values()) == len(PATTERNS)


def _luhn(prefix: str) -> str:
    """``prefix`` completed with the digit that makes it pass the Luhn check."""
    for digit in "0123456789":
        number = prefix + digit
        total = 0
        for i, c in enumerate(reversed(number)):
            value = int(c) * (2 if i % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return number
    raise AssertionError(prefix)


@pytest.mark.parametrize(("digits", "redacted"), [(12, False), (13, True), (19, True),
                                                   (20, False)])
def test_card_numbers_are_13_to_19_digits_passing_luhn(digits, redacted):
    number = _luhn("4" + "1" * (digits - 2))
    text = Redactor(kinds=("card",)).redact(f"card {number} ok").text
    assert text == ("card [CARD] ok" if redacted else f"card {number} ok")


def test_overlapping_key_matches_become_one_placeholder_each():
    text = ("Authorization: Bearer sk-ant-AAAAAAAAAAAAAAAAAAAAAAAA then "
            "token=ghp_16C7e42F292c6912E7710c838347Ae178B4a end")
    result = Redactor(kinds=("api_key",)).redact(text)
    assert result.text == "Authorization: Bearer [API_KEY] then token=[API_KEY] end"
    assert result.counts == {"api_key": 2}


def test_redactor_errors_say_what_is_wrong():
    with pytest.raises(InvalidArgumentError,
                       match=r"^unknown redaction kind\(s\) \['ssn'\]; choose from \('api_key'"):
        Redactor(kinds=("email", "ssn"))
    for name in ("two words", "1st", ""):
        with pytest.raises(InvalidArgumentError,
                           match=rf"^a redaction pattern name must be a word, got '{name}'$"):
            Redactor(patterns={name: "x"})
    with pytest.raises(InvalidArgumentError, match=r"^redaction pattern 'ticket' is invalid: "):
        Redactor(patterns={"ticket": "("})
    assert Redactor(patterns={"Ticket_no-2": "TCK"}).redact("a TCK").text == "a [TICKET_NO-2]"
    with pytest.raises(MissingDependencyError,
                       match=r"^redacting things needs no_such_package: pip install "
                             r"'edge-lingua\[cascade\]'$"):
        _require("no_such_package.sub", "things")
    assert Redactor().redact_json({"a": "b@c.io"})[1] == Redaction("", {"email": 1})


@pytest.mark.parametrize(("text", "expected"), [
    ("NO9386011117947", "[IBAN]"),  # Norway's 15 characters, the shortest IBANs
    ("pay NO93 8601 1117 947 today", "pay [IBAN] today"),
    # groups after the IBAN are dropped until the checksum holds; they stay in the text
    ("IBAN DE89 3704 0044 0532 0130 00 12 EUR", "IBAN [IBAN] 12 EUR"),
    ("DE89 3704 0044 0532 0130 00 7", "[IBAN] 7"),
    ("DE893704004405320130007", "[IBAN]7"),
    ("GB82 WEST 1234 5698 7654 32 REF 7", "[IBAN] REF 7"),
])
def test_the_longest_prefix_with_a_valid_iban_checksum_is_redacted(text: str,
                                                                  expected: str) -> None:
    assert Redactor(kinds=("iban",)).redact(text) == Redaction(expected, {"iban": 1})


@pytest.mark.parametrize(("region", "number", "redacted"), [
    ("IS", "611 1234", True),  # Iceland: 7 digits, the fewest a phone number may have
    ("FO", "211234", False),  # Faroe Islands: 6 digits, too short to tell from other numbers
])
def test_phone_numbers_need_seven_digits(region: str, number: str, redacted: bool) -> None:
    result = Redactor(kinds=("phone",), phone_regions=(region,)).redact(f"call {number} now")
    assert result.text == ("call [PHONE] now" if redacted else f"call {number} now")


@pytest.mark.parametrize(("kind", "text", "module", "what"), [
    ("card", "4111 1111 1111 1111", "stdnum.luhn", "card numbers"),
    ("iban", "DE89370400440532013000", "stdnum.iban", "IBANs"),
    ("phone", "+44 20 7946 0958", "phonenumbers", "phone numbers"),
])
def test_a_missing_dependency_names_what_it_is_needed_for(monkeypatch: pytest.MonkeyPatch,
                                                          kind: str, text: str, module: str,
                                                          what: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # the import fails as if not installed
    package = module.split(".")[0]
    with pytest.raises(MissingDependencyError,
                       match=rf"^redacting {what} needs {package}: pip install "):
        Redactor(kinds=(kind,)).redact(text)


def test_an_app_pattern_named_after_a_kind_adds_to_its_count() -> None:
    redactor = Redactor(kinds=("api_key",), patterns={"api_key": r"INTERNAL-\d+"})
    result = redactor.redact("INTERNAL-42 and sk-proj-abcDEF0123456789xyzABC")
    assert result == Redaction("[API_KEY] and [API_KEY]", {"api_key": 2})


@pytest.mark.parametrize(("text", "pattern", "expected", "count"), [
    ("TCK-123456TCK-654321", r"TCK-\d{6}", "[T][T]", 2),  # adjacent matches stay two
    ("a 12 b 3", r"\d*", "a [T] b [T]", 2),  # empty matches are no matches
])
def test_each_app_pattern_match_is_one_placeholder(text: str, pattern: str, expected: str,
                                                   count: int) -> None:
    assert Redactor(kinds=(), patterns={"t": pattern}).redact(text) == Redaction(expected,
                                                                                 {"t": count})


@settings(max_examples=200, deadline=None)
@given(st.text("abcdef", max_size=30).flatmap(lambda text: st.tuples(
    st.just(text),
    st.lists(st.tuples(st.integers(0, len(text)), st.integers(0, len(text))).map(sorted)
             .map(tuple), max_size=6))))
def test_every_matched_character_and_only_those_are_replaced(case: tuple[str, list]) -> None:
    text, spans = case
    counts = Counter({"x": 5})
    out = _replace(text, spans, "#", "x", counts)
    covered = {i for start, end in spans for i in range(start, end)}
    assert out.replace("#", "") == "".join(c for i, c in enumerate(text) if i not in covered)
    assert counts["x"] == 5 + out.count("#")
    assert out.count("#") <= len(spans)


@pytest.mark.parametrize(("text", "expected"), [
    ("Card 4111 1111 1111 1111 12/25 cvv 123", "Card [CARD] 12/25 cvv 123"),
    ("Visa 4111 1111 1111 1111 06 2027", "Visa [CARD] 06 2027"),
    ("4111-1111-1111-1111 123 is the code", "[CARD] 123 is the code"),
    ("card 4111-1111-1111-1111-123", "card [CARD]-123"),
    # no group boundary to shorten at, and no shorter prefix that passes: left alone
    ("ref 41111111111111112 and 1234 5678 9012 3456 78", None),
    ("id 1234 5678 0006 0100", None),  # its first 12 digits pass, but no card is that short
])
def test_a_card_number_followed_by_its_expiry_date_is_redacted(
    text: str, expected: str | None
) -> None:
    assert Redactor(kinds=("card",)).redact(text).text == (expected or text)
