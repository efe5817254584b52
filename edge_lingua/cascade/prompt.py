"""Turn chat messages into the request that goes up: compress the marked parts, redact.

Messages are OpenAI chat messages. The caller marks what may be compressed, either a
whole message (``{"role": "user", "content": "...", "compress": True}``) or a text part
of a content list (``{"type": "text", "text": "...", "compress": True, "pins": [...]}``,
see :func:`compressible`). Inside a marked text, fenced code blocks, inline code and
pinned spans are never compressed; unmarked text is sent as written. All marked pieces of
a request are compressed together in one compressor call, so ``rate`` / ``target_token``
apply to them as a whole. The extension keys are removed before anything is sent.
Redaction runs first, over every string of the messages (pins included), so compression
never cuts a secret apart before the redactor sees it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tokenizers import Tokenizer

from edge_lingua.cascade.redaction import STRUCTURAL_KEYS, Redactor
from edge_lingua.errors import InvalidArgumentError
from edge_lingua.result import CompressionResult

COMPRESS_KEY = "compress"
PINS_KEY = "pins"
PART_SEPARATOR = "\n"

_CODE = (
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[^\n]*\n(?:.*?\n)?[ \t]*(?P=fence)[ \t]*$"  # fenced block
    r"|^[ \t]*(?:`{3,}|~{3,}).*\Z"  # an unclosed fence runs to the end
    r"|`[^`\n]+`"  # inline code
)


class PromptCompressor(Protocol):
    """What the cascade needs from a compressor (``edge_lingua.compressor.Compressor`` fits)."""

    def compress(
        self,
        context: str | list[str],
        *,
        rate: float | None = None,
        target_token: int | None = None,
        force_tokens: Iterable[str] = (),
    ) -> CompressionResult: ...


TokenCounter = Callable[[str], int]


def tokenizer_counter(tokenizer: str | Path | Tokenizer) -> TokenCounter:
    """Count tokens (no special tokens) with a ``tokenizer.json`` or a loaded Tokenizer."""
    if not isinstance(tokenizer, Tokenizer):
        path = Path(tokenizer)
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise InvalidArgumentError(f"cannot load tokenizer {path}: {exc}") from None
    loaded = tokenizer

    def count(text: str) -> int:
        return len(loaded.encode(text, add_special_tokens=False).ids) if text else 0

    return count


def compressible(text: str, pins: Sequence[str] = ()) -> dict[str, Any]:
    """A text content part the cascade may compress, except the ``pins`` spans."""
    return {"type": "text", "text": text, COMPRESS_KEY: True, PINS_KEY: list(pins)}


@dataclass(frozen=True)
class Piece:
    """A stretch of text and whether it may be compressed."""

    text: str
    compress: bool


def split_protected(text: str, pins: Sequence[str] = ()) -> list[Piece]:
    """Cut marked text into compressible pieces and protected ones (code, pins)."""
    pattern = _CODE
    literal = sorted({p for p in pins if p}, key=len, reverse=True)
    if literal:
        pattern = "|".join(re.escape(p) for p in literal) + "|" + pattern
    pieces: list[Piece] = []
    start = 0
    for match in re.finditer(pattern, text, flags=re.MULTILINE | re.DOTALL):
        if match.start() > start:
            pieces.append(Piece(text[start : match.start()], True))
        pieces.append(Piece(match.group(), False))
        start = match.end()
    if start < len(text):
        pieces.append(Piece(text[start:], True))
    return pieces


@dataclass(frozen=True)
class PreparedRequest:
    """The messages to send and what preparing them did."""

    messages: list[dict[str, Any]]
    original_tokens: int
    sent_tokens: int
    compress_s: float
    compression: CompressionResult | None
    redactions: dict[str, int] = field(default_factory=dict)

    @property
    def saved_tokens(self) -> int:
        return self.original_tokens - self.sent_tokens


def plain_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The messages as written, without the cascade's extension keys (e.g. for a local model)."""
    return [_rebuild(m, [[p.text for p in ps] for ps in _pieces(m)]) for m in _checked(messages)]


def prepare(
    messages: Sequence[Mapping[str, Any]],
    compressor: PromptCompressor | None,
    count: TokenCounter,
    *,
    rate: float | None = None,
    target_token: int | None = None,
    force_tokens: Iterable[str] = (),
    redactor: Redactor | None = None,
    ask_last_user: bool = False,
) -> PreparedRequest:
    """Redact ``messages``, then compress their marked pieces.

    With ``ask_last_user`` and a question-aware compressor, the (redacted) last user message
    is read as the question the other messages are compressed for; it is never compressed."""
    checked = _checked(messages)
    redactions: dict[str, int] = {}
    if redactor is not None:
        redacted, redaction = redactor.redact_json(checked, skip=STRUCTURAL_KEYS)
        checked, redactions = redacted, redaction.counts
    per_message = [_pieces(m) for m in checked]
    flat = [p for parts in per_message for pieces in parts for p in pieces]
    original_text = "".join(p.text for p in flat)
    todo = [p.text for p in flat if p.compress and p.text.strip()] if compressor else []
    result = None
    started = time.perf_counter()
    compressed = iter(())
    if todo:
        assert compressor is not None
        question = _last_user_text(checked) if ask_last_user else None
        asked = ({"question": question}
                 if question and getattr(compressor, "question_aware", False) else {})
        result = compressor.compress(
            todo, rate=rate, target_token=target_token, force_tokens=tuple(force_tokens), **asked
        )
        if len(result.compressed_contexts) != len(todo):
            raise InvalidArgumentError(
                f"the compressor returned {len(result.compressed_contexts)} contexts for "
                f"{len(todo)} inputs"
            )
        compressed = iter(result.compressed_contexts)
    compress_s = time.perf_counter() - started

    out: list[dict[str, Any]] = []
    sent_text: list[str] = []
    for message, parts in zip(checked, per_message, strict=True):
        texts = []
        for pieces in parts:
            chunks = []
            for piece in pieces:
                text = piece.text
                if compressor and piece.compress and text.strip():
                    text = _keep_edges(text, next(compressed))
                chunks.append(text)
            texts.append(chunks)
            sent_text.extend(chunks)
        out.append(_rebuild(message, texts))
    return PreparedRequest(
        messages=out,
        original_tokens=count(original_text),
        sent_tokens=count("".join(sent_text)),
        compress_s=compress_s,
        compression=result,
        redactions=redactions,
    )


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The text of the last user message (its text parts joined), if there is one."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            parts = [p.get("text") for p in content or () if isinstance(p, Mapping)]
            return "\n".join(t for t in parts if isinstance(t, str)) or None
    return None


def _checked(messages: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise InvalidArgumentError("messages must be a non-empty list of chat messages")
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise InvalidArgumentError(f"message {i} must be an object with a string 'role'")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise InvalidArgumentError(f"message {i} content must be a string or a list of parts")
    return list(messages)


def _pieces(message: Mapping[str, Any]) -> list[list[Piece]]:
    """One list of pieces per text part of the message (a string content is one part)."""
    content = message.get("content")
    whole = bool(message.get(COMPRESS_KEY, False))
    pins = list(message.get(PINS_KEY, ()))
    if content is None:
        return []
    if isinstance(content, str):
        return [split_protected(content, pins) if whole else [Piece(content, False)]]
    parts = []
    for part in content:
        if not isinstance(part, Mapping) or part.get("type") != "text":
            continue
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidArgumentError("a text content part needs a string 'text'")
        if part.get(COMPRESS_KEY, whole):
            parts.append(split_protected(text, [*pins, *part.get(PINS_KEY, ())]))
        else:
            parts.append([Piece(text, False)])
    return parts


def _rebuild(message: Mapping[str, Any], texts: list[list[str]]) -> dict[str, Any]:
    """The outgoing message: extension keys dropped, text parts replaced by ``texts``."""
    out = {k: v for k, v in message.items() if k not in (COMPRESS_KEY, PINS_KEY)}
    content = message.get("content")
    if content is None:
        return out
    if isinstance(content, str):
        out["content"] = "".join(texts[0])
        return out
    if all(isinstance(p, Mapping) and p.get("type") == "text" for p in content):
        out["content"] = PART_SEPARATOR.join("".join(chunks) for chunks in texts)
        return out
    replaced = iter(texts)
    new_parts = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") == "text":
            new_parts.append({"type": "text", "text": "".join(next(replaced))})
        else:
            new_parts.append(part)
    out["content"] = new_parts
    return out


def _keep_edges(original: str, compressed: str) -> str:
    """Put back the whitespace that surrounded a compressed piece (it joins it to code, pins)."""
    lead = original[: len(original) - len(original.lstrip())]
    trail = original[len(original.rstrip()) :]
    core = compressed.strip()
    if not core:
        return lead or trail
    return lead + core + trail
