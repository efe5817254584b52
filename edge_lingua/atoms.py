"""Atoms: pieces of text that mean nothing when cut, so they are kept or dropped whole.

URLs, e-mail addresses, file paths, UUIDs and hashes, IP addresses, numbers (signs,
thousands separators, decimals, percent, currency), dates and times, versions and
identifiers (snake_case, camelCase, dotted.names, kebab-case, CONSTANTS, @mentions, #tags;
abbreviations such as U.S. and e.g. with their last period).
:func:`find_atoms` returns their character spans and categories; segmentation turns each
into one unit whose keep probability is pooled over all its tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from edge_lingua.errors import InvalidArgumentError

CATEGORIES = (
    "url", "email", "path", "uuid", "hash", "ip", "datetime", "version", "number",
    "identifier", "mention", "hashtag",
)
# kept whatever the budget unless the caller says otherwise: cutting or dropping these
# silently changes what a prompt refers to
DEFAULT_PROTECT = ("url", "email", "path", "uuid", "hash", "ip")

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_H4 = r"[0-9A-Fa-f]{1,4}"
_CURRENCY = r"[$€£¥₹]"
_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
          r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_TRAIL = ".,;:!?)]}'\"”’>"  # sentence punctuation that ends an atom rather than belonging to it
# U.S., e.g., i.e.: single letters between periods; the last period belongs to the abbreviation
_ABBREVIATION = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")

# Order matters: the first pattern that matches at a position wins.
_PATTERNS: tuple[tuple[str, str], ...] = (
    ("url", r"(?:[A-Za-z][A-Za-z0-9+.\-]*://|www\.|mailto:)[^\s<>\"'`]+"),
    ("email", r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+"),
    ("uuid", r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"),
    ("ip", rf"{_OCTET}(?:\.{_OCTET}){{3}}(?::\d{{1,5}})?(?:/\d{{1,2}})?(?![\w.])"
           rf"|(?:{_H4}:){{7}}{_H4}|(?:{_H4}:){{1,6}}:(?:{_H4}(?::{_H4})*)?|::(?:{_H4}(?::{_H4})*)"),
    ("path", r"[A-Za-z]:\\[^\s\"'<>|*?]*|\\\\[^\s\"'<>|*?\\]+\\[^\s\"'<>|*?]*"
             r"|(?<![\w.])(?:~|\.{1,2})?/[\w.@%+~\-]+(?:/[\w.@%+~\-]*)*"
             # relative paths need a letter and either two slashes or a file extension, so
             # "48/2" and "and/or" stay what they are
             r"|(?=[\w.@%+~/\-]*[A-Za-z])(?:[\w@%+\-]+(?:/[\w.@%+~\-]+){2,}/?"
             r"|[\w@%+\-]+/[\w@%+~\-]*(?:\.[A-Za-z]\w*)+)"),
    ("datetime", r"\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
                 r"(?:Z|[+-]\d{2}:?\d{2})?)?|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}(?![\w.])"
                 r"|\d{1,2}:\d{2}(?::\d{2})?(?:[ap]\.?m\.?)?(?![\w:])"
                 # written dates: July 20, 1969; Jul. 20 1969; 20 July 1969
                 rf"|(?<![A-Za-z]){_MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}(?![\w])"
                 rf"|\d{{1,2}}(?:st|nd|rd|th)? {_MONTH} \d{{4}}(?![\w])"),
    ("hash", r"(?:0x[0-9A-Fa-f]+|(?=[0-9A-Fa-f]*\d)(?=[0-9A-Fa-f]*[A-Fa-f])[0-9A-Fa-f]{7,})"
             r"(?![\w])"),
    ("version", r"[vV]\d+(?:\.\d+)+(?:[\-+][0-9A-Za-z.\-]+)?|\d+\.\d+\.\d+(?:[\-+][0-9A-Za-z.]+)?"
                r"(?![\w.])|[A-Za-z][A-Za-z0-9]*-\d+(?:\.\d+)+"),
    ("number", rf"(?<![\w.,])[+\-−]?{_CURRENCY}?(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?"
               rf"(?:[eE][+\-]?\d+)?%?(?![\w])|{_CURRENCY}\d+(?:\.\d+)?"),
    ("mention", r"(?<![\w@])@[A-Za-z_][\w.\-]*\w"),
    ("hashtag", r"(?<![\w#&])#[A-Za-z_][\w\-]*"),
    ("identifier", r"_*[A-Za-z0-9]+(?:(?:_+|\.|-|::)[A-Za-z0-9]+)+_*(?:\(\))?"
                   r"|_+[A-Za-z0-9]+_*"
                   r"|[a-z]+[0-9]*(?:[A-Z][a-z0-9]*)+|[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+"),
)
_ATOM = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _PATTERNS))


@dataclass(frozen=True)
class Atom:
    """One atom: ``text[start:end]`` of a category in :data:`CATEGORIES` (or ``"custom"``)."""

    start: int
    end: int
    category: str


@dataclass(frozen=True)
class Protection:
    """What is kept whatever the budget: atom categories and the caller's patterns."""

    categories: frozenset[str]
    patterns: tuple[re.Pattern[str], ...]

    def covers(self, category: str) -> bool:
        return category in self.categories


def make_protection(protect: str | Iterable[str | re.Pattern[str]] | None) -> Protection:
    """Validate ``protect``: category names, ``"default"``, ``"all"``, ``"none"`` or regexes.

    ``None`` means :data:`DEFAULT_PROTECT`. Strings that are not category names are compiled
    as regular expressions; a pattern that does not compile is an ``InvalidArgumentError``.
    """
    if protect is None or protect == "default":
        return Protection(frozenset(DEFAULT_PROTECT), ())
    if isinstance(protect, (str, re.Pattern)):
        protect = [protect]
    categories: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for item in protect:
        if isinstance(item, re.Pattern):
            patterns.append(item)
        elif not isinstance(item, str):
            raise InvalidArgumentError(
                f"protect takes category names or regular expressions, got {item!r}")
        elif item in CATEGORIES:
            categories.add(item)
        elif item == "all":
            categories.update(CATEGORIES)
        elif item == "default":
            categories.update(DEFAULT_PROTECT)
        elif item == "none":
            continue
        else:
            try:
                patterns.append(re.compile(item))
            except re.error as exc:
                raise InvalidArgumentError(
                    f"protect pattern {item!r} is not a valid regular expression: {exc}"
                ) from None
    return Protection(frozenset(categories), tuple(patterns))


def _trim(text: str, start: int, end: int) -> int:
    """End of an atom without the sentence punctuation that follows it (balanced brackets stay)."""
    while end > start + 1 and text[end - 1] in _TRAIL:
        closing = text[end - 1]
        opening = {")": "(", "]": "[", "}": "{", ">": "<"}.get(closing)
        piece = text[start:end]
        if opening is not None and piece.count(opening) >= piece.count(closing):
            break
        end -= 1
    return end


# A whitespace-delimited chunk that no pattern can match any part of: one ASCII word with at
# most its first letter capital (no digit, separator, camelCase or hex-with-digit), wrapped in
# at most a quote or bracket and followed by at most one sentence mark. Only datetimes span
# whitespace, and they start with a digit or a month name, so a month name (with at most a
# period) is scanned too: a match never starts or ends in a chunk that is left out.
_PLAIN = r"[\"'(\[‘“]?[A-Za-z][a-z]*[)\]\"'’”]?[.,;:!?]?[)\]\"'’”]?"
_NOT_PLAIN_RUN = re.compile(rf"(?<!\S)(?:{_MONTH}\.?(?!\S)|(?!{_PLAIN}(?!\S))\S+)")


def find_atoms(text: str, extra: Sequence[re.Pattern[str]] = ()) -> list[Atom]:
    """Non-overlapping atoms of ``text`` in order; ``extra`` patterns (category ``custom``) win.

    No atom contains a line break.
    """
    return scan_atoms(text, _candidate_spans(text), extra)


def _candidate_spans(text: str) -> list[tuple[int, int]]:
    """Spans of consecutive chunks that are not plain words (only whitespace between them)."""
    spans: list[tuple[int, int]] = []
    for match in _NOT_PLAIN_RUN.finditer(text):
        start, end = match.span()
        if spans and text[spans[-1][1]:start].isspace():
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def scan_atoms(text: str, spans: Sequence[tuple[int, int]],
               extra: Sequence[re.Pattern[str]] = ()) -> list[Atom]:
    """:func:`find_atoms` with the built-in patterns tried only inside ``spans`` (sorted,
    separated by whitespace); ``[(0, len(text))]`` scans everything."""
    atoms: list[Atom] = []
    taken: list[tuple[int, int]] = []
    for pattern in extra:
        for match in pattern.finditer(text):
            start, end = match.span()
            if end > start and "\n" not in match.group():
                atoms.append(Atom(start, end, "custom"))
                taken.append((start, end))
    taken.sort()
    position = 0
    for low, high in spans:
        for match in _ATOM.finditer(text, low, high):
            start, end = match.span()
            category = match.lastgroup or "identifier"
            if category in ("url", "path", "email", "identifier", "version", "mention",
                            "hashtag"):
                end = _trim(text, start, end)
            if (category == "identifier" and text[end:end + 1] == "."
                    and _ABBREVIATION.fullmatch(text, start, end)):
                end += 1
            if start < position or _overlaps(taken, start, end):
                continue
            atoms.append(Atom(start, end, category))
            position = end
    atoms.sort(key=lambda a: a.start)
    return atoms


def _overlaps(sorted_spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(s < end and start < e for s, e in sorted_spans)


def categorize(text: str) -> str | None:
    """The category of ``text`` if the whole string is one atom, else ``None``."""
    atoms = find_atoms(text)
    if len(atoms) == 1 and atoms[0].start == 0 and atoms[0].end == len(text):
        return atoms[0].category
    return None
