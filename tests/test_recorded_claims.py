"""Every figure the README quotes comes from a committed result.

Results are the JSON files under ``docs/results/`` (each stamped with the command that wrote
it, the date and the CPU flags) and the shipped bundle's ``fidelity.json``. A number in the
README's measurement sections must equal, at the README's own precision, a number in one of
them (as a fraction, a percentage, or in thousandths or millions of the recorded unit).
"""

from __future__ import annotations

import json
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
BUNDLE = ROOT / "edge_lingua" / "models" / "default"
CHECKED_SECTIONS = ("## The shipped model", "## Measured")
# names that carry digits but are not measurements
NAMES = ("all-MiniLM-L6-v2", "Gemma 3", "270M", "llmlingua 0.2.2", "onnxruntime 1.32", "AVX-512",
         "AVX2", "H100", "INT8", "fp32", "GSM8K", "2-core")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:%|M\b)?")
_SCALES = (Decimal(1), Decimal("0.001"), Decimal("0.000001"))  # as is, ms as s, millions
_PERCENT = (Decimal(100),)  # a percentage is a recorded fraction


def _leaves(data: object) -> list[Decimal]:
    """Every number in a JSON document, dictionary keys that are numbers included."""
    found: list[Decimal] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if re.fullmatch(r"\d+(\.\d+)?", key):
                found.append(Decimal(key))
            found.extend(_leaves(value))
    elif isinstance(data, list):
        for value in data:
            found.extend(_leaves(value))
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        found.append(Decimal(repr(data)))
    return found


def recorded_numbers() -> list[Decimal]:
    files = [*sorted(RESULTS.glob("*.json")), BUNDLE / "fidelity.json"]
    numbers = [n for f in files for n in _leaves(json.loads(f.read_text(encoding="utf-8")))]
    # the bundle's size is a fact of the committed files themselves
    manifest = json.loads((BUNDLE / "manifest.json").read_text(encoding="utf-8"))
    size = sum((BUNDLE / name).stat().st_size for name in manifest["files"])
    return [*numbers, Decimal(size) / 2**20, Decimal(size) / 10**6]


def quoted_numbers(readme: str) -> list[tuple[str, Decimal, int, bool]]:
    """(as written, value, decimals, is a percentage) of each number in the README's
    measurement sections; in "94-100%" both ends are percentages."""
    quoted = []
    for heading in CHECKED_SECTIONS:
        start = readme.index(heading)
        end = readme.find("\n## ", start + 1)
        section = readme[start : end if end > 0 else len(readme)]
        section = re.sub(r"`[^`]*`|\]\([^)]*\)", " ", section)  # code spans and link targets
        section = re.sub(r"\s+", " ", section)
        section = re.sub(r"(\d)-(\d[\d.,]*%)", r"\1% - \2", section)  # 94-100% -> 94% - 100%
        for name in NAMES:
            section = section.replace(name, " ")
        for match in _NUMBER.finditer(section):
            whole, fraction = match.groups()
            percent = match.group(0).endswith("%")
            # "1.5M" is 1.5 millions: the 1e-6 scale of a recorded number matches it
            value = Decimal(whole.replace(",", "") + (fraction or ""))
            quoted.append((match.group(0), value, len(fraction or ".") - 1, percent))
    return quoted


def _matches(value: Decimal, decimals: int, percent: bool, recorded: list[Decimal]) -> bool:
    """Some recorded number, at some scale, rounds (half up) to ``value`` at ``decimals``."""
    unit = Decimal(1).scaleb(-decimals)
    return any((number * scale).quantize(unit, rounding=ROUND_HALF_UP) == value
               for number in recorded for scale in (_PERCENT if percent else _SCALES))


def test_every_result_says_how_when_and_where_it_was_recorded() -> None:
    files = sorted(RESULTS.glob("*.json"))
    assert files
    for path in files:
        recorded = json.loads(path.read_text(encoding="utf-8")).get("recorded")
        assert recorded, f"{path.name} does not say how it was recorded"
        assert recorded["command"].startswith("python "), path.name
        assert re.match(r"\d{4}-\d\d-\d\dT", recorded["date"]), path.name
        assert "cpu_flags" in recorded, path.name


def test_every_number_the_readme_quotes_is_in_a_committed_result() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    recorded = recorded_numbers()
    quoted = quoted_numbers(readme)
    assert len(quoted) > 30
    missing = [text for text, value, decimals, percent in quoted
               if not _matches(value, decimals, percent, recorded)]
    assert not missing, f"README figures with no committed result: {missing}"


@pytest.mark.parametrize("stale", ["compresses in 7,919 ms", "a peak RSS of 937 MB",
                                   "a 2,640-token prompt", "keeps 84.1% of the teacher's words"])
def test_the_check_catches_a_figure_with_no_result(stale: str) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    doctored = readme.replace("## Measured", f"## Measured\n\n{stale}.\n", 1)
    recorded = recorded_numbers()
    before = set(quoted_numbers(readme))
    (figure,) = [q for q in quoted_numbers(doctored) if q not in before]
    assert not _matches(*figure[1:], recorded), figure
