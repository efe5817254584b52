"""The mutation run's session log adds up each module's session seconds by verdict."""

from __future__ import annotations

from pathlib import Path

from tests.mutation_sessions import record_session, session_seconds


def test_sessions_add_up_per_module_and_verdict_counting_a_rerun_once(tmp_path: Path) -> None:
    record_session(tmp_path, "edge_lingua.mod.x_f__mutmut_1", 0, 4.0, 3)
    record_session(tmp_path, "edge_lingua.mod.x_f__mutmut_2", 1, 0.5, 3)
    record_session(tmp_path, "edge_lingua.mod.x_f__mutmut_1", 1, 1.25, 3)  # rerun, now killed
    record_session(tmp_path, "edge_lingua.other.x_g__mutmut_1", 0, 2.0, 1)
    record_session(tmp_path, "edge_lingua.other.x_g__mutmut_2", 0, 9.0, 1)
    verdicts = {"edge_lingua.mod.x_f__mutmut_1": "killed",
                "edge_lingua.mod.x_f__mutmut_2": "killed",
                "edge_lingua.other.x_g__mutmut_1": "survived"}  # _2 has no verdict: left out
    assert session_seconds(tmp_path, verdicts.get) == {
        "edge_lingua.mod": {"killed_seconds": 1.8, "killed_sessions": 2, "seconds": 1.8,
                            "sessions": 2},
        "edge_lingua.other": {"seconds": 2.0, "sessions": 1, "survived_seconds": 2.0,
                              "survived_sessions": 1}}


def test_no_log_no_sessions(tmp_path: Path) -> None:
    assert session_seconds(tmp_path, lambda mutant: "killed") == {}
