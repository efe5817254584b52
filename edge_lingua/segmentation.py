"""The one segmentation layer: text to units, units to model tokens, windows, and back to text.

A *unit* is what selection keeps or drops whole:

- an atom (:mod:`edge_lingua.atoms`): a URL, path, number, identifier, ...;
- a word: a run of letters, digits and combining marks (``don't`` is one word);
- a CJK phrase: Chinese runs are cut after function characters (的, 是, 在, ...) and at
  four characters at most; Japanese runs are cut where the script changes into kanji or
  katakana, so particles and okurigana stay with their word;
- any other single non-space character (punctuation, symbols, emoji with their modifiers).

Units never contain whitespace-only text or a line break, and every non-space character of
the input belongs to exactly one unit, so any set of kept units rebuilds a text made of the
input's own characters (:func:`join_units`). Units come from the text alone; every scorer
(the token classifier, the perplexity methods) attaches its own tokens to them by character
offset (:func:`attach_tokens`).
"""

from __future__ import annotations

import itertools
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from tokenizers import Tokenizer

from edge_lingua.atoms import Protection, find_atoms, make_protection

WORD = "word"
CJK = "cjk"
SYMBOL = "symbol"

_CJK_CLASS = (
    "\u3005\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0002fa1f"
)
_HAN = re.compile("[\u3005\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_CJK = re.compile(f"[{_CJK_CLASS}]")
_KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
# Chinese characters that end a phrase: particles, copulas, prepositions, conjunctions
_ZH_PHRASE_END = frozenset(
    "的了是在和与及或也都就而之于为把被从对向以将由并但又还很所其该这那个们地得着过")
MAX_CJK_UNIT = 4
_ASCII_DIGITS = frozenset("0123456789")


@cache
def _mark_class() -> str:
    """Combining marks, joiners and variation selectors (continue the unit before them)."""
    ranges: list[tuple[int, int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code))[0] == "M" or code in (0x200C, 0x200D):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1] = (ranges[-1][0], code)
            else:
                ranges.append((code, code))
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


@cache
def _unit_pattern() -> re.Pattern[str]:
    marks = _mark_class()
    word = rf"(?:[^\W{_CJK_CLASS}]|[{marks}])+(?:['’](?:[^\W{_CJK_CLASS}]|[{marks}])+)*"
    cjk = rf"[{_CJK_CLASS}][{_CJK_CLASS}{marks}]*"
    # a symbol takes its marks, and an emoji its zero-width-joined sequence
    symbol = rf"\S(?:\u200d\S|[{marks}])*"
    return re.compile(rf"(?P<word>{word})|(?P<cjk>{cjk})|(?P<symbol>{symbol})")


@dataclass(frozen=True)
class Units:
    """The units of one text: character spans and kinds (``word``, ``cjk``, ``symbol`` or an
    atom category), and which are protected atoms."""

    text: str
    spans: np.ndarray  # [n_units, 2] int64 start/end
    kinds: tuple[str, ...]
    protected: np.ndarray  # [n_units] bool
    region: np.ndarray  # [n_units] index of the region (``split_units``'s bounds) holding it

    @property
    def n_units(self) -> int:
        return int(self.spans.shape[0])

    def words(self) -> list[str]:
        return [self.text[s:e] for s, e in self.spans.tolist()]


def split_units(
    text: str,
    protection: Protection | None = None,
    bounds: Sequence[tuple[int, int]] | None = None,
) -> Units:
    """Cut ``text`` into units (see the module docstring).

    ``bounds``: sorted, non-overlapping character ranges segmented separately (structure
    regions), so that no unit crosses from one into another; default: the whole text.
    """
    protection = protection or make_protection(None)
    spans: list[tuple[int, int]] = []
    kinds: list[str] = []
    protected: list[bool] = []
    regions: list[int] = []
    pattern = _unit_pattern()
    for index, (low, high) in enumerate(bounds if bounds is not None else [(0, len(text))]):
        piece = text[low:high]
        position = 0
        for atom in [*find_atoms(piece, protection.patterns), None]:
            gap_end = len(piece) if atom is None else atom.start
            for match in pattern.finditer(piece, position, gap_end):
                kind = match.lastgroup or SYMBOL
                if kind == CJK:
                    for start, end in _cjk_phrases(match.group()):
                        spans.append((low + match.start() + start, low + match.start() + end))
                        kinds.append(CJK)
                        protected.append(False)
                        regions.append(index)
                else:
                    spans.append((low + match.start(), low + match.end()))
                    kinds.append(kind)
                    protected.append(False)
                    regions.append(index)
            if atom is None:
                break
            spans.append((low + atom.start, low + atom.end))
            kinds.append(atom.category)
            protected.append(atom.category == "custom" or protection.covers(atom.category))
            regions.append(index)
            position = atom.end
    if "\\" in text:
        _glue_escapes(text, spans, kinds, protected, regions)
    return Units(
        text=text,
        spans=np.asarray(spans, dtype=np.int64).reshape(-1, 2),
        kinds=tuple(kinds),
        protected=np.asarray(protected, dtype=bool),
        region=np.asarray(regions, dtype=np.int64),
    )


# a backslash escape as JSON, Python and C write it: \\uXXXX, \\UXXXXXXXX, \\xXX or one character
_ESCAPE = re.compile(r"\\(?:u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|x[0-9A-Fa-f]{2}|.)", re.DOTALL)


def _glue_escapes(text: str, spans: list[tuple[int, int]], kinds: list[str],
                  protected: list[bool], regions: list[int]) -> None:
    """Merge adjacent units (same region) that an escape such as ``\\n`` or ``\\u00e9`` runs
    across, so that no escape is cut in two."""
    escapes = [(m.start(), m.end()) for m in _ESCAPE.finditer(text)]
    index = escape = 0
    while index + 1 < len(spans):
        (start, end), (next_start, next_end) = spans[index], spans[index + 1]
        while escape < len(escapes) and escapes[escape][1] <= end:
            escape += 1
        crossing = escape < len(escapes) and escapes[escape][0] < end
        if crossing and next_start == end and regions[index] == regions[index + 1]:
            spans[index] = (start, next_end)
            if kinds[index] == SYMBOL:
                kinds[index] = kinds[index + 1]
            protected[index] = protected[index] or protected[index + 1]
            del spans[index + 1], kinds[index + 1], protected[index + 1], regions[index + 1]
        else:
            index += 1


def _script(char: str) -> str:
    if _KANA.match(char):
        return "hiragana" if "\u3040" <= char <= "\u309f" else "katakana"
    return "han" if _HAN.match(char) else "other"


def _cjk_phrases(run: str) -> list[tuple[int, int]]:
    """Phrases of one run of CJK characters, as (start, end) offsets into the run."""
    japanese = _KANA.search(run) is not None
    cuts = [0]
    for i in range(1, len(run)):
        previous, current = _script(run[i - 1]), _script(run[i])
        if current == "other":  # a mark or a repetition sign stays with what it follows
            continue
        if japanese:
            new = current in ("han", "katakana") and current != previous
            too_long = previous == current == "han" and i - cuts[-1] >= MAX_CJK_UNIT
        else:
            new = run[i - 1] in _ZH_PHRASE_END
            too_long = i - cuts[-1] >= MAX_CJK_UNIT and run[i] not in _ZH_PHRASE_END
        if new or too_long:
            cuts.append(i)
    cuts.append(len(run))
    return list(itertools.pairwise(cuts))


def attach_tokens(units: Units, offsets: np.ndarray) -> np.ndarray:
    """Unit index of every token: the unit holding the token's first non-space character
    (a token of whitespace only goes with the unit after it)."""
    n_units = units.n_units
    if offsets.shape[0] == 0 or n_units == 0:
        return np.zeros(offsets.shape[0], dtype=np.int64)
    text = units.text
    anchors = offsets[:, 0].copy()
    for i, (start, end) in enumerate(offsets.tolist()):
        if start < end and text[start].isspace():
            piece = text[start:end]
            stripped = len(piece) - len(piece.lstrip())
            anchors[i] = start + stripped if stripped < len(piece) else end
    token_unit = np.searchsorted(units.spans[:, 0], anchors, side="right") - 1
    np.clip(token_unit, 0, n_units - 1, out=token_unit)
    return token_unit


@dataclass(frozen=True)
class Segmented:
    """One context as units with the bundle tokenizer's tokens attached."""

    units: Units
    token_ids: np.ndarray  # [n_tokens] int64
    token_word: np.ndarray  # [n_tokens] unit index of each token (non-decreasing)
    token_offsets: np.ndarray  # [n_tokens, 2] character start/end
    token_readable: np.ndarray  # [n_tokens] bool: not the tokenizer's unknown token

    @property
    def text(self) -> str:
        return self.units.text

    @property
    def word_spans(self) -> np.ndarray:
        return self.units.spans

    @property
    def n_words(self) -> int:
        return self.units.n_units

    def words(self) -> list[str]:
        return self.units.words()


def unknown_token_id(tokenizer: Tokenizer) -> int | None:
    """The id of the tokenizer's unknown token (``[UNK]``), if it has one."""
    model = tokenizer.get_vocab()
    for name in ("[UNK]", "<unk>", "<UNK>"):
        if name in model:
            return int(model[name])
    return None


def segment(
    tokenizer: Tokenizer,
    text: str,
    protection: Protection | None = None,
    unk_id: int | None = None,
    bounds: Sequence[tuple[int, int]] | None = None,
) -> Segmented:
    """Cut ``text`` into units and tokenize it (no special tokens), attaching tokens to units."""
    units = split_units(text, protection, bounds)
    encoding = tokenizer.encode(text, add_special_tokens=False)
    ids = np.asarray(encoding.ids, dtype=np.int64)
    offsets = np.asarray(encoding.offsets, dtype=np.int64).reshape(-1, 2)
    readable = ids != unk_id if unk_id is not None else np.ones(ids.size, dtype=bool)
    return Segmented(units, ids, attach_tokens(units, offsets), offsets, readable)


def window_bounds(
    seg: Segmented, max_tokens: int, chunk_end_tokens: Iterable[str]
) -> list[tuple[int, int]]:
    """Cut a context's tokens into windows of at most ``max_tokens``.

    Windows end at a unit that is a chunk-end token (or, for ``"\\n"``, a unit followed by a
    line break) when one lies inside the window, else at the last whole unit that fits; only
    a single unit longer than a window is split inside.
    """
    n = int(seg.token_ids.size)
    if n <= max_tokens:
        return [(0, n)] if n else []
    ends = set(chunk_end_tokens)
    split_on_newline = "\n" in ends
    starts = np.flatnonzero(np.r_[True, seg.token_word[1:] != seg.token_word[:-1]])
    boundary = np.r_[starts[1:], n]  # token index after which a window may end
    unit_of_boundary = seg.token_word[boundary - 1]
    text = seg.text
    spans = seg.word_spans
    is_chunk_end = np.zeros(seg.n_words, dtype=bool)
    for w, (s, e) in enumerate(spans.tolist()):
        if text[s:e] in ends:
            is_chunk_end[w] = True
        elif split_on_newline:
            nxt = spans[w + 1, 0] if w + 1 < seg.n_words else len(text)
            is_chunk_end[w] = "\n" in text[e:nxt]
    chunk_cuts = boundary[is_chunk_end[unit_of_boundary]]
    windows: list[tuple[int, int]] = []
    start = 0
    for _ in range(n):  # each window holds a token at least: never more than n of them
        if n - start <= max_tokens:
            break
        limit = start + max_tokens
        cut = _last_in(chunk_cuts, start, limit)
        if cut is None:
            cut = _last_in(boundary, start, limit)
        if cut is None:
            cut = limit
        windows.append((start, cut))
        start = cut
    windows.append((start, n))
    return windows


def _last_in(sorted_cuts: np.ndarray, low: int, high: int) -> int | None:
    """Largest value v in ``sorted_cuts`` with low < v <= high."""
    idx = int(np.searchsorted(sorted_cuts, high, side="right")) - 1
    if idx >= 0 and sorted_cuts[idx] > low:
        return int(sorted_cuts[idx])
    return None


def _is_cjk(char: str) -> bool:
    return _CJK.match(char) is not None


def _separator(text: str, left_end: int, right_start: int) -> str:
    """What stands between two kept units that had dropped units between them: a space next
    to a digit (numbers never run together), nothing between CJK characters, else a space
    where the input had one or where two words would otherwise be glued into a new one."""
    left, right = text[left_end - 1], text[right_start]
    if left in _ASCII_DIGITS or right in _ASCII_DIGITS:
        return " "
    if _is_cjk(left) and _is_cjk(right):
        return ""
    if any(c.isspace() for c in text[left_end:right_start]):
        return " "
    if left.isalnum() and right.isalnum() and not (_is_cjk(left) or _is_cjk(right)):
        return " "
    return ""


def join_units(text: str, spans: np.ndarray, keep: np.ndarray) -> str:
    """Rebuild a text from its kept units, line by line.

    Everything kept is the identity. A line with every unit kept is copied as it is; a line
    with some kept keeps its indentation and line ending, its kept units separated as in the
    input where they were neighbours, else by a space (none between CJK characters); a line
    with none kept disappears with its line break. Blank lines stay, except that a dropped
    stretch never leaves two paragraph breaks in a row or a leading one.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.all():
        return text
    if not keep.any():
        return ""
    newlines = np.asarray([m.start() for m in re.finditer("\n", text)], dtype=np.int64)
    line_of_unit = np.searchsorted(newlines, spans[:, 0])
    n_lines = newlines.size + 1
    first_unit = np.searchsorted(line_of_unit, np.arange(n_lines + 1))
    pieces: list[str] = []
    dropped = False
    last_blank = True  # nothing emitted yet counts as a paragraph start
    for line in range(n_lines):
        start = 0 if line == 0 else int(newlines[line - 1]) + 1
        end = int(newlines[line]) + 1 if line < newlines.size else len(text)
        lo, hi = int(first_unit[line]), int(first_unit[line + 1])
        if lo == hi:  # blank line
            if dropped and last_blank:
                continue
            pieces.append(text[start:end])
            last_blank = True
            continue
        kept = np.flatnonzero(keep[lo:hi]) + lo
        if kept.size == 0:
            dropped = True
            continue
        if kept.size == hi - lo:
            pieces.append(text[start:end])
        else:
            pieces.append(text[start:int(spans[lo, 0])])  # indentation
            previous = -1
            for unit in kept.tolist():
                u_start, u_end = int(spans[unit, 0]), int(spans[unit, 1])
                if previous >= 0:
                    p_end = int(spans[previous, 1])
                    pieces.append(text[p_end:u_start] if unit == previous + 1
                                  else _separator(text, p_end, u_start))
                pieces.append(text[u_start:u_end])
                previous = unit
            pieces.append(_line_ending(text, start, end))
        last_blank = False
        dropped = False
    return "".join(pieces)


def _line_ending(text: str, start: int, end: int) -> str:
    """The line break ending ``text[start:end]``: ``\\n``, ``\\r\\n`` or none (last line)."""
    if not text.endswith("\n", start, end):
        return ""
    return "\r\n" if end - start >= 2 and text[end - 2] == "\r" else "\n"
