"""Prompts too large to hold whole: sections compressed one after another.

Units, tokens and the selection's arrays cost a few hundred bytes per input character while a
prompt is compressed. A plain-text prompt longer than :data:`SECTION_CHARS` is therefore cut
after line breaks into sections of at most that size; each section is compressed alone at the
call's rate (a ``target_token`` budget becomes the rate it asks of the whole prompt) and the
results are joined. Peak memory then depends on the section size, not on the prompt's, and
time grows linearly; the one difference is that each section's words are ranked among
themselves rather than against the whole prompt's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from edge_lingua.result import CompressionResult

# ~16k model tokens of English (32 windows of 512): far beyond any window, small enough that
# a section's units, tokens and selection arrays stay near 25 MB.
SECTION_CHARS = 1 << 16
# The structure mode cut into sections: regions of the other modes (JSON values, code blocks,
# markdown fences) and LLMLingua tags may span lines, so those prompts are compressed whole.
SECTIONED = "text"
_TAG = "<llmlingua"


def needs_sections(contexts: Sequence[str], modes: Sequence[str]) -> bool:
    """Whether a prompt is one plain-text context (no tags) longer than a section."""
    return (list(modes) == [SECTIONED] and len(contexts[0]) > SECTION_CHARS
            and _TAG not in contexts[0])


def section_bounds(text: str, max_chars: int | None = None) -> list[tuple[int, int]]:
    """Cut ``text`` into consecutive ranges of at most ``max_chars`` (default
    :data:`SECTION_CHARS`) characters.

    Each range ends after a line break when one lies in it, else after the last whitespace
    (units never hold whitespace, so no unit is cut), else at the limit (one word longer than
    a section).
    """
    max_chars = SECTION_CHARS if max_chars is None else max_chars
    bounds: list[tuple[int, int]] = []
    start = 0
    while len(text) - start > max_chars:
        limit = start + max_chars
        cut = text.rfind("\n", start, limit) + 1
        if cut <= start:
            cut = max(text.rfind(" ", start, limit), text.rfind("\t", start, limit)) + 1
        if cut <= start:
            cut = limit
        bounds.append((start, cut))
        start = cut
    bounds.append((start, len(text)))
    return bounds


class SectionMerger:
    """Joins the results of a prompt's consecutive sections as they come.

    Only what the joined result reports is kept: compressed text, counts, and each section's
    words and keep flags, with equal words sharing one string.
    """

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._words: list[str] = []
        self._kept: list[bool] = []
        self._strings: dict[str, str] = {}
        self._origin = self._compressed = 0
        self._readable = 0.0
        self._warnings: dict[str, None] = {}
        self._first: CompressionResult | None = None

    def add(self, result: CompressionResult) -> None:
        """Take in the next section's result."""
        self._first = self._first or replace(result, words=[], kept_mask=[])
        self._texts.append(result.compressed_prompt)
        strings = self._strings
        self._words.extend(strings.setdefault(w, w) for ws in result.words for w in ws)
        self._kept.extend(k for mask in result.kept_mask for k in mask)
        self._origin += result.origin_tokens
        self._compressed += result.compressed_tokens
        self._readable += result.coverage * result.origin_tokens
        self._warnings.update(dict.fromkeys(result.warnings))

    def result(self, elapsed_s: float) -> CompressionResult:
        """The prompt's result: the sections' texts joined, their counts summed."""
        if self._first is None:
            raise ValueError("no section was added")
        text = "".join(self._texts)
        return replace(
            self._first,
            compressed_prompt=text,
            compressed_contexts=[text],
            words=[self._words],
            kept_mask=[self._kept],
            origin_tokens=self._origin,
            compressed_tokens=self._compressed,
            elapsed_s=elapsed_s,
            coverage=self._readable / max(self._origin, 1),
            warnings=list(self._warnings),
        )
