"""Structure modes: which parts of a text are compressed, kept verbatim, or removed.

A *layout* cuts a text into regions. ``fixed`` regions (JSON keys and punctuation, code,
table pipes, link targets) are kept whatever the budget and outside it; ``label`` regions
(speaker labels, heading and list markers) are kept, outside the budget, exactly when
something else on their line is kept; ``compress`` regions are compressed, at the call's
rate or their own (a ``<llmlingua, rate=...>`` tag, a JSON key's config); ``markup`` regions
(the LLMLingua tags themselves) are always removed. Units never cross a region boundary.
"""

from __future__ import annotations

import io
import json
import math
import re
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge_lingua.errors import InvalidArgumentError

STRUCTURES = ("auto", "text", "json", "markdown", "code", "chat")
DEFAULT_STRUCTURE = "auto"
FIXED, COMPRESS, MARKUP, LABEL = "fixed", "compress", "markup", "label"


@dataclass(frozen=True)
class Region:
    """``text[start:end]``: its role, and its own rate (``None``: the call's budget)."""

    start: int
    end: int
    role: str
    rate: float | None = None


@dataclass(frozen=True)
class KeyConfig:
    """LLMLingua's per-key JSON config: ``rate``, ``compress``, ``value_type``, ``pair_remove``."""

    rate: float | None = None
    compress: bool = True
    value_type: str = "str"
    pair_remove: bool = False


JSON_VALUE_TYPES = ("str", "int", "float", "bool", "list", "dict", "null")


def make_json_config(config: Mapping[str, Any] | None) -> dict[str, KeyConfig]:
    """Validate a ``json_config`` mapping of key name to LLMLingua's per-key options."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise InvalidArgumentError("json_config must map key names to option dicts")
    result = {}
    for key, options in config.items():
        if not isinstance(options, Mapping):
            raise InvalidArgumentError(f"json_config[{key!r}] must be a dict of options")
        unknown = set(options) - {"rate", "compress", "value_type", "pair_remove"}
        if unknown:
            raise InvalidArgumentError(
                f"json_config[{key!r}] has unknown options {sorted(unknown)}; allowed: rate, "
                "compress, value_type, pair_remove")
        rate = options.get("rate")
        if rate is not None:
            rate = check_rate(rate, f"json_config[{key!r}]['rate']")
        compress = options.get("compress", True)
        pair_remove = options.get("pair_remove", False)
        if not isinstance(compress, bool) or not isinstance(pair_remove, bool):
            raise InvalidArgumentError(
                f"json_config[{key!r}]: compress and pair_remove must be true or false")
        value_type = options.get("value_type", "str")
        if value_type not in JSON_VALUE_TYPES:
            raise InvalidArgumentError(
                f"json_config[{key!r}]['value_type'] must be one of {JSON_VALUE_TYPES}")
        result[str(key)] = KeyConfig(rate, compress, value_type, pair_remove)
    return result


def check_rate(value: object, name: str) -> float:
    """A rate in (0, 1], or an ``InvalidArgumentError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"{name} must be a number in (0, 1], got {value!r}")
    rate = float(value)
    if not math.isfinite(rate) or not 0.0 < rate <= 1.0:
        raise InvalidArgumentError(f"{name} must be in (0, 1], got {value!r}")
    return rate


# --- detection ------------------------------------------------------------------------------
_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.M | re.S)
# headings with words (not GSM8K's "#### 18"), list items, quotes, table rows
_MD_SIGNAL = re.compile(
    r"^(?:#{1,6} [^\W\d]|[ \t]*(?:[-*+]|\d+[.)]) \S|[ \t]*\|.*\|[ \t]*$|> )", re.M)
# "John:", "PhD A:", "Hon. Mary Ng (Minister of Small Business):" at the start of a line
_SPEAKER = re.compile(r"^[ \t]*([A-Z][^:\n]{0,119}?):[ \t]+\S", re.M)
_CODE_LINE = re.compile(
    r"^(?:\s*(?:def|class|import|from|return|if|elif|else|for|while|try|except|with|"
    r"function|const|let|var|public|private|static|#include|package|func|fn)\b.*|.*[;{}]\s*"
    r"|\s*@\w+.*)$")


def detect(text: str) -> str:
    """The structure of ``text`` for ``structure="auto"``."""
    stripped = text.strip()
    if stripped[:1] in "{[":
        try:
            if isinstance(json.loads(stripped), (dict, list)):
                return "json"
        except ValueError:
            pass
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return "text"
    if (_FENCE.search(text) or _MD_TABLE_SEP.search(text)
            or len(_MD_SIGNAL.findall(text)) >= max(3, len(lines) // 5)):
        return "markdown"
    speakers = _SPEAKER.findall(text)
    repeated = len(speakers) > len(set(speakers))
    if repeated and len(speakers) >= 2 and len(speakers) >= len(lines) // 2:
        return "chat"
    code_lines = sum(1 for line in lines if _CODE_LINE.match(line))
    indented = sum(1 for line in lines if line.startswith(("    ", "\t")))
    if len(lines) >= 3 and code_lines + indented >= 0.6 * len(lines) and code_lines >= 2:
        return "code"
    return "text"


# --- layouts --------------------------------------------------------------------------------
_TAG = re.compile(r"<llmlingua\s*(?P<attrs>(?:,\s*[^<>]*?)?)\s*>|</llmlingua\s*>")
_TAG_ATTR = re.compile(r"\s*(rate|compress)\s*=\s*([^,\s]+)\s*")


def layout(
    text: str,
    structure: str = DEFAULT_STRUCTURE,
    *,
    compress_code_comments: bool = False,
    json_config: Mapping[str, KeyConfig] | None = None,
    tags: bool = True,
) -> list[Region]:
    """Regions covering ``text`` in order, for a structure mode (``auto`` detects it).

    LLMLingua's tags are honoured in every mode, unless ``tags`` is False (text that is
    data, such as the serialised strings of :meth:`Compressor.compress_json`).
    """
    if structure not in STRUCTURES:
        raise InvalidArgumentError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    regions: list[Region] = []
    spans = _tag_regions(text) if tags else [(0, len(text), COMPRESS, None)]
    for start, end, role, rate in spans:
        if role != COMPRESS:
            regions.append(Region(start, end, role, rate))
            continue
        piece = text[start:end]
        mode = detect(piece) if structure == "auto" else structure
        for region in _layout_of(piece, mode, compress_code_comments, json_config or {}):
            regions.append(Region(region.start + start, region.end + start, region.role,
                                  region.rate if region.rate is not None else rate))
    return [r for r in regions if r.end > r.start]


def _tag_regions(text: str) -> list[tuple[int, int, str, float | None]]:
    """Split on ``<llmlingua, ...>...</llmlingua>``; a malformed tag is an error."""
    if "llmlingua" not in text:
        return [(0, len(text), COMPRESS, None)]
    out: list[tuple[int, int, str, float | None]] = []
    position = 0
    open_tag: tuple[int, str, float | None] | None = None
    for match in _TAG.finditer(text):
        is_close = match.group().startswith("</")
        if is_close:
            if open_tag is None:
                raise InvalidArgumentError(
                    f"</llmlingua> at character {match.start()} closes no tag")
            _, role, rate = open_tag
            out.append((position, match.start(), role, rate))
            open_tag = None
        else:
            if open_tag is not None:
                raise InvalidArgumentError(
                    f"<llmlingua> at character {match.start()} opens inside another tag")
            out.append((position, match.start(), COMPRESS, None))
            open_tag = (match.start(), *_tag_options(match.group("attrs"), match.start()))
        out.append((match.start(), match.end(), MARKUP, None))
        position = match.end()
    if open_tag is not None:
        raise InvalidArgumentError(f"<llmlingua> at character {open_tag[0]} is never closed")
    if re.search(r"</?llmlingua", text[position:]) or any(
        re.search(r"</?llmlingua", text[s:e]) for s, e, role, _ in out if role != MARKUP
    ):
        raise InvalidArgumentError("malformed <llmlingua ...> tag")
    out.append((position, len(text), COMPRESS, None))
    return out


def _tag_options(attrs: str, where: int) -> tuple[str, float | None]:
    role, rate = COMPRESS, None
    for part in [p for p in attrs.split(",") if p.strip()]:
        match = _TAG_ATTR.fullmatch(part)
        if match is None:
            raise InvalidArgumentError(f"<llmlingua> at character {where}: cannot read {part!r}")
        name, value = match.groups()
        if name == "rate":
            try:
                number = float(value)
            except ValueError:
                raise InvalidArgumentError(
                    f"<llmlingua> at character {where}: rate={value} is not a number") from None
            rate = check_rate(number, f"<llmlingua> at character {where}: rate")
        elif value.lower() in ("false", "0", "no"):
            role = FIXED
        elif value.lower() not in ("true", "1", "yes"):
            raise InvalidArgumentError(f"<llmlingua> at character {where}: compress={value}?")
    return role, rate


def _layout_of(
    text: str, mode: str, code_comments: bool, json_config: Mapping[str, KeyConfig]
) -> list[Region]:
    if mode == "json":
        return _json_layout(text, json_config)
    if mode == "code":
        return _code_layout(text, code_comments)
    if mode == "markdown":
        return _markdown_layout(text, code_comments)
    if mode == "chat":
        return _speaker_layout(text)
    return [Region(0, len(text), COMPRESS)]


def _from_fixed(text: str, fixed: list[tuple[int, int]], role: str = FIXED) -> list[Region]:
    """Regions from fixed spans (of ``role``); the gaps are compressed."""
    regions: list[Region] = []
    position = 0
    for start, end in sorted(fixed):
        if start < position:
            start = position
        if start > position:
            regions.append(Region(position, start, COMPRESS))
        if end > start:
            regions.append(Region(start, end, role))
        position = max(position, end)
    if position < len(text):
        regions.append(Region(position, len(text), COMPRESS))
    return regions


def _speaker_layout(text: str) -> list[Region]:
    """Speaker labels (``John:``) are labels of their turn's line; the turns compress."""
    return _from_fixed(text, [(m.start(1), m.end(1) + 1) for m in _SPEAKER.finditer(text)],
                       LABEL)


_JSON_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')


def _json_layout(text: str, config: Mapping[str, KeyConfig]) -> list[Region]:
    """Only the contents of string values are compressed (segmentation never separates a
    backslash from the character after it, so escapes stay whole)."""
    regions: list[Region] = []
    position = 0
    stack: list[str | None] = []
    key: str | None = None
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == '"':
            match = _JSON_STRING.match(text, i)
            if match is None:
                raise InvalidArgumentError("structure='json' but the text is not valid JSON")
            end = match.end()
            after = text[end:].lstrip()
            if after.startswith(":"):
                key = json.loads(match.group())
                if stack:
                    stack[-1] = key
            else:
                owner = next((k for k in reversed(stack) if k is not None), None)
                options = config.get(owner, KeyConfig()) if owner is not None else KeyConfig()
                if options.compress and options.value_type == "str" and end - i > 2:
                    regions.append(Region(position, i + 1, FIXED))
                    regions.append(Region(i + 1, end - 1, COMPRESS, options.rate))
                    position = end - 1
            i = end
            continue
        if char in "{[":
            stack.append(None if char == "{" else (stack[-1] if stack else None))
        elif char in "}]" and stack:
            stack.pop()
        i += 1
    regions.append(Region(position, n, FIXED))
    return [r for r in regions if r.end > r.start]


def _code_layout(text: str, comments: bool) -> list[Region]:
    """Code is verbatim; with ``comments``, only comments and docstrings are compressed."""
    if not comments:
        return [Region(0, len(text), FIXED)]
    spans = _python_comment_spans(text)
    if spans is None:
        spans = [m.span(1) for m in re.finditer(r"(?://|#)[ \t]*([^\n]*)|/\*(.*?)\*/", text, re.S)
                 if m.group(1) is not None] + [
            m.span(2) for m in re.finditer(r"/\*(.*?)\*/", text, re.S)]
    spans = sorted(s for s in spans if s[1] > s[0])
    regions: list[Region] = []
    position = 0
    for start, end in spans:
        if start < position:
            continue
        regions.append(Region(position, start, FIXED))
        regions.append(Region(start, end, COMPRESS))
        position = end
    regions.append(Region(position, len(text), FIXED))
    return [r for r in regions if r.end > r.start]


def _python_comment_spans(text: str) -> list[tuple[int, int]] | None:
    """Comment texts and docstring bodies of Python source, or ``None`` if it is not Python."""
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))

    def offset(row: int, col: int) -> int:
        return line_starts[row - 1] + col

    spans: list[tuple[int, int]] = []
    previous = tokenize.NEWLINE
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            start, end = offset(*token.start), offset(*token.end)
            if token.type == tokenize.COMMENT:
                spans.append((start + 1, end))
            elif token.type == tokenize.STRING and previous in (
                tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.NL
            ):
                quote = re.match(r"[rRbBuUfF]*('''|\"\"\"|'|\")", token.string)
                if quote:
                    width = quote.end()
                    spans.append((start + width, end - len(quote.group(1))))
            if token.type not in (tokenize.COMMENT, tokenize.NL):
                previous = token.type
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    return spans


_MD_LINE_MARK = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|(?:[-*+]|\d+[.)])[ \t]+(?:\[[ xX]\][ \t]+)?)", re.M)
_MD_TABLE_SEP = re.compile(r"^[ \t]*\|?(?:[ \t]*:?-{3,}:?[ \t]*\|)+[ \t]*(?::?-{3,}:?)?[ \t]*$",
                           re.M)
_MD_RULE = re.compile(r"^[ \t]*(?:[-*_][ \t]*){3,}$", re.M)
_MD_INLINE = re.compile(
    r"`[^`\n]+`|!?\[|\]\([^)\s]*(?:\s+\"[^\"]*\")?\)|\]\[[^\]]*\]|\]|\||\*\*|__|<[^>\n]+>")


def _markdown_layout(text: str, code_comments: bool) -> list[Region]:
    """Markers, table pipes and separator rows, link targets and code stay; prose compresses."""
    code = [fence.span() for fence in _FENCE.finditer(text)]

    def outside(start: int) -> bool:
        return not any(s <= start < e for s, e in code)

    fixed = [m.span() for pattern in (_MD_TABLE_SEP, _MD_RULE, _MD_INLINE)
             for m in pattern.finditer(text) if outside(m.start())]
    labels = [m.span() for m in _MD_LINE_MARK.finditer(text) if outside(m.start())]
    regions: list[Region] = []
    for region in _from_fixed(text, _merge([*fixed, *code])):
        inner = [c for c in code if c[0] <= region.start and region.end <= c[1]]
        if region.role == FIXED and inner and code_comments:
            start, end = inner[0]
            body_start = text.index("\n", start) + 1
            body_end = text.rindex("\n", start, end) + 1
            regions.append(Region(region.start, body_start, FIXED))
            regions.extend(Region(r.start + body_start, r.end + body_start, r.role)
                           for r in _code_layout(text[body_start:body_end], True))
            regions.append(Region(body_end, region.end, FIXED))
        elif region.role == COMPRESS:
            inside = [(s - region.start, e - region.start) for s, e in labels
                      if region.start <= s and e <= region.end]
            piece = text[region.start:region.end]
            regions.extend(Region(r.start + region.start, r.end + region.start, r.role)
                           for r in _from_fixed(piece, inside, LABEL))
        else:
            regions.append(region)
    return [r for r in regions if r.end > r.start]


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
