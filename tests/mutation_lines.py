"""Which tests reach the statement a mutant changes, for mutation testing (docs/TESTING.md).

mutmut picks, for each mutant, the tests that call its *function*. While mutmut records its
stats, coverage.py also records which lines of the mutated files each test executes (fixture
setup included, as mutmut counts it), and a mutant's session then runs only the tests that
executed the *statement* it changes: a test that never reaches the statement cannot see it
changed (pitest selects tests by line coverage the same way). A surviving mutant in one branch
of a large function no longer runs every test that calls the function.

Files, in mutmut's ``mutants/`` directory: ``mutmut-lines.json`` (test -> file -> lines, merged
over mutmut's stats runs) and ``mutmut-reach/<module>.json`` (mutant -> the tests that reach
it, with the hash of the mutated source it was computed for: a stale file selects nothing).
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LINES_FILE = Path("mutmut-lines.json")
REACH_DIR = Path("mutmut-reach")
MUTATED_PACKAGES = ("edge_lingua", "quantize")


def mutated_files(root: Path) -> list[Path]:
    """The source files mutmut mutated under ``root`` (each has a ``.py.meta`` record)."""
    return sorted(meta.with_suffix("") for package in MUTATED_PACKAGES
                  for meta in (root / package).rglob("*.py.meta"))


def module_name(path: Path, root: Path) -> str:
    """``root/edge_lingua/proxy/app.py`` -> ``edge_lingua.proxy.app``."""
    return ".".join(path.relative_to(root).with_suffix("").parts)


def _own_lines(node: ast.AST) -> tuple[int, int]:
    """The lines a statement runs by itself: all of a simple statement, the header of a
    compound one (``if``/``for``/``with``/``try``/``except``...) up to its first body line."""
    first = node.lineno  # type: ignore[attr-defined]
    body = getattr(node, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], ast.AST):
        return first, max(first, body[0].lineno - 1)  # type: ignore[attr-defined]
    return first, node.end_lineno or first  # type: ignore[attr-defined]


def _innermost_statement(function: ast.AST, line: int) -> tuple[int, int] | None:
    best: tuple[int, int] | None = None
    for node in ast.walk(function):
        if node is function or not isinstance(node, ast.stmt | ast.excepthandler):
            continue
        start, end = _own_lines(node)
        if start <= line <= end and (best is None or end - start < best[1] - best[0]):
            best = (start, end)
    return best


Function = ast.FunctionDef | ast.AsyncFunctionDef


def _signature(function: Function) -> str:
    return ast.dump(ast.Tuple(elts=[function.args, function.returns or ast.Pass(),
                                    *function.decorator_list]))


def mutant_twins(source: str) -> Iterator[tuple[str, Function, Function]]:
    """Each mutant function of a module as mutmut lays it out (``x_f__mutmut_3``), with its
    original (``x_f__mutmut_orig``): (the mutant's name, the original, the mutant)."""
    functions = {node.name: node for node in ast.walk(ast.parse(source))
                 if isinstance(node, Function) and "__mutmut_" in node.name}
    for name, mutant in functions.items():
        stem, _, suffix = name.rpartition("__mutmut_")
        original = functions.get(f"{stem}__mutmut_orig")
        if suffix != "orig" and original is not None:
            yield name, original, mutant


def changed_statements(source: str) -> dict[str, list[tuple[int, int]] | None]:
    """Mutant function name -> the line ranges of the original's statements it changes.

    ``None``: the change is outside the body (signature, decorators) or cannot be placed, so
    every test that calls the function must run.
    """
    lines = source.splitlines()
    found: dict[str, list[tuple[int, int]] | None] = {}
    for name, original, mutant in mutant_twins(source):
        if _signature(original) != _signature(mutant):
            found[name] = None
            continue
        start, mutant_start = original.body[0].lineno, mutant.body[0].lineno
        before = lines[start - 1:original.end_lineno]
        after = lines[mutant_start - 1:mutant.end_lineno]
        changed: set[int] = set()
        for tag, i1, i2, _, _ in difflib.SequenceMatcher(None, before, after,
                                                         autojunk=False).get_opcodes():
            if tag != "equal":
                changed.update(range(start + i1, start + max(i2, i1 + 1)))
        ranges = [_innermost_statement(original, line) for line in sorted(changed)]
        placed = {r for r in ranges if r is not None}
        found[name] = sorted(placed) if placed and len(placed) == len(set(ranges)) else None
    return found


def start_recording(root: Path) -> Any:
    """A started coverage.py measurement of the mutated files under ``root``."""
    import coverage

    files = mutated_files(root)
    recorder = coverage.Coverage(data_file=None, include=[str(f.resolve()) for f in files])
    recorder.start()
    return recorder


def save_recording(recorder: Any, root: Path) -> None:
    """Stop ``recorder`` (its contexts are test ids) and write what each test reached, merged
    with earlier stats runs (mutmut reruns its stats only for new tests)."""
    recorder.stop()
    data = recorder.get_data()
    path = root / LINES_FILE
    lines_by_test: dict[str, dict[str, list[int]]] = (
        json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {})
    resolved = root.resolve()
    recorded: dict[str, dict[str, set[int]]] = {}
    for measured in data.measured_files():
        relative = Path(measured).resolve().relative_to(resolved).as_posix()
        for line, contexts in data.contexts_by_lineno(measured).items():
            for test in contexts:
                if test:
                    recorded.setdefault(test, {}).setdefault(relative, set()).add(line)
    for test in data.measured_contexts() - {""}:
        lines_by_test[test] = {f: sorted(found) for f, found in recorded.get(test, {}).items()}
    path.write_text(json.dumps(lines_by_test), encoding="utf-8")
    write_reach(lines_by_test, root)


def write_reach(lines_by_test: dict[str, dict[str, list[int]]], root: Path) -> None:
    """For every mutated module, which tests reach each of its mutants."""
    (root / REACH_DIR).mkdir(exist_ok=True)
    tests = sorted(lines_by_test)
    for file in mutated_files(root):
        relative = file.relative_to(root).as_posix()
        source = file.read_bytes()
        tests_by_line: dict[int, set[int]] = {}
        for index, test in enumerate(tests):
            for line in lines_by_test[test].get(relative, ()):
                tests_by_line.setdefault(line, set()).add(index)
        reach: dict[str, list[int] | None] = {}
        for name, ranges in changed_statements(source.decode("utf-8")).items():
            reach[name] = None if ranges is None else sorted(set().union(*(
                tests_by_line.get(line, set()) for start, end in ranges
                for line in range(start, end + 1))))
        (root / REACH_DIR / f"{module_name(file, root)}.json").write_text(json.dumps({
            "source_sha256": hashlib.sha256(source).hexdigest(),
            "tests": tests, "mutants": reach}), encoding="utf-8")


def reach_record(module: str, root: Path) -> dict[str, Any] | None:
    """The record of which tests reach each mutant of ``module``; ``None``: no record, or one
    made for other source."""
    record_path = root / REACH_DIR / f"{module}.json"
    source_path = root.joinpath(*module.split(".")).with_suffix(".py")
    if not record_path.is_file() or not source_path.is_file():
        return None
    record = json.loads(record_path.read_text(encoding="utf-8"))
    if record["source_sha256"] != hashlib.sha256(source_path.read_bytes()).hexdigest():
        return None
    return record


def tests_in(record: dict[str, Any], function: str) -> set[str] | None:
    """The tests of ``record`` that reach mutant ``function``; ``None``: a change outside the
    body, so every test of the function."""
    indices = record["mutants"].get(function)
    return None if indices is None else {record["tests"][i] for i in indices}


def tests_reaching(mutant: str, root: Path) -> set[str] | None:
    """The tests that executed the statement ``mutant`` changes; ``None``: unknown (no
    record, a stale one, or a change outside the body), so run every test of the function."""
    module, _, function = mutant.rpartition(".")
    record = reach_record(module, root)
    return None if record is None else tests_in(record, function)
