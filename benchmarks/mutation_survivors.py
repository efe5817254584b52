"""Surviving mutants by the kind of change they make, for docs/TESTING.md's survivor list.

    python -m benchmarks.mutation_survivors docs/results/mutation_full.json --out OUT

Reads the survivors a ``benchmarks.mutation_score`` result lists, finds each one's change in
mutmut's ``mutants/`` sources (the mutant function against its ``__mutmut_orig`` twin) and
sorts it by the form of the change into the classes docs/TESTING.md explains: changes a test
cannot observe on any machine this project runs on (equivalent), changes to what only a person
reads (known gaps: message wording, progress display), and the rest, left unclassified for a
person to read. The class comes from the text of the change alone, so it is a triage, not a
proof: every class is checked by reading a sample of its mutants. Survivors a person has read
(``benchmarks/mutation_reviews.json``: function, the change read, equivalent or known gap, and
why) take that verdict instead, and the result records the reason with each. A review names
the change, not mutmut's number for it, so it still holds when an edit elsewhere in the function
renumbers its mutants, and lapses when the line it read changes.

The result also lists every line of the mutated modules that carries ``# pragma: no mutate``
(mutmut makes no mutants of it), each with its reason: the parenthesised text after the pragma,
else the nearest ``# (...)`` comment at most ``NOTE_REACH`` lines above it.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, write_json
from benchmarks.mutation_score import verdict, verdicts
from tests.mutation_lines import mutant_twins
from tests.mutation_owners import module_of

_STRING = r"""(["'])(?:[^"'\\]|\\.)*\1"""
_MESSAGE_CALL = r"\b(raise \w+|\w*[Ee]rror\w*|warn|warning|info|debug|log|print)\("
_PROGRESS_CALL = r"\b(tqdm|set_postfix_str|step_bar)\("
_SQL = r"\b(SELECT|INSERT|UPDATE|DELETE|LIMIT|WHERE|ORDER BY|CREATE|ALTER|VALUES|BEGIN|PRAGMA)\b"
_STRING_LINE = r"""[rbfu]*(["']).*\1[,)]*"""  # a line of one string: a message's continuation
_LOG_LINE = r"(log|logger|logging)\.(debug|info|warning|error|exception)\("
_NUMBER = r"(?<![\w.])\d+(?:\.\d+)?\b"
_TIMING = r"timeout|_s\b|join\(|sleep\(|wait_for\(|deadline"
# names HTTP compares without case: header names (RFC 9110, 5.1) and media types (8.3.1)
_HTTP_NAMES = frozenset({
    "content-type", "content-length", "accept", "authorization", "x-api-key", "connection",
    "anthropic-version", "retry-after", "cache-control", "idempotency-key", "server",
    "application/json", "text/event-stream",
})
# where such a name is used as one: a line about headers or a media type, a key (["Name"],
# {"Name": ...}); not a comparison with a setting that merely shares the name
_HEADER_USE = r"""header|media_type|\[\s*["']|["']\s*:\s*\S"""
_CODECS = frozenset({"utf-8", "ascii", "latin-1"})  # Python's codec lookup ignores case


def _only_strings_differ(before: str, after: str) -> bool:
    """The lines differ only in string literals (one of them possibly replaced by None)."""
    def blank(line: str) -> str:
        return re.sub(rf"{_STRING}|\bNone\b", "''", line)

    return before != after and blank(before) == blank(after)


def _literal_pairs(before: str, after: str) -> list[tuple[str, str]]:
    """The string literals of two lines of the same shape, pairwise; [] if shapes differ."""
    found = [[m.group()[1:-1] for m in re.finditer(_STRING, line)] for line in (before, after)]
    if len(found[0]) != len(found[1]):
        return []
    return [(b, a) for b, a in zip(*found, strict=True) if b != a]


def _only_case_of(names: frozenset[str], before: str, after: str) -> bool:
    """The lines differ only in the case of string literals that are among ``names``."""
    pairs = _literal_pairs(before, after)
    return (_only_strings_differ(before, after) and bool(pairs)
            and all(b.lower() == a.lower() and b.lower() in names for b, a in pairs))


def _only_numbers_differ(before: str, after: str) -> bool:
    """The lines differ only in number literals (one of them possibly replaced by None)."""
    def blank(line: str) -> str:
        return re.sub(rf"{_NUMBER}|\bNone\b", "0", line)

    return before != after and blank(before) == blank(after)


def _only_false_becomes_none(before: str, after: str) -> bool:
    """The mutant writes ``None`` for one ``False`` literal and changes nothing else."""
    return any(before[:m.start()] + "None" + before[m.end():] == after
               for m in re.finditer(r"\bFalse\b", before))


def _without(keyword: str, line: str) -> str:
    """``line`` with its argument ``keyword=...`` (up to the next comma or bracket) removed."""
    return re.sub(rf",?\s*\b{keyword}=[^,)]*", "", line).replace("(, ", "(").replace(", )", ")")


def _only_argument_differs(keyword: str, before: str, after: str) -> bool:
    return (before != after and f"{keyword}=" in before
            and _without(keyword, before) == _without(keyword, after))


# (class, whether a change from the original line to the mutant's is of it); first match wins
RULES: list[tuple[str, Callable[[str, str], bool]]] = [
    ("equivalent: SQL keyword case (SQLite ignores it)",
     lambda b, a: _only_strings_differ(b, a) and b.lower() == a.lower()
     and re.search(_SQL, b) is not None),
    ("equivalent: zip's strict flag (lengths equal by construction)",
     lambda b, a: "zip(" in b and _only_argument_differs("strict", b, a)),
    ("equivalent: the UTF-8 codec spelled otherwise (this project runs on UTF-8 machines)",
     lambda b, a: re.search(r"encoding=[\"']utf-8[\"']", b) is not None
     and _only_argument_differs("encoding", b, a)),
    ("equivalent: a codec name in another case (Python's codec lookup ignores case)",
     lambda b, a: _only_case_of(_CODECS, b, a)),
    ("equivalent: an HTTP header name or media type in another case (HTTP ignores it)",
     lambda b, a: re.search(_HEADER_USE, b, flags=re.IGNORECASE) is not None
     and _only_case_of(_HTTP_NAMES, b, a)),
    ("likely equivalent: a NumPy dtype left to its default (the values already have it)",
     lambda b, a: _only_argument_differs("dtype", b, a)),
    ("equivalent: astype(None) for astype(float64) (NumPy reads None as float64)",
     lambda b, a: re.sub(r"\.astype\((np\.)?float64\)", ".astype(None)", b) == a),
    ("likely equivalent: None for False (read as false where it is used)",
     lambda b, a: _only_false_becomes_none(b, a)),
    ("known gap: progress display (a tqdm bar's text, unit, whether it stays)",
     lambda b, a: re.search(_PROGRESS_CALL, b) is not None
     and (_only_strings_differ(b, a) or _only_argument_differs("leave", b, a))),
    ("known gap: the exact value of a time limit or poll interval (a test would wait it out)",
     lambda b, a: re.search(_TIMING, b) is not None and _only_numbers_differ(b, a)),
    ("known gap: what a log line says (no test reads that line)",
     lambda b, a: re.match(_LOG_LINE, b) is not None and re.match(_LOG_LINE, a) is not None),
    ("known gap: wording of a message no test pins",
     lambda b, a: (re.search(_MESSAGE_CALL, b) is not None or re.fullmatch(_STRING_LINE, b))
     and _only_strings_differ(b, a)),
]
UNCLASSIFIED = "unclassified"
REVIEWS = Path(__file__).with_name("mutation_reviews.json")
REVIEWED = {"equivalent": "equivalent: read one by one (its reason is recorded)",
            "known gap": "known gap: read one by one (its reason is recorded)"}


Change = tuple[str, str, str]  # function, the original's changed lines, the mutant's


def change_key(name: str, removed: list[str], added: list[str]) -> Change:
    """How a review names the change of mutant ``name``: its function and both sides' lines."""
    return (name.rpartition("__mutmut_")[0], "\n".join(line.strip() for line in removed),
            "\n".join(line.strip() for line in added))


def read_reviews(path: Path = REVIEWS) -> dict[Change, tuple[str, str]]:
    """Each change a person has read -> (its class, why)."""
    reviews: dict[Change, tuple[str, str]] = {}
    for entry in json.loads(path.read_text(encoding="utf-8"))["reviews"]:
        kind = REVIEWED[entry["kind"]]
        for change in entry["changes"]:
            reviews[(entry["function"], change["from"], change["to"])] = (kind, entry["why"])
    return reviews


def kind_of(removed: list[str], added: list[str]) -> str:
    """The class of one mutant from the lines it changes (the original's, the mutant's)."""
    if len(removed) != 1 or len(added) != 1:
        return UNCLASSIFIED
    before, after = removed[0].strip(), added[0].strip()
    return next((kind for kind, matches in RULES if matches(before, after)), UNCLASSIFIED)


def changed_lines(source: str) -> dict[str, tuple[list[str], list[str]]]:
    """Mutant function name -> (lines of the original it changes, the mutant's lines)."""
    lines = source.splitlines()
    found: dict[str, tuple[list[str], list[str]]] = {}
    for name, original, mutant in mutant_twins(source):
        stem = name.rpartition("__mutmut_")[0]
        before = [line.replace(original.name, stem)
                  for line in lines[original.lineno - 1:original.end_lineno]]
        after = [line.replace(name, stem) for line in lines[mutant.lineno - 1:mutant.end_lineno]]
        removed: list[str] = []
        added: list[str] = []
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after,
                                                           autojunk=False).get_opcodes():
            if tag != "equal":
                removed += before[i1:i2]
                added += after[j1:j2]
        found[name] = (removed, added)
    return found


def changes_of(survivors: list[str], mutants: Path
               ) -> dict[str, tuple[list[str], list[str]] | None]:
    """Survivor name -> the lines it changes (None if its function is not in ``mutants``)."""
    by_module: dict[str, dict[str, tuple[list[str], list[str]]]] = {}
    changes = {}
    for name in survivors:
        module = module_of(name)
        if module not in by_module:
            source = mutants.joinpath(*module.split(".")).with_suffix(".py")
            by_module[module] = changed_lines(source.read_text(encoding="utf-8"))
        changes[name] = by_module[module].get(name[len(module) + 1:])
    return changes


UNREACHED = "known gap: no owning test executes its statement (mutmut's \"no tests\")"


def classify(survivors: list[str], mutants: Path,
             reviews: dict[Change, tuple[str, str]] | None = None,
             unreached: frozenset[str] = frozenset()) -> dict[str, tuple[str, str]]:
    """Survivor name -> (its class, the reviewer's reason or ""), from the mutated sources
    under ``mutants``: a reviewed change takes its review's class, any other its rule's, and
    one that no rule takes is a known gap if it is in ``unreached`` (no test ran it)."""
    kinds = {}
    for name, change in changes_of(survivors, mutants).items():
        review = None if change is None else (reviews or {}).get(change_key(name, *change))
        kind = UNCLASSIFIED if change is None else kind_of(*change)
        if kind == UNCLASSIFIED and name in unreached:
            kind = UNREACHED
        kinds[name] = review or (kind, "")
    return kinds


NOTE_REACH = 10
_PRAGMA = re.compile(r"#\s*pragma:\s*no mutate(?:\s+(start|end))?\s*(?:\((.*)\))?\s*$")


def not_mutated(files: list[Path], root: Path = REPO) -> list[dict[str, object]]:
    """Every ``# pragma: no mutate`` line of ``files`` (but a block's end), with its reason
    ("" when it has none); files are named relative to ``root``."""
    found: list[dict[str, object]] = []
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            pragma = _PRAGMA.search(line)
            if pragma is None or pragma.group(1) == "end":
                continue
            reason = pragma.group(2) or next(
                (above.strip()[3:-1] for above in reversed(lines[max(0, number - 1 - NOTE_REACH):
                                                               number - 1])
                 if above.strip().startswith("# (") and above.strip().endswith(")")), "")
            found.append({"file": path.relative_to(root).as_posix(), "line": number,
                          "code": line[:pragma.start()].strip(),
                          "block": pragma.group(1) == "start", "reason": reason.strip()})
    return found


def mutmut_config() -> dict[str, Any]:
    """pyproject's ``[tool.mutmut]``, read as mutmut reads it: tomllib, or on Python 3.10 the
    toml package it depends on."""
    try:
        from tomllib import loads
    except ImportError:
        from toml import loads

    return loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]


def mutated_files() -> list[Path]:
    """The source files mutmut mutates (pyproject's ``only_mutate`` less ``do_not_mutate``)."""
    config = mutmut_config()
    skipped = {REPO / name for name in config["do_not_mutate"]}
    return sorted({path for pattern in config["only_mutate"] for path in REPO.glob(pattern)
                   if path.suffix == ".py" and path not in skipped})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result", type=Path, help="a benchmarks.mutation_score result")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    survivors = json.loads(args.result.read_text(encoding="utf-8"))["survivors"]
    unreached = frozenset(name for name, code in verdicts(REPO / "mutants").items()
                          if verdict(code) == "no_tests")
    classified = classify(survivors, REPO / "mutants", read_reviews(), unreached)
    kinds = {name: kind for name, (kind, _) in classified.items()}
    reasons = {name: why for name, (_, why) in classified.items() if why}
    counts = Counter(kinds.values())
    pragmas = not_mutated(mutated_files())
    write_json(args.out, {"section": "mutation_survivors", "result": args.result.name,
                          "survivors": len(kinds), "by_kind": dict(counts.most_common()),
                          "kinds": kinds, "reasons": reasons, "not_mutated": pragmas})
    for kind, n in counts.most_common():
        print(f"{n:5d}  {kind}")
    print(f"{len(pragmas):5d}  lines marked `# pragma: no mutate`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
