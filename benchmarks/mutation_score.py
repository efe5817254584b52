"""Mutation score: run mutmut on modules of the configured scope and record what it found.

    python -m benchmarks.mutation_score --out docs/results/mutation.json \
        "edge_lingua.selection*" "edge_lingua.providers*"
    python -m benchmarks.mutation_score --out docs/results/mutation.json   # all, resuming
    python -m benchmarks.mutation_score --no-run --out docs/results/mutation.json

Runs ``mutmut run --max-children N [PATTERN ...]`` from the repository root (configuration in
``pyproject.toml``, ``[tool.mutmut]``), times it, then counts mutmut's verdicts per module from
its records under ``mutants/``. Named patterns are rerun; with none, mutmut checks every mutant
it has no verdict for yet. A module's score is killed (timeouts and crashes included) over the
mutants checked; "no tests" mutants (no selected test runs the function) count against it. The
survivors are listed by name, for docs/TESTING.md to classify as equivalent or as known gaps.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, machine, write_json
from tests.mutation_lines import reach_record, tests_in
from tests.mutation_owners import file_of, module_of, owners_of
from tests.mutation_sessions import session_seconds

# mutmut's exit codes (mutmut.stats.status_by_exit_code); a test process killed by a signal
# (SIGABRT from onnxruntime given a broken option, a segfault) failed where anyone would see it
TIMEOUT = {24, -24, 36, 152, 255}
CRASHED = {-6, -9, -11}
KILLED = {1, 3} | TIMEOUT | CRASHED
SURVIVED = {0}
NO_TESTS = {5, 33}


def verdicts(mutants: Path) -> dict[str, int | None]:
    """Mutant name -> mutmut's exit code (None: not checked), over every record."""
    found: dict[str, int | None] = {}
    for meta in sorted(mutants.rglob("*.meta")):
        found.update(json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"])
    return found


def verdict(code: int | None) -> str | None:
    """``killed``, ``survived``, ``no_tests`` or ``None`` (not checked, or another code)."""
    if code in KILLED:
        return "killed"
    if code in SURVIVED:
        return "survived"
    return "no_tests" if code in NO_TESTS else None


def tally(codes: dict[str, int | None], patterns: list[str]) -> dict[str, Any]:
    """Counts per module of the mutants matching ``patterns``, and the survivors' names."""
    per_module: dict[str, Counter[str]] = {}
    survivors: list[str] = []
    for name, code in sorted(codes.items()):
        if not any(fnmatch.fnmatch(name, p) for p in patterns):
            continue
        counts = per_module.setdefault(module_of(name), Counter())
        counts["mutants"] += 1
        kind = verdict(code)
        counts["not_checked" if code is None else kind or "other"] += 1
        counts["timeouts"] += code in TIMEOUT
        counts["crashed"] += code in CRASHED
        if kind in ("survived", "no_tests"):
            survivors.append(name)
    modules = {}
    for module, counts in sorted(per_module.items()):
        checked = counts["mutants"] - counts["not_checked"]
        modules[module] = {**{k: counts[k] for k in ("mutants", "killed", "timeouts", "crashed",
                                                     "survived", "no_tests", "not_checked",
                                                     "other")},
                           "checked": checked, "score": counts["killed"] / checked if checked
                           else None}
    total = Counter()
    for row in modules.values():
        total.update({k: v for k, v in row.items() if k != "score"})
    return {"modules": modules, "total": {**total, "score": total["killed"] / total["checked"]
                                          if total["checked"] else None},
            "survivors": survivors}


def selection_seconds(mutants: Path, names: Iterable[str]) -> dict[str, dict[str, float]]:
    """Per module, the recorded seconds of the tests the mutants ``names`` run when they
    survive, chosen by function (mutmut's record, within the owning files) and by statement
    (``tests/mutation_lines.py``), and how many mutants no owning test reaches."""
    stats = json.loads((mutants / "mutmut-stats.json").read_text(encoding="utf-8"))
    tests_by_function = stats["tests_by_mangled_function_name"]
    seconds = stats["duration_by_test"]
    per_module: dict[str, Counter[str]] = {}
    records: dict[str, dict[str, Any] | None] = {}  # each module's record, read once
    for name in names:
        module = module_of(name)
        if module not in records:
            records[module] = reach_record(module, mutants)
        record = records[module]
        owners = owners_of(name)
        by_function = [t for t in tests_by_function.get(name.rsplit("__mutmut_", 1)[0], ())
                       if owners is None or file_of(t) in owners]
        reaching = None if record is None else tests_in(record, name[len(module) + 1:])
        by_statement = [t for t in by_function if reaching is None or t in reaching]
        row = per_module.setdefault(module, Counter())
        row["mutants"] += 1
        row["by_function_s"] += sum(seconds.get(t, 0.0) for t in by_function)
        row["by_statement_s"] += sum(seconds.get(t, 0.0) for t in by_statement)
        row["reached_by_no_test"] += not by_statement
    return {module: {k: round(v, 1) for k, v in row.items()}
            for module, row in sorted(per_module.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("patterns", nargs="*",
                        help="mutant name patterns, as mutmut takes them (these are rerun); "
                             "none: every mutant, resuming from mutmut's cached verdicts")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--no-run", action="store_true",
                        help="only count the records of an earlier run")
    args = parser.parse_args(argv)
    seconds = None
    if not args.no_run:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children",
                        str(args.max_children), *args.patterns],
                       cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - started
    mutmut = subprocess.run([sys.executable, "-m", "pip", "show", "mutmut"], capture_output=True,
                            text=True).stdout
    version = next((line.split()[-1] for line in mutmut.splitlines()
                    if line.startswith("Version:")), None)
    codes = verdicts(REPO / "mutants")
    result = {"section": "mutation", "machine": machine(), "mutmut": version,
              "patterns": args.patterns, "max_children": args.max_children,
              "wall_s": seconds, **tally(codes, args.patterns or ["*"]),
              "selection": selection_seconds(REPO / "mutants", codes),
              "sessions": session_seconds(REPO / "mutants", lambda name: verdict(codes.get(name)))}
    write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("wall_s", "total")}, indent=2))
    for module, row in result["modules"].items():
        print(module, row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
