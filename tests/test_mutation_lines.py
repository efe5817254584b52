"""Mutation testing selects a mutant's tests by the statement it changes
(tests/mutation_lines.py): checked on a hand-made file laid out as mutmut lays out its mutants."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from tests.mutation_lines import changed_statements, save_recording, start_recording
from tests.mutation_lines import tests_reaching as reaching

MUTATED = '''\
def x_f__mutmut_orig(a, b):
    if a > 0:
        c = a + b
    else:
        c = a - b
    total = max(
        c,
        0,
    )
    return total


def x_f__mutmut_1(a, b):
    if a > 0:
        c = a - b
    else:
        c = a - b
    total = max(
        c,
        0,
    )
    return total


def x_f__mutmut_2(a, b):
    if a >= 0:
        c = a + b
    else:
        c = a - b
    total = max(
        c,
        0,
    )
    return total


def x_f__mutmut_3(a, b):
    if a > 0:
        c = a + b
    else:
        c = a - b
    total = max(
        c,
        1,
    )
    return total


def x_f__mutmut_4(a, b=1):
    if a > 0:
        c = a + b
    else:
        c = a - b
    total = max(
        c,
        0,
    )
    return total


class Box:
    def xǁBoxǁget__mutmut_orig(self, key):
        try:
            return self.items[key]
        except KeyError:
            return None

    def xǁBoxǁget__mutmut_1(self, key):
        try:
            return self.items[key]
        except IndexError:
            return None


f = x_f__mutmut_orig
'''


def test_a_mutant_maps_to_the_statements_of_the_original_it_changes() -> None:
    found = changed_statements(MUTATED)
    assert found["x_f__mutmut_1"] == [(3, 3)]  # the assignment in the if branch
    assert found["x_f__mutmut_2"] == [(2, 2)]  # the if's header, not its whole body
    assert found["x_f__mutmut_3"] == [(6, 9)]  # a change on one line of a 4-line statement
    assert found["x_f__mutmut_4"] is None  # the signature: every caller must run
    assert found["xǁBoxǁget__mutmut_1"] == [(65, 65)]  # an except clause's header
    assert not any(name.endswith("__mutmut_orig") for name in found)


def _recorded(root: Path) -> None:
    package = root / "edge_lingua"
    package.mkdir()
    source = package / "mod.py"
    source.write_text(MUTATED, encoding="utf-8")
    (package / "mod.py.meta").write_text("{}", encoding="utf-8")
    recorder = start_recording(root)
    spec = importlib.util.spec_from_file_location("mutation_lines_probe", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recorder.switch_context("tests/test_x.py::positive")
    module.f(1, 2)
    recorder.switch_context("tests/test_x.py::negative")
    module.f(-5, 2)
    recorder.switch_context("tests/test_x.py::unrelated")
    save_recording(recorder, root)


def test_only_the_tests_that_executed_the_changed_statement_are_selected(tmp_path: Path) -> None:
    _recorded(tmp_path)
    both = {"tests/test_x.py::positive", "tests/test_x.py::negative"}
    assert reaching("edge_lingua.mod.x_f__mutmut_1", tmp_path) == {
        "tests/test_x.py::positive"}
    assert reaching("edge_lingua.mod.x_f__mutmut_2", tmp_path) == both
    assert reaching("edge_lingua.mod.x_f__mutmut_3", tmp_path) == both
    assert reaching("edge_lingua.mod.xǁBoxǁget__mutmut_1", tmp_path) == set()
    assert reaching("edge_lingua.mod.x_f__mutmut_4", tmp_path) is None
    assert reaching("edge_lingua.other.x_g__mutmut_1", tmp_path) is None


def test_a_record_of_a_changed_source_selects_nothing(tmp_path: Path) -> None:
    _recorded(tmp_path)
    source = tmp_path / "edge_lingua" / "mod.py"
    source.write_text("\n" + MUTATED, encoding="utf-8")  # every line moved by one
    assert reaching("edge_lingua.mod.x_f__mutmut_1", tmp_path) is None


def test_the_score_reports_the_test_seconds_each_selection_needs(tmp_path: Path) -> None:
    from benchmarks.mutation_score import selection_seconds, verdicts

    _recorded(tmp_path)
    names = [f"edge_lingua.mod.x_f__mutmut_{i}" for i in (1, 2, 4)]
    names.append("edge_lingua.mod.xǁBoxǁget__mutmut_1")
    (tmp_path / "edge_lingua" / "mod.py.meta").write_text(
        json.dumps({"exit_code_by_key": dict.fromkeys(names)}), encoding="utf-8")
    (tmp_path / "mutmut-stats.json").write_text(json.dumps({
        "tests_by_mangled_function_name": {
            "edge_lingua.mod.x_f": ["tests/test_x.py::positive", "tests/test_x.py::negative",
                                    "tests/test_x.py::unrelated"],
            "edge_lingua.mod.xǁBoxǁget": ["tests/test_x.py::unrelated"]},
        "duration_by_test": {"tests/test_x.py::positive": 1.0,
                             "tests/test_x.py::negative": 2.0,
                             "tests/test_x.py::unrelated": 4.0}}), encoding="utf-8")
    # no owners for edge_lingua.mod: every test of the function is an owning one
    assert selection_seconds(tmp_path, verdicts(tmp_path)) == {"edge_lingua.mod": {
        "mutants": 4, "by_function_s": 7.0 + 7.0 + 7.0 + 4.0,
        "by_statement_s": 1.0 + 3.0 + 7.0 + 0.0, "reached_by_no_test": 1}}
