"""Redaction of e-mail addresses, phone numbers and API keys before text leaves the device."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from edge_lingua.errors import InvalidArgumentError

EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])"
)
# International numbers (+country code) and the 3-3-4 form, with separators. Plain
# numbers ("1,200", "2024", "48 clips") never match: a phone needs a + or separators
# in a phone-like grouping, and 7 to 15 digits in all.
PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}"
    r"|(?:\(\d{3}\)[ ]?|\d{3}[-. ])\d{3}[-. ]\d{4}"
    r")(?![\w])"
)
API_KEY = re.compile(
    r"\b(?:"
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"  # OpenAI / Anthropic style
    r"|AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face tokens
    r")"
)
# A secret-looking value right after a key-ish name: "api_key=...", "token: ...", "Bearer ...".
ASSIGNED_SECRET = re.compile(
    r"(?i)(\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|password)"
    r"[\"']?\s*[:=]\s*[\"']?|\bbearer\s+)"
    r"([A-Za-z0-9_\-./+=]{12,})"
)

KINDS = ("email", "phone", "api_key")


@dataclass(frozen=True)
class Redaction:
    """Redacted text and how many items of each kind were replaced."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Redactor:
    """Replaces personal data and secrets with placeholders such as ``[EMAIL]``.

    ``kinds`` picks what to redact among ``email``, ``phone`` and ``api_key``.
    """

    kinds: tuple[str, ...] = KINDS

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise InvalidArgumentError(f"unknown redaction kind(s) {unknown}; choose from {KINDS}")

    def redact(self, text: str) -> Redaction:
        """Redact ``text``; API keys first, so a key is never half-taken for a phone number."""
        counts: Counter[str] = Counter()

        def sub(pattern: re.Pattern[str], kind: str, placeholder: str, value: str) -> str:
            def repl(match: re.Match[str]) -> str:
                if kind == "phone" and not 7 <= sum(c.isdigit() for c in match.group()) <= 15:
                    return match.group()
                counts[kind] += 1
                return placeholder

            return pattern.sub(repl, value)

        if "api_key" in self.kinds:
            text = sub(API_KEY, "api_key", "[API_KEY]", text)

            def assigned(match: re.Match[str]) -> str:
                if match.group(2) == "[API_KEY]":
                    return match.group()
                counts["api_key"] += 1
                return match.group(1) + "[API_KEY]"

            text = ASSIGNED_SECRET.sub(assigned, text)
        if "email" in self.kinds:
            text = sub(EMAIL, "email", "[EMAIL]", text)
        if "phone" in self.kinds:
            text = sub(PHONE, "phone", "[PHONE]", text)
        return Redaction(text=text, counts=dict(counts))
