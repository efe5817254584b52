"""How long each mutant's test session took, for mutation testing (docs/TESTING.md).

mutmut's fork server reports every session's duration as 0, so each session (a fork running
one mutant's tests) appends its own wall time to ``mutmut-sessions.jsonl`` in mutmut's
``mutants/`` directory, and ``benchmarks.mutation_score`` sums it per module and verdict: where
the time of a run goes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.mutation_owners import module_of

SESSION_LOG = Path("mutmut-sessions.jsonl")


def record_session(root: Path, mutant: str, exit_code: int, seconds: float, tests: int) -> None:
    """Append one session's record (a single short write: sessions run side by side)."""
    entry = {"mutant": mutant, "exit": exit_code, "seconds": round(seconds, 3), "tests": tests}
    with open(root / SESSION_LOG, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


def session_seconds(root: Path, verdict: Callable[[str], str | None]
                    ) -> dict[str, dict[str, float]]:
    """Per module, the sessions logged and their seconds, in all and by ``verdict(mutant)``
    (e.g. "killed", "survived"; ``None`` leaves a mutant out). A mutant run again counts its
    last session."""
    path = root / SESSION_LOG
    last: dict[str, float] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            entry = json.loads(line)
            last[entry["mutant"]] = entry["seconds"]
    per_module: dict[str, Counter[str]] = {}
    for mutant, seconds in sorted(last.items()):
        kind = verdict(mutant)
        if kind is None:
            continue
        row = per_module.setdefault(module_of(mutant), Counter())
        row["sessions"] += 1
        row["seconds"] += seconds
        row[f"{kind}_sessions"] += 1
        row[f"{kind}_seconds"] += seconds
    return {module: {k: round(v, 1) for k, v in sorted(row.items())}
            for module, row in sorted(per_module.items())}
