"""Faithful compression: atoms whole or absent, rate 1.0 the identity, structure kept."""

from __future__ import annotations

import ast
import json
import re
import sysconfig
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge_lingua.atoms import DEFAULT_PROTECT, find_atoms, make_protection, scan_atoms
from edge_lingua.compressor import Compressor, LowCoverageWarning
from edge_lingua.errors import InvalidArgumentError
from edge_lingua.segmentation import join_units, split_units
from edge_lingua.structure import detect, layout
from tests.warning_site import points_at

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
RATES = st.sampled_from([0.2, 0.33, 0.5, 0.8, 1.0])


@pytest.fixture(scope="module")
def tiny(tiny_bert_bundle: Path) -> Compressor:
    return Compressor.load(tiny_bert_bundle, threads=1)


@pytest.fixture(scope="module")
def shipped() -> Compressor:
    return Compressor.load(threads=2)


# --- atoms ----------------------------------------------------------------------------------
HEX = st.text("0123456789abcdef", min_size=8, max_size=8)
NAME = st.text("abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8)
ATOMS = st.one_of(
    st.builds(lambda h, p: f"https://{h}.example.com/{p}/index.html?id=7", NAME, NAME),
    st.builds(lambda u, d: f"{u}.x+tag@{d}.co.uk", NAME, NAME),
    st.builds(lambda a, b: f"/var/{a}/{b}.log", NAME, NAME),
    st.builds(lambda a, b: f"C:\\Users\\{a}\\{b}.txt", NAME, NAME),
    st.uuids().map(str),
    st.ip_addresses(v=4).map(str),
    st.builds(lambda n, c: f"{c}{n:,.2f}", st.integers(1000, 10**7),
              st.sampled_from(["$", "", "€"])),
    st.builds(lambda n: f"-{n}.5%", st.integers(1, 99)),
    st.dates().map(lambda d: d.isoformat()),
    st.builds(lambda a, b, c: f"v{a}.{b}.{c}", st.integers(0, 20), st.integers(0, 20),
              st.integers(0, 99)),
    st.builds(lambda a, b: f"{a}_{b}", NAME, NAME),
    st.builds(lambda a, b: f"{a}{b.capitalize()}", NAME, NAME),
    st.builds(lambda a, b: f"{a}.{b}.call", NAME, NAME),
    st.builds(lambda a, b: f"{a}-{b}-{a}", NAME, NAME),
    st.builds(lambda a: f"INC-{a}", st.integers(100, 99999)),
    NAME.map(lambda a: f"@{a}"),
    NAME.map(lambda a: f"#{a}"),
    HEX.map(lambda h: f"9f{h}e1"),
    st.dates(min_value=date(1000, 1, 1)).map(lambda d: f"{d:%B} {d.day}, {d.year}"),
    st.dates(min_value=date(1000, 1, 1)).map(lambda d: f"{d.day} {d:%b} {d.year}"),
    st.sampled_from(["U.S.", "e.g.", "i.e.", "U.S.A.", "a.m."]),
)
PROSE = st.lists(st.sampled_from(["the", "report", "says", "that", "we", "shipped", "it", "to",
                                  "and", "then", "checked", "again", "."]), min_size=1, max_size=6)


def _text_with_atoms(pieces: list[tuple[list[str], str]]) -> tuple[str, list[tuple[int, int]]]:
    text, spans = "", []
    for prose, atom in pieces:
        text += " ".join(prose) + " "
        spans.append((len(text), len(text) + len(atom)))
        text += atom + " "
    return text + "end.", spans


@SETTINGS
@given(pieces=st.lists(st.tuples(PROSE, ATOMS), min_size=1, max_size=6), rate=RATES)
def test_every_atom_is_one_unit_kept_whole_or_dropped_whole(
    tiny: Compressor, pieces: list[tuple[list[str], str]], rate: float
) -> None:
    text, spans = _text_with_atoms(pieces)
    result = tiny.compress(text, rate=rate, protect="none", structure="text")
    units = split_units(text, make_protection("none"))
    unit_spans = [tuple(s) for s in units.spans.tolist()]
    kept = dict(zip(unit_spans, result.kept_mask[0], strict=True))
    for start, end in spans:
        assert (start, end) in kept, f"{text[start:end]!r} was cut into pieces"
    # rebuilding from the mask gives the output: a kept atom is in it whole
    for start, end in spans:
        if kept[(start, end)]:
            assert text[start:end] in result.compressed_prompt


@SETTINGS
@given(pieces=st.lists(st.tuples(PROSE, ATOMS), min_size=1, max_size=6),
       rate=st.sampled_from([0.2, 0.33, 0.5]))
def test_protected_atoms_survive_any_budget(
    tiny: Compressor, pieces: list[tuple[list[str], str]], rate: float
) -> None:
    text, spans = _text_with_atoms(pieces)
    result = tiny.compress(text, rate=rate, protect="all", structure="text")
    for start, end in spans:
        assert text[start:end] in result.compressed_prompt


def test_atoms_of_the_issue_are_found_whole() -> None:
    text = ("Paid $80,000 and 1,042.75 (-3.5%) from 192.168.14.201 at 2024-03-05T10:22:01Z; see "
            "https://example.com/a?b=1, john.doe+news@example.co.uk, /var/log/syslog, "
            "C:\\Users\\bob\\f.txt, 123e4567-e89b-12d3-a456-426614174000, v1.2.3, Apache-2.0, "
            "line_items, INC-20931, camelCase, os.path.join, MAX_SIZE, @alice, #release.")
    found = {text[a.start:a.end]: a.category for a in find_atoms(text)}
    assert found == {
        "$80,000": "number", "1,042.75": "number", "-3.5%": "number",
        "192.168.14.201": "ip", "2024-03-05T10:22:01Z": "datetime",
        "https://example.com/a?b=1": "url", "john.doe+news@example.co.uk": "email",
        "/var/log/syslog": "path", "C:\\Users\\bob\\f.txt": "path",
        "123e4567-e89b-12d3-a456-426614174000": "uuid", "v1.2.3": "version",
        "Apache-2.0": "version", "line_items": "identifier", "INC-20931": "identifier",
        "camelCase": "identifier", "os.path.join": "identifier", "MAX_SIZE": "identifier",
        "@alice": "mention", "#release": "hashtag",
    }


def test_a_written_date_is_one_atom() -> None:
    """July 20, 1969 is kept or dropped whole, never cut to "20 1969"; a month name alone, or
    inside a word, is no date."""
    text = ("Landed July 20, 1969 and 20 July 1969; Jul. 4 1776, May 5th, 2020. "
            "In May, Mayday 5, 2020")
    found = [text[a.start:a.end] for a in find_atoms(text) if a.category == "datetime"]
    assert found == ["July 20, 1969", "20 July 1969", "Jul. 4 1776", "May 5th, 2020"]


def test_an_abbreviation_keeps_its_last_period() -> None:
    """U.S., e.g., a.m.: the last period is the abbreviation's own, so a kept abbreviation is
    never cut to "U.S"; a dotted name's sentence period is not."""
    text = "In the U.S. and U.S.A, e.g., at 9 a.m. call os.path. Done."
    found = [text[a.start:a.end] for a in find_atoms(text) if a.category == "identifier"]
    assert found == ["U.S.", "U.S.A", "e.g.", "a.m.", "os.path"]


# characters that start, join or end atoms, plus plain letters, capitals and whitespace
ATOM_ALPHABET = "aAbBcCeEfFxXzZ0123456789 \n\t.,;:!?/\\@#_-+~%$€()[]\"'’:T"


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(
    st.text(ATOM_ALPHABET, max_size=60),
    st.lists(st.one_of(ATOMS, PROSE.map(" ".join), st.text(ATOM_ALPHABET, max_size=12)),
             max_size=8)
    .map(" ".join),
))
def test_atoms_skip_plain_words_without_missing_any(text: str) -> None:
    """find_atoms tries the patterns only around chunks that are not plain words: it finds
    exactly what a scan of the whole text finds."""
    assert find_atoms(text) == scan_atoms(text, [(0, len(text))])


def test_atoms_skip_plain_words_on_real_code_and_prose() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = [p.read_text(encoding="utf-8", errors="replace")
             for p in sorted(stdlib.glob("[a-h]*.py"))[:60]]
    texts.append(json.dumps({"url": "https://x.io/a?b=1", "id": "123e4567-e89b-12d3-a456-4266141"
                             "74000", "at": "2024-03-05 10:22", "ip": "10.0.0.1", "n": [1.5, -2]}))
    texts.append(" ".join(["The 2024-03-05 10:22 run", "(see www.example.com)", "Hello.",
                           "cafe::1 and fe80::1", "NASA's e.g. i.e. U.S. mr.Smith"]))
    for text in texts:
        assert find_atoms(text) == scan_atoms(text, [(0, len(text))])


def test_protect_takes_categories_and_regexes() -> None:
    assert make_protection(None).categories == frozenset(DEFAULT_PROTECT)
    custom = make_protection(["number", r"TICKET\d+"])
    assert custom.categories == {"number"} and custom.patterns[0].pattern == r"TICKET\d+"
    units = split_units("see TICKET42 now", custom)
    assert units.words() == ["see", "TICKET42", "now"] and units.protected.tolist() == [0, 1, 0]
    with pytest.raises(InvalidArgumentError, match="not a valid regular expression"):
        make_protection(["(unclosed"])
    with pytest.raises(InvalidArgumentError):
        make_protection([3])  # type: ignore[list-item]


ESCAPES = st.sampled_from(["\\n", "\\t", "\\\\", '\\"', "\\u000f", "\\u00e9", "\\U0001F600",
                           "\\x41", "\\/"])
ESCAPED_TEXT = st.lists(st.one_of(ESCAPES, st.text("aAfz09 _-.:[]{}\"", max_size=4)),
                        max_size=12).map("".join)


@SETTINGS
@given(text=ESCAPED_TEXT)
@example(text="\\u000fA")  # an identifier atom ("fA") starts inside the escape
@example(text="\\\\n")  # an escaped backslash, then a plain "n"
def test_no_escape_is_cut_between_units(text: str) -> None:
    units = split_units(text)
    ends = set(units.spans[:, 1].tolist())
    for match in re.finditer(r"\\(?:u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|x[0-9A-Fa-f]{2}|.)", text,
                             re.DOTALL):
        inside = set(range(match.start() + 1, match.end()))
        assert not inside & ends, f"{match.group()!r} of {text!r} is cut: {units.words()}"
    assert split_units("\\\\n").words() == ["\\\\", "n"]


def test_a_glued_escape_takes_the_kind_and_protection_of_what_follows() -> None:
    glued = split_units("see \\TCK12 end", make_protection([r"TCK\d+"]))
    assert glued.words() == ["see", "\\TCK12", "end"]
    assert glued.kinds == ("word", "custom", "word") and glued.protected.tolist() == [0, 1, 0]
    # an escape starting where a unit ends does not join that unit
    assert split_units("ab\\ncd").words() == ["ab", "\\ncd"]
    # nor does it join units of two structure regions
    apart = split_units("\\n", bounds=[(0, 1), (1, 2)])
    assert apart.words() == ["\\", "n"] and apart.kinds == ("symbol", "word")
    # the units after a glued escape keep their own regions
    later = split_units("ab \\ncd", bounds=[(0, 3), (3, 7)])
    assert later.words() == ["ab", "\\ncd"] and later.region.tolist() == [0, 1]


def test_protected_atoms_are_outside_the_budget_forced_words_inside(tiny: Compressor) -> None:
    text = "alpha beta gamma delta https://example.com/a/b/c epsilon zeta eta theta iota kappa."
    result = tiny.compress(text, rate=0.3, structure="text")
    assert "https://example.com/a/b/c" in result.compressed_prompt
    plain = tiny.compress(text, rate=0.3, structure="text", protect="none")
    assert plain.compressed_tokens <= 0.3 * plain.origin_tokens
    phrase_tokens = tiny._count("gamma delta")
    budget = phrase_tokens + 4
    forced = tiny.compress(text, target_token=budget, structure="text", protect="none",
                           force_tokens=["gamma delta"])
    assert "gamma delta" in forced.compressed_prompt
    assert forced.compressed_tokens <= budget  # forced words count inside the budget
    alone = tiny.compress(text, target_token=1, structure="text", protect="none",
                          force_tokens=["gamma delta"])
    assert alone.compressed_prompt == "gamma delta"  # more than the budget: kept, nothing else


# --- whitespace -----------------------------------------------------------------------------
@SETTINGS
@given(text=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=300)
       .filter(lambda t: t.strip()))
def test_rate_one_is_the_identity_on_any_text(tiny: Compressor, text: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowCoverageWarning)
        assert tiny.compress(text, rate=1.0).compressed_prompt == text
        assert tiny.compress(text, rate=1.0, structure="text").compressed_prompt == text


def test_lines_keep_indentation_and_dropped_lines_vanish() -> None:
    text = "intro line here\n\n    indented words stay\n  gone entirely\n\n\nlast line\n"
    units = split_units(text)
    words = units.words()
    keep = np.array([w not in ("gone", "entirely", "here", "stay") for w in words])
    assert join_units(text, units.spans, keep) == (
        "intro line\n\n    indented words\n\nlast line\n")
    keep = np.zeros(len(words), dtype=bool)
    keep[[0, len(words) - 2, len(words) - 1]] = True  # "intro" ... "last line"
    assert join_units(text, units.spans, keep) == "intro\n\nlast line\n"  # one break left
    keep[0] = False  # a dropped first line leaves no paragraph break in front
    assert join_units(text, units.spans, keep) == "last line\n"
    crlf = "a b\r\nc d\r\n"
    units = split_units(crlf)
    assert join_units(crlf, units.spans, np.array([1, 0, 1, 1], bool)) == "a\r\nc d\r\n"


def test_dropped_words_never_glue_neighbours_and_cjk_gets_no_spaces() -> None:
    text = "foo(bar) 北京是中国的首都"
    units = split_units(text)
    assert units.words() == ["foo", "(", "bar", ")", "北京是", "中国的", "首都"]
    keep = np.array([1, 0, 1, 0, 1, 0, 1], bool)
    assert join_units(text, units.spans, keep) == "foo bar 北京是首都"


# --- structure ------------------------------------------------------------------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False,
                                                                         allow_infinity=False)
    | st.text(max_size=60),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


def _skeleton(value: object) -> object:
    if isinstance(value, dict):
        return {k: _skeleton(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_skeleton(v) for v in value]
    return "<str>" if isinstance(value, str) else value


@SETTINGS
@example(obj={"": ["\x0fA"]}, rate=0.75)
@example(obj={"<llmlingua": "</llmlingua> <llmlingua, rate=0.5>"}, rate=0.5)
@given(obj=st.dictionaries(st.text(max_size=10), JSON_VALUES, min_size=1, max_size=5),
       rate=st.floats(0.2, 1.0))
def test_compress_json_is_valid_json_with_the_same_skeleton(
    tiny: Compressor, obj: dict, rate: float
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowCoverageWarning)
        result = tiny.compress_json(obj, rate=rate)
    data = json.loads(result.compressed_prompt)
    assert _skeleton(data) == _skeleton(obj)


def test_compress_json_follows_the_per_key_config(shipped: Compressor) -> None:
    obj = {"id": "keep this id text exactly as it is", "body": "a long and wordy description "
           "of the incident that the on-call engineer wrote at night after fixing it",
           "note": "the the the", "n": 3, "flag": True, "nested": {"body": "more wordy text "
           "written by someone who likes many words"}}
    config = {"id": {"compress": False}, "body": {"rate": 0.3},
              "note": {"rate": 0.2, "pair_remove": True}}
    result = shipped.compress_json(obj, rate=0.5, json_config=config)
    data = json.loads(result.compressed_prompt)
    assert data["id"] == obj["id"] and data["n"] == 3 and data["flag"] is True
    assert len(data["body"].split()) < 0.5 * len(obj["body"].split())
    assert set(data["nested"]) == {"body"}
    with pytest.raises(InvalidArgumentError, match="unknown options"):
        shipped.compress_json(obj, json_config={"id": {"ratio": 0.5}})


def test_compress_json_takes_the_budget_and_the_protection_it_is_given(
    shipped: Compressor,
) -> None:
    story = ("The on-call engineer wrote a long and wordy description of the incident at "
             "night, after fixing the broken deployment of ticket ORDER-1234 for the team. ")
    obj = {"body": story * 3, "n": 7}
    loose = shipped.compress_json(obj, rate=0.8)
    tight = shipped.compress_json(obj, rate=0.3)
    assert tight.compressed_tokens < 0.6 * loose.compressed_tokens  # keys and braces stay
    small = shipped.compress_json(obj, target_token=30)
    large = shipped.compress_json(obj, target_token=80)
    assert small.compressed_tokens < large.compressed_tokens < loose.compressed_tokens
    assert json.loads(small.compressed_prompt)["n"] == 7
    pinned = shipped.compress_json(obj, rate=0.3, protect=[r"ORDER-\d+"])
    assert json.loads(pinned.compressed_prompt)["body"].count("ORDER-1234") == 3
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(InvalidArgumentError, match=r"^compress_json: the object is nested too "):
        shipped.compress_json(deep)


@pytest.mark.parametrize("rate", [0.3, 0.5])
def test_compress_json_keeps_what_compress_keeps_in_json_mode(
    tiny: Compressor, rate: float
) -> None:
    """compress_json adds no option of its own: no digits forced, no repeats dropped."""
    obj = {"report": "Zoë paid 1,250 euros on 3 May 2024 for the the repairs of the old roof, "
           "and 480 euros in June for the gutters that the storm had broken 7 times.",
           "steps": ["first call the the insurer", "then send them the 12 photos"], "n": 3}
    text = json.dumps(obj, ensure_ascii=False)
    plain = tiny.compress(text, rate=rate, structure="json", force_tokens=["the"])
    result = tiny.compress_json(obj, rate=rate, force_tokens=["the"])
    assert result.compressed_prompt == plain.compressed_prompt


def test_compress_json_returns_non_ascii_text_as_is(tiny: Compressor) -> None:
    obj = {"name": "Zoë Łukasz 東京", "tags": ["café", "naïve"]}
    result = tiny.compress_json(obj, rate=1.0)
    assert result.compressed_prompt == json.dumps(obj, ensure_ascii=False)
    assert result.compressed_contexts == [result.compressed_prompt]


def test_compress_json_reports_the_prompt_left_after_removing_empty_pairs(
    tiny: Compressor,
) -> None:
    obj = {"gone": "", "kept": "a value that stays", "other": "", "n": 1}
    config = {key: {"compress": False, "pair_remove": True} for key in ("gone", "kept")}
    result = tiny.compress_json(obj, rate=0.5, json_config=config)
    expected = {"kept": "a value that stays", "other": "", "n": 1}
    assert json.loads(result.compressed_prompt) == expected
    assert result.compressed_prompt == json.dumps(expected, ensure_ascii=False)
    assert result.compressed_contexts == [result.compressed_prompt]
    assert result.compressed_tokens == tiny.compress(result.compressed_prompt,
                                                     rate=1.0).compressed_tokens


@pytest.mark.parametrize("bad", [{1, 2}, {"x": object()}, {"x": float("nan")}])
def test_compress_json_rejects_what_json_cannot_hold(tiny: Compressor, bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="JSON-serializable"):
        tiny.compress_json(bad)


CODE_LINE = st.sampled_from(["x = 1", "    return x", "if x:", "for i in range(3):",
                             "        print(i)", "# a comment with words", "", "y = [1, 2]"])


@SETTINGS
@given(before=PROSE, code=st.lists(CODE_LINE, min_size=1, max_size=8), after=PROSE,
       rate=st.sampled_from([0.2, 0.5]))
def test_fenced_code_is_verbatim(tiny: Compressor, before: list[str], code: list[str],
                                 after: list[str], rate: float) -> None:
    block = "```python\n" + "\n".join(code) + "\n```\n"
    text = " ".join(before) + "\n\n" + block + "\n" + " ".join(after) + "\n"
    result = tiny.compress(text, rate=rate)
    assert result.structures == ["markdown"]
    assert block in result.compressed_prompt


CELL = st.lists(st.sampled_from(["alpha", "beta", "1.5", "the", "value", "of", "x"]),
                min_size=1, max_size=4).map(" ".join)


@SETTINGS
@given(rows=st.lists(st.lists(CELL, min_size=3, max_size=3), min_size=1, max_size=6),
       rate=st.sampled_from([0.2, 0.33, 0.5]))
def test_markdown_tables_keep_their_columns(tiny: Compressor, rows: list[list[str]],
                                            rate: float) -> None:
    table = ["| a | b | c |", "|---|---|---|", *("| " + " | ".join(r) + " |" for r in rows)]
    text = "Some text before the table.\n\n" + "\n".join(table) + "\n"
    result = tiny.compress(text, rate=rate)
    out_rows = [line for line in result.compressed_prompt.splitlines() if "|" in line]
    assert len(out_rows) == len(table)
    assert all(row.count("|") == 4 for row in out_rows)
    assert out_rows[1] == "|---|---|---|"


def test_markdown_keeps_markers_and_link_targets(shipped: Compressor) -> None:
    text = ("# Release notes for the new version\n\n"
            "- the installer now checks the disk space before it starts copying files\n"
            "- read [the full migration guide](https://example.com/guide) before upgrading\n"
            "1. first step of the long procedure that everyone always forgets\n")
    out = shipped.compress(text, rate=0.3).compressed_prompt
    assert "](https://example.com/guide)" in out
    for line in out.splitlines():
        assert not line or re.match(r"(# |- |1\. )\S", line), line


def _stdlib_sources() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    names = ["textwrap.py", "json/decoder.py", "bisect.py", "colorsys.py", "shlex.py"]
    return [root / n for n in names if (root / n).is_file()]


def test_cpython_sources_are_verbatim_in_code_mode(shipped: Compressor) -> None:
    sources = _stdlib_sources()
    assert len(sources) >= 4
    for path in sources:
        code = path.read_text(encoding="utf-8")
        result = shipped.compress(code, rate=0.33)
        assert result.structures == ["code"], path
        assert result.compressed_prompt == code


def _without_docstrings(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                and isinstance(first.value.value, str):
            first.value.value = ""
    return ast.dump(tree)


def test_cpython_comment_compression_touches_only_comments_and_docstrings(
    shipped: Compressor,
) -> None:
    for path in _stdlib_sources():
        code = path.read_text(encoding="utf-8")
        result = shipped.compress(code, rate=0.33, structure="code", compress_code_comments=True)
        assert result.compressed_tokens < 0.95 * result.origin_tokens, path
        assert _without_docstrings(result.compressed_prompt) == _without_docstrings(code), path


def test_qmsum_turns_keep_their_speaker_labels(shipped: Compressor, shared_data: Path) -> None:
    meeting = json.loads(sorted((shared_data / "qmsum" / "val").glob("*.json"))[0].read_text())
    turns = [t for t in meeting["meeting_transcripts"] if t["content"].strip()][:120]
    text = "\n".join(f"{t['speaker']}: {t['content']}" for t in turns)
    speakers = {t["speaker"] for t in turns}
    for rate in (0.33, 0.2):
        result = shipped.compress(text, rate=rate)
        assert result.structures == ["chat"]
        lines = result.compressed_prompt.splitlines()
        assert len(lines) > 10
        for line in lines:
            label, _, rest = line.partition(": ")
            assert label in speakers and rest.strip(), line


def test_llmlingua_tags_set_rates_and_are_removed(shipped: Compressor) -> None:
    keep = "this sentence must stay exactly as the user wrote it"
    wordy = ("and this one is a long and wordy passage that can lose most of its many words "
             "without anyone missing them at all")
    text = (f"Intro words. <llmlingua, compress=False>{keep}</llmlingua> "
            f"<llmlingua, rate=0.2>{wordy}</llmlingua>")
    out = shipped.compress(text, rate=1.0).compressed_prompt
    assert keep in out and "llmlingua" not in out
    assert out.startswith("Intro words.")
    assert len(out.split()) < len(text.split()) - 10


@pytest.mark.parametrize("bad", [
    "a <llmlingua, rate=0.3>b", "a </llmlingua>", "<llmlingua, rate=x>a</llmlingua>",
    "<llmlingua, speed=3>a</llmlingua>", "<llmlingua, rate=1.5>a</llmlingua>",
    "<llmlingua><llmlingua>a</llmlingua></llmlingua>",
])
def test_malformed_tags_are_typed_errors(tiny: Compressor, bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match="llmlingua"):
        tiny.compress(bad, rate=0.5)


def test_bad_structure_and_json_text_are_typed_errors(tiny: Compressor) -> None:
    with pytest.raises(InvalidArgumentError, match="structure must be one of"):
        tiny.compress("some text", structure="yaml")
    with pytest.raises(InvalidArgumentError, match="not JSON"):
        tiny.compress("not { json", structure="json")


def test_detection() -> None:
    assert detect('{"a": [1, 2]}') == "json"
    assert detect("plain prose that says nothing special.\nAnd a second line.") == "text"
    assert detect("Janet sells 16 eggs.\n#### 18\nShe has 3.\n#### 3\nAnd 4.\n#### 4") == "text"
    assert detect("John: hi there\nMary: hello John\nJohn: how are you") == "chat"
    assert detect("| a | b |\n|---|---|\n| 1 | 2 |") == "markdown"
    regions = layout('{"k": "v w"}', "json")
    assert [r.role for r in regions] == ["fixed", "compress", "fixed"]


# --- force tokens ---------------------------------------------------------------------------
def test_multi_word_force_tokens_match_as_phrases(shipped: Compressor, shared_data: Path) -> None:
    problems = [json.loads(line) for line in
                (shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()[:20]]
    for problem in problems:
        text = f"Question: {problem['question']}\nThe answer is {problem['answer'][-6:]}"
        result = shipped.compress(text, rate=0.33, force_tokens=["The answer is", "Question:"])
        assert "The answer is" in result.compressed_prompt
        assert result.compressed_prompt.startswith("Question:")


# --- text the model cannot read -------------------------------------------------------------
def _xquad_paragraphs(shared_data: Path, language: str, n: int) -> list[str]:
    data = json.loads((shared_data / "xquad" / f"xquad.{language}.json").read_text())["data"]
    return [p["context"] for article in data[36:] for p in article["paragraphs"]][:n]


def test_chinese_comes_out_as_joined_text(shipped: Compressor, shared_data: Path) -> None:
    for paragraph in _xquad_paragraphs(shared_data, "zh", 6):
        with pytest.warns(LowCoverageWarning):
            result = shipped.compress(paragraph, rate=0.5)
        assert result.coverage < 0.8 and result.warnings
        out = result.compressed_prompt
        for pair in re.findall(r"[\u4e00-\u9fff] [\u4e00-\u9fff]", out):
            assert pair in paragraph, f"space inserted in {pair!r}"  # XQuAD zh has a few
        units = [w for w, k in zip(result.words[0], result.kept_mask[0], strict=True) if k]
        cjk_units = [u for u in units if re.match(r"[\u4e00-\u9fff]", u)]
        assert sum(len(u) for u in cjk_units) / max(len(cjk_units), 1) > 1.5  # not characters


def test_the_low_coverage_warning_points_at_the_caller_and_says_how_much_was_read(
        shipped: Compressor, shared_data: Path) -> None:
    paragraph = _xquad_paragraphs(shared_data, "zh", 1)[0]
    with pytest.warns(LowCoverageWarning) as caught:
        result = shipped.compress(paragraph, rate=0.5)
    (warning,) = caught
    assert points_at(warning.filename, __file__)  # the line that called compress, not the library's
    note = str(warning.message)
    assert note == (f"only {result.coverage:.0%} of the text's tokens are known to this model; "
                    "units it cannot read are kept verbatim first, within the budget")
    assert result.warnings == [note]


def test_arabic_coverage_is_reported(shipped: Compressor, shared_data: Path) -> None:
    paragraph = _xquad_paragraphs(shared_data, "ar", 1)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowCoverageWarning)
        result = shipped.compress(paragraph, rate=0.5)
    assert 0.0 < result.coverage <= 1.0
    assert result.compressed_tokens <= 0.5 * result.origin_tokens + 1


def test_unreadable_units_are_kept_first_within_the_budget(tiny: Compressor) -> None:
    text = "ℵℶℷ ℸ " * 30 + "alpha beta gamma delta epsilon zeta eta theta"
    with pytest.warns(LowCoverageWarning):
        result = tiny.compress(text, rate=0.3, structure="text")
    scores = tiny.score(text)
    unreadable = ~scores.word_readable
    assert unreadable.any()
    kept = np.asarray(result.kept_mask[0])
    # no readable unit is kept while an unreadable one that would fit is dropped
    if (kept & ~unreadable).any():
        assert kept[unreadable].all()


def test_cli_structure_and_protect_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    from edge_lingua.cli import main

    prompt = tmp_path / "p.json"
    prompt.write_text('{"note": "a long and rather wordy note about the weather", "n": 1}')
    assert main(["compress", str(prompt), "--rate", "0.3"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 1
    bad = tmp_path / "bad.txt"
    bad.write_text("not json at all")
    assert main(["compress", str(bad), "--structure", "json"]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert main(["compress", str(bad), "--protect", "(oops"]) == 2
    assert "regular expression" in capsys.readouterr().err


@pytest.mark.parametrize(("text", "units"), [
    # Japanese: a phrase starts at kanji or katakana after another script; hiragana (particles,
    # inflections) stays with what it follows
    ("私は東京タワーに行きました", ["私は", "東京", "タワーに", "行きました"]),
    ("ひらがなカタカナ漢字ひらがな", ["ひらがな", "カタカナ", "漢字ひらがな"]),
    ("食べるカメラ", ["食べる", "カメラ"]),
    ("の東京タワー", ["の", "東京", "タワー"]),  # a phrase can start at the second character
    ("東京都庁舎へ行った", ["東京都庁", "舎へ", "行った"]),  # kanji run: at most four
    ("東ゟ", ["東ゟ"]),  # the last hiragana (yori) is hiragana
    # Chinese: after a phrase-ending character, or at most four characters
    ("北京是中国的首都。上海很大，人很多", ["北京是", "中国的", "首都", "。", "上海很", "大", "，",
                                       "人很", "多"]),
    ("我们今天下午去公园散步", ["我们", "今天下午", "去公园散", "步"]),
    # a mark (here a variation selector) stays with the character it follows
    ("一二三四\U000e0100五", ["一二三四\U000e0100", "五"]),
])
def test_cjk_runs_are_cut_into_phrases(text: str, units: list[str]) -> None:
    assert split_units(text).words() == units
