"""Redaction of personal data and secrets before anything leaves the device.

Kinds, in the order they run (the README lists every pattern):

* ``api_key`` – keys and tokens: detect-secrets' own detectors (AWS ``AKIA``/``ASIA``…,
  GitHub ``ghp_``…, JWTs, Stripe ``sk_live_``/``rk_live_``, OpenAI, Slack, GitLab, PyPI,
  Twilio, SendGrid, npm, Discord, Telegram) plus what they lack (GitHub ``github_pat_``,
  ``sk-``/``sk-proj-``/``sk-ant-`` keys, Google ``AIza`` keys and ``ya29.`` OAuth tokens,
  Hugging Face ``hf_``, Slack ``xox?-``), ``aws_secret_access_key=…`` and any value after
  ``api_key=``, ``secret:``, ``password=``, ``token=``, ``Bearer``;
* ``email`` – e-mail addresses;
* ``card`` – payment card numbers (13 to 19 digits, spaces or dashes allowed) that pass
  the Luhn check (python-stdnum);
* ``iban`` – IBANs whose ISO 7064 checksum holds (python-stdnum);
* ``phone`` – phone numbers in any format libphonenumber (``phonenumbers``) finds, read
  with each region of ``phone_regions`` (``+44 20 7946 0958``, ``0044 20 7946 0958``,
  ``020 7946 0958``, ``(415) 555-0132``, ``4155550132``…).

Apps add their own patterns with ``patterns={"ticket": r"TCK-\\d{6}"}`` (replaced by
``[TICKET]``) and any transformation with ``hook`` (a ``str -> str`` function run first).
phonenumbers, python-stdnum and detect-secrets come with the ``cascade`` extra and are
imported on first use.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge_lingua.errors import InvalidArgumentError, MissingDependencyError

KINDS = ("api_key", "email", "card", "iban", "phone")
PLACEHOLDERS = {kind: f"[{kind.upper()}]" for kind in KINDS}

EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])"
)
# Keys detect-secrets has no detector for (or matches only in part).
OWN_KEYS = re.compile(
    r"(?<![\w-])(?:"
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"  # OpenAI / Anthropic style
    r"|github_pat_[A-Za-z0-9_]{22,}"  # GitHub fine-grained tokens
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub classic tokens of any length
    r"|(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}"  # AWS access key ids
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|ya29\.[0-9A-Za-z_-]{20,}"  # Google OAuth access tokens
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face tokens
    r")"
)
# A secret-looking value right after a key-ish name: "api_key=...", "token: ...", "Bearer ...".
ASSIGNED_SECRET = re.compile(
    r"(?i)(\b(?:aws_secret_access_key|aws_secret_key|aws_session_token|api[_-]?key"
    r"|secret(?:[_-]?(?:access[_-]?)?key)?|access[_-]?token|auth[_-]?token|token|password"
    r"|passwd)[\"']?\s*[:=]\s*[\"']?|\bbearer\s+)"
    r"([A-Za-z0-9_\-./+=]{12,})"
)
# detect-secrets detectors whose regexes find keys and tokens in free text (module, class).
DETECT_SECRETS = (
    ("aws", "AWSKeyDetector"), ("github_token", "GitHubTokenDetector"),
    ("jwt", "JwtTokenDetector"), ("stripe", "StripeDetector"), ("openai", "OpenAIDetector"),
    ("slack", "SlackDetector"), ("gitlab_token", "GitLabTokenDetector"),
    ("pypi_token", "PypiTokenDetector"), ("twilio", "TwilioKeyDetector"),
    ("sendgrid", "SendGridDetector"), ("npm", "NpmDetector"),
    ("discord", "DiscordBotTokenDetector"), ("telegram_token", "TelegramBotTokenDetector"),
)
# A detector match is widened to the whole token (detect-secrets' regexes may stop early).
_TOKEN_TAIL = re.compile(r"(?:[\w-]|\.(?=[\w-]))*")
CARD = re.compile(r"(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w-]|\.\d)")
IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}(?![A-Za-z0-9])")
DEFAULT_PHONE_REGIONS = ("US", "GB")
# JSON keys whose values are structure, not data, left alone by ``Redactor.redact_json``
# (tool-call names and arguments, message names and ``user`` are data and are redacted).
STRUCTURAL_KEYS = frozenset({
    "model", "role", "type", "id", "tool_call_id", "image_url", "input_audio", "tools",
    "tool_choice", "response_format",
})
MIN_PHONE_DIGITS = 7

Span = tuple[int, int]


def _require(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"redacting {what} needs {module.split('.')[0]}: pip install 'edge-lingua[cascade]'"
        ) from None


@functools.cache
def _detectors() -> tuple[tuple[re.Pattern[str], Callable[[str], bool] | None], ...]:
    """detect-secrets' denylist regexes, each with its detector's format check (if any)."""
    out = []
    for module_name, class_name in DETECT_SECRETS:
        module = _require(f"detect_secrets.plugins.{module_name}", "keys and tokens")
        detector = getattr(module, class_name, None)
        if detector is None:
            continue
        check = getattr(detector, "is_formally_valid", None)
        out.extend((pattern, check) for pattern in detector.denylist)
    return tuple(out)


@dataclass(frozen=True)
class Redaction:
    """Redacted text and how many items of each kind were replaced."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Redactor:
    """Replaces personal data and secrets with placeholders such as ``[EMAIL]``.

    ``kinds`` picks among ``api_key``, ``email``, ``card``, ``iban`` and ``phone``;
    ``patterns`` adds named app patterns; ``hook`` runs on every text first;
    ``phone_regions`` are the regions whose national formats count as phone numbers.
    """

    kinds: tuple[str, ...] = KINDS
    patterns: Mapping[str, str | re.Pattern[str]] = field(default_factory=dict)
    hook: Callable[[str], str] | None = None
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
    _compiled: tuple[tuple[str, re.Pattern[str]], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise InvalidArgumentError(f"unknown redaction kind(s) {unknown}; choose from {KINDS}")
        compiled = []
        for name, pattern in dict(self.patterns).items():
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][\w-]*", name):
                raise InvalidArgumentError(f"a redaction pattern name must be a word, got {name!r}")
            try:
                compiled.append((name, re.compile(pattern)))
            except (re.error, TypeError) as exc:
                raise InvalidArgumentError(
                    f"redaction pattern {name!r} is invalid: {exc}") from None
        object.__setattr__(self, "_compiled", tuple(compiled))

    def redact(self, text: str) -> Redaction:
        """Redact ``text``: app patterns, then keys, e-mails, cards, IBANs, phones."""
        counts: Counter[str] = Counter()
        if self.hook is not None:
            text = self.hook(text)
        for name, pattern in self._compiled:
            text = _replace(text, [m.span() for m in pattern.finditer(text)], f"[{name.upper()}]",
                            name, counts)
        if "api_key" in self.kinds:
            text = _replace(text, _key_spans(text), PLACEHOLDERS["api_key"], "api_key", counts)
        if "email" in self.kinds:
            text = _replace(text, [m.span() for m in EMAIL.finditer(text)], PLACEHOLDERS["email"],
                            "email", counts)
        if "card" in self.kinds:
            text = _replace(text, list(_card_spans(text)), PLACEHOLDERS["card"], "card", counts)
        if "iban" in self.kinds:
            text = _replace(text, list(_iban_spans(text)), PLACEHOLDERS["iban"], "iban", counts)
        if "phone" in self.kinds:
            text = _replace(text, _phone_spans(text, self.phone_regions), PLACEHOLDERS["phone"],
                            "phone", counts)
        return Redaction(text=text, counts=dict(counts))

    def redact_json(self, value: Any, skip: frozenset[str] = frozenset()) -> tuple[Any, Redaction]:
        """A copy of a JSON value with every string redacted except those under ``skip`` keys.

        Returns the copy and the counts (``Redaction.text`` is empty). Walks iteratively, so
        nesting depth is bounded only by the caller's JSON parser.
        """
        counts: Counter[str] = Counter()

        def text(value: str) -> str:
            result = self.redact(value)
            counts.update(result.counts)
            return result.text

        root: list[Any] = [value]
        stack: list[tuple[Any, Any]] = [(root, 0)]
        while stack:
            holder, key = stack.pop()
            item = holder[key]
            if isinstance(item, str):
                holder[key] = text(item)
            elif isinstance(item, dict):
                holder[key] = copy = dict(item)  # keys are field names, not data
                stack.extend((copy, k) for k in copy if k not in skip)
            elif isinstance(item, list):
                holder[key] = copy_list = list(item)
                stack.extend((copy_list, i) for i in range(len(copy_list)))
        return root[0], Redaction("", dict(counts))


def _replace(text: str, spans: list[Span], placeholder: str, kind: str,
             counts: Counter[str]) -> str:
    """Replace non-overlapping ``spans`` (longest first where they overlap) by ``placeholder``."""
    if not spans:
        return text
    chosen: list[Span] = []
    for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
        if start == end:
            continue
        if chosen and start < chosen[-1][1]:
            if end > chosen[-1][1]:
                chosen[-1] = (chosen[-1][0], end)
            continue
        chosen.append((start, end))
    pieces, last = [], 0
    for start, end in chosen:
        pieces.append(text[last:start])
        pieces.append(placeholder)
        last = end
    pieces.append(text[last:])
    counts[kind] += len(chosen)
    return "".join(pieces)


def _key_spans(text: str) -> list[Span]:
    spans = [m.span() for m in OWN_KEYS.finditer(text)]
    for pattern, check in _detectors():
        for match in pattern.finditer(text):
            start, end = match.span()
            secret = match.group(pattern.groups) if pattern.groups else None
            if secret is not None and len(secret) >= 16:  # a keyword pattern: keep the name
                start, end = match.span(pattern.groups)
            else:
                end = _TOKEN_TAIL.match(text, end).end()
            if check is None or check(text[start:end]):
                spans.append((start, end))
    spans.extend(m.span(2) for m in ASSIGNED_SECRET.finditer(text)
                 if not m.group(2).startswith("[API_KEY"))
    return spans


def _card_spans(text: str) -> Iterator[Span]:
    """Card candidates, shortened group by group until the Luhn check holds (a card number
    that runs on into its expiry date or code is still found)."""
    luhn = _require("stdnum.luhn", "card numbers")
    for match in CARD.finditer(text):
        candidate = match.group()
        while len(digits := re.sub(r"\D", "", candidate)) >= 13:
            if luhn.is_valid(digits):
                yield match.start(), match.start() + len(candidate)
                break
            candidate = candidate[:max(candidate.rfind(" "), candidate.rfind("-"), 0)]


def _iban_spans(text: str) -> Iterator[Span]:
    """IBAN candidates, shortened group by group until the checksum holds."""
    iban = _require("stdnum.iban", "IBANs")
    for match in IBAN.finditer(text):
        candidate = match.group()
        while len(candidate.replace(" ", "")) >= 15:
            if iban.is_valid(candidate):
                yield match.start(), match.start() + len(candidate)
                break
            candidate = candidate[:-1].rstrip()


def _phone_spans(text: str, regions: tuple[str, ...]) -> list[Span]:
    phonenumbers = _require("phonenumbers", "phone numbers")
    if not any(c.isdigit() for c in text):
        return []
    spans = []
    for region in regions:
        for match in phonenumbers.PhoneNumberMatcher(text, region):
            if sum(c.isdigit() for c in match.raw_string) >= MIN_PHONE_DIGITS:
                spans.append((match.start, match.end))
    return spans
