"""Every table of figures in the docs comes from the committed results it names.

Each table in ``docs/*.md`` and the README carries a marker on the line above its header:

* ``<!-- results: speed.json quality.json -->``: a table of measurements. Every number in its
  rows must be, at the table's own precision, a number of those files under ``docs/results/``
  (of a ``.txt`` result, a number in its text), or a percentage of a recorded fraction, or
  seconds as milliseconds or the reverse, or millions.
  Derived figures (ratios, differences) must be recorded too: a number computed by hand from
  two results would match some pair of numbers of a large file by chance.
* ``<!-- not a measurement -->``: options, file layouts, placeholders, commands.
* ``<!-- unrecorded: why -->``: figures that no benchmark wrote (training-run readouts); they are
  named in docs/TESTING.md as such.

A new table with no marker fails, so a figure cannot enter the docs unrecorded.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from tests.test_recorded_claims import _NUMBER, NAMES, _leaves, _matches

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
BUNDLES = ROOT / "edge_lingua" / "models"
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
MARKER = re.compile(
    r"<!--\s*(results:\s*(?P<files>[^>]*?)|not a measurement|unrecorded:[^>]*?)\s*-->")
RULE = re.compile(r"^\|[\s:|-]+\|$")


def tables(path: Path) -> list[tuple[int, str | None, list[str]]]:
    """(line of the header, its marker or None, body rows) of each table of a markdown file."""
    lines = path.read_text(encoding="utf-8").split("\n")
    found = []
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and RULE.match(lines[i + 1].strip()):
            end = i + 2
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            before = [line for line in lines[:i] if line.strip()]
            marker = before[-1].strip() if before and MARKER.fullmatch(before[-1].strip()) else None
            found.append((i + 1, marker, lines[i + 2 : end]))
            i = end
        else:
            i += 1
    return found


def cell_numbers(rows: list[str]) -> list[tuple[str, Decimal, int, bool]]:
    """(as written, value, decimals, is a percentage) of each number in table rows, the first
    column (which names the row: a method, a length, a setting) left out."""
    numbers = []
    for row in rows:
        row = "|".join(row.split("|")[2:])
        for name in NAMES:
            row = row.replace(name, " ")
        row = re.sub(r"`[^`]*`|\]\([^)]*\)", " ", row)  # code spans and link targets
        row = re.sub(r"\b\d{4}-\d\d-\d\d\b", " ", row)  # dates
        row = re.sub(r"(\d)-(\d[\d.,]*%)", r"\1% - \2", row)  # 94-100% -> 94% - 100%
        for match in _NUMBER.finditer(row):
            whole, fraction = match.groups()
            value = Decimal(whole.replace(",", "") + (fraction or ""))
            numbers.append((match.group(0), value, len(fraction or ".") - 1,
                            match.group(0).endswith("%")))
    return numbers


def result_numbers(name: str) -> list[Decimal]:
    """Every number of a result: a JSON file's values, or a text report's numbers."""
    path = (BUNDLES if name.startswith("models/") else RESULTS) / name.removeprefix("models/")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".txt":
        return [Decimal(n) for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", text)]
    return _leaves(json.loads(text))


def unrecorded(marker: str, rows: list[str]) -> list[str]:
    """The figures of a ``results:`` table that its files do not hold."""
    files = MARKER.fullmatch(marker).group("files").split()  # type: ignore[union-attr]
    recorded = [n for name in files for n in result_numbers(name)]
    missing = []
    for text, value, decimals, percent in cell_numbers(rows):
        if not (_matches(value, decimals, percent, recorded) or (
                not percent and _matches(value, decimals, False, [n * 1000 for n in recorded]))):
            missing.append(text)  # neither as recorded nor seconds quoted as milliseconds
    return missing


ALL_TABLES = [(path, line, marker, rows) for path in DOCS for line, marker, rows in tables(path)]


def test_every_table_says_whether_it_holds_measurements() -> None:
    assert len(ALL_TABLES) > 40
    unmarked = [f"{path.name}:{line}" for path, line, marker, _ in ALL_TABLES if marker is None]
    assert not unmarked, ("tables with no <!-- results: FILE.json -->, <!-- not a measurement "
                          f"--> or <!-- unrecorded: why --> above them: {unmarked}")


@pytest.mark.parametrize(
    ("path", "line", "marker", "rows"),
    [t for t in ALL_TABLES if t[2] and "results:" in t[2]],
    ids=lambda v: v.name if isinstance(v, Path) else (str(v) if isinstance(v, int) else ""),
)
def test_a_table_of_measurements_holds_only_recorded_figures(
        path: Path, line: int, marker: str, rows: list[str]) -> None:
    assert cell_numbers(rows), f"{path.name}:{line} is marked as measurements but has no figures"
    missing = unrecorded(marker, rows)
    assert not missing, f"{path.name}:{line}: figures not in {marker}: {missing}"


def test_the_table_check_catches_a_figure_with_no_result() -> None:
    _, _, marker, rows = next(t for t in ALL_TABLES if t[2] and "speed" in t[2])
    assert not unrecorded(marker, rows)
    made_up = "| 2,048 | 123.457 ms | 98.765% |"
    assert unrecorded(marker, [*rows, made_up]) == ["123.457", "98.765%"]
