"""Surviving mutants sorted by the kind of change they make (benchmarks/mutation_survivors.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.mutation_survivors import (
    UNCLASSIFIED,
    UNREACHED,
    changed_lines,
    classify,
    kind_of,
)
from tests.test_mutation_lines import MUTATED


def test_a_mutant_shows_the_lines_it_changes_against_its_original() -> None:
    changes = {name: ([line.strip() for line in before], [line.strip() for line in after])
               for name, (before, after) in changed_lines(MUTATED).items()}
    assert changes["x_f__mutmut_1"] == (["c = a + b"], ["c = a - b"])
    assert changes["x_f__mutmut_3"] == (["0,"], ["1,"])
    assert changes["x_f__mutmut_4"] == (["def x_f(a, b):"], ["def x_f(a, b=1):"])
    assert changes["xǁBoxǁget__mutmut_1"] == (["except KeyError:"], ["except IndexError:"])
    assert set(changes) == {"x_f__mutmut_1", "x_f__mutmut_2", "x_f__mutmut_3", "x_f__mutmut_4",
                            "xǁBoxǁget__mutmut_1"}


@pytest.mark.parametrize(("before", "after", "kind"), [
    ("for a, b in zip(xs, ys, strict=True):", "for a, b in zip(xs, ys, strict=False):",
     "equivalent: zip's strict"),
    ("for a, b in zip(xs, ys, strict=True):", "for a, b in zip(xs, ys, ):", "equivalent: zip's"),
    ('path.write_text(text, encoding="utf-8")', 'path.write_text(text, encoding="UTF-8")',
     "equivalent: the UTF-8 codec"),
    ('path.write_text(text, encoding="latin-1")', 'path.write_text(text, encoding=None)',
     UNCLASSIFIED),
    ("ids = np.asarray(ids, dtype=np.int64)", "ids = np.asarray(ids, )", "likely equivalent"),
    ('query += " LIMIT ?"', 'query += " limit ?"', "equivalent: SQL keyword case"),
    ('for t in tqdm(texts, desc="fidelity", leave=False):',
     'for t in tqdm(texts, desc="XXfidelityXX", leave=False):', "known gap: progress"),
    ('for t in tqdm(texts, desc="fidelity", leave=False):',
     'for t in tqdm(texts, desc="fidelity", leave=True):', "known gap: progress"),
    ('raise ToolchainError("no attention block")', 'raise ToolchainError(None)',
     "known gap: wording"),
    ('return error_response(400, "bad rate", "invalid_request_error")',
     'return error_response(400, "XXbad rateXX", "invalid_request_error")', "known gap: wording"),
    ('f"got {value}; give a number"', 'f"XXgot {value}; give a numberXX"', "known gap: wording"),
    ('return head.encode("ascii") + body', 'return head.encode("ASCII") + body',
     "equivalent: a codec name"),
    ('return head.encode("ascii") + body', 'return head.encode("XXasciiXX") + body',
     UNCLASSIFIED),
    ('extra["Retry-After"] = str(seconds)', 'extra["retry-after"] = str(seconds)',
     "equivalent: an HTTP header name"),
    ('headers = {"Content-Type": "application/json", "Accept": "application/json",',
     'headers = {"Content-Type": "APPLICATION/JSON", "Accept": "application/json",',
     "equivalent: an HTTP header name or media type"),
    ('headers = {"Content-Type": "application/json", "Accept": "application/json",',
     'headers = {"XXContent-TypeXX": "application/json", "Accept": "application/json",',
     UNCLASSIFIED),
    # an auth style named after its header is a setting compared by value, not a header
    ('if self._auth == "x-api-key":', 'if self._auth == "X-API-KEY":', UNCLASSIFIED),
    ('self.content_type = response.getheader("Content-Type", "text/event-stream")',
     'self.content_type = response.getheader("CONTENT-TYPE", "text/event-stream")',
     "equivalent: an HTTP header name"),
    ("self._thread.join(10)", "self._thread.join(11)", "known gap: the exact value of a time"),
    ("await asyncio.wait_for(woken.wait(), 0.1)", "await asyncio.wait_for(woken.wait(), None)",
     "known gap: the exact value of a time"),
    ("if n > limit:", "if n > 11:", UNCLASSIFIED),
    ("return -lp.astype(np.float64)", "return -lp.astype(None)", "equivalent: astype(None)"),
    ("return -lp.astype(np.float32)", "return -lp.astype(None)", UNCLASSIFIED),
    ("text = json.dumps(obj, ensure_ascii=False, allow_nan=False)",
     "text = json.dumps(obj, ensure_ascii=None, allow_nan=False)", "likely equivalent: None for"),
    ("text = json.dumps(obj, ensure_ascii=False, allow_nan=False)",
     "text = json.dumps(obj, ensure_ascii=True, allow_nan=False)", UNCLASSIFIED),
    ("flag = False", "flag = None", "likely equivalent: None for False"),
    ('log.warning("remote %s attempt %d", url, number + 1)',
     'log.warning("remote %s attempt %d", url, number - 1)', "known gap: what a log line says"),
    ('log.info("%s %s", client[0], path)', 'log.info("%s %s", None, path)',
     "known gap: what a log line says"),
    ('rate = options.get("rate", 0.5)', 'rate = options.get("RATE", 0.5)', UNCLASSIFIED),
    ("if n > limit:", "if n >= limit:", UNCLASSIFIED),
])
def test_a_change_is_sorted_by_its_form(before: str, after: str, kind: str) -> None:
    assert kind_of([before], [after]).startswith(kind)


def test_a_change_of_several_lines_is_left_for_a_person() -> None:
    assert kind_of(["a = 1", "b = 2"], ["a = 2", "b = 3"]) == UNCLASSIFIED


GUARDED = """\
def x_g__mutmut_orig(a):
    if a > 0:
        raise ValueError("a must not be positive")
    return a


def x_g__mutmut_1(a):
    if a > 0:
        raise ValueError("XXa must not be positiveXX")
    return a


def x_g__mutmut_2(a):
    if a >= 0:
        raise ValueError("a must not be positive")
    return a
"""


def test_survivors_are_classified_from_the_mutated_sources(tmp_path: Path) -> None:
    package = tmp_path / "edge_lingua"
    package.mkdir()
    (package / "mod.py").write_text(GUARDED, encoding="utf-8")
    kinds = classify([f"edge_lingua.mod.x_g__mutmut_{i}" for i in (1, 2, 3)], tmp_path)
    wording = "known gap: wording of a message no test pins"
    assert kinds == {"edge_lingua.mod.x_g__mutmut_1": (wording, ""),
                     "edge_lingua.mod.x_g__mutmut_2": (UNCLASSIFIED, ""),
                     "edge_lingua.mod.x_g__mutmut_3": (UNCLASSIFIED, "")}  # not in the sources
    # a change no rule takes, whose statement no test ran: a known gap
    unreached = classify(["edge_lingua.mod.x_g__mutmut_1", "edge_lingua.mod.x_g__mutmut_2"],
                         tmp_path, unreached=frozenset({"edge_lingua.mod.x_g__mutmut_1",
                                                        "edge_lingua.mod.x_g__mutmut_2"}))
    assert unreached == {"edge_lingua.mod.x_g__mutmut_1": (wording, ""),
                         "edge_lingua.mod.x_g__mutmut_2": (UNREACHED, "")}


def test_a_review_holds_for_the_change_it_read_whatever_its_number(tmp_path: Path) -> None:
    """mutmut numbers a function's mutants in order, so an edit renumbers them: a review
    names the change itself, and lapses when the line it read is edited."""
    import json

    from benchmarks.mutation_survivors import REVIEWED, read_reviews

    path = tmp_path / "reviews.json"
    path.write_text(json.dumps({"reviews": [
        {"function": "edge_lingua.mod.x_g", "changes": [{"from": "if a > 0:", "to": "if a >= 0:"}],
         "kind": "known gap", "why": "no test calls g(0)"},
        {"function": "edge_lingua.mod.x_g", "changes": [
            {"from": 'raise ValueError("a must not be positive")',
             "to": 'raise ValueError("XXa must not be positiveXX")'}],
         "kind": "equivalent", "why": "an example"}]}), encoding="utf-8")
    reviews = read_reviews(path)
    assert reviews[("edge_lingua.mod.x_g", "if a > 0:", "if a >= 0:")] == (
        REVIEWED["known gap"], "no test calls g(0)")
    package = tmp_path / "edge_lingua"
    package.mkdir()
    module = package / "mod.py"
    names = ["edge_lingua.mod.x_g__mutmut_1", "edge_lingua.mod.x_g__mutmut_2"]
    gap, example = (REVIEWED["known gap"], "no test calls g(0)"), (REVIEWED["equivalent"],
                                                                     "an example")
    module.write_text(GUARDED, encoding="utf-8")
    assert classify(names, tmp_path, reviews) == dict(zip(names, (example, gap), strict=True))
    # renumbered: the comparison's mutant is number 1 now, the message's number 2
    module.write_text(GUARDED.replace("mutmut_1", "mutmut_0").replace("mutmut_2", "mutmut_1")
                      .replace("mutmut_0", "mutmut_2"), encoding="utf-8")
    assert classify(names, tmp_path, reviews) == dict(zip(names, (gap, example), strict=True))
    # the compared line edited: its review lapses and the rules speak again
    module.write_text(GUARDED.replace("a > 0", "a > 1").replace("a >= 0", "a >= 1"),
                      encoding="utf-8")
    assert classify(names, tmp_path, reviews) == dict(zip(names, (example, (UNCLASSIFIED, "")),
                                                          strict=True))


def test_the_projects_reviews_each_name_a_class_a_reason_and_changes() -> None:
    import json

    from benchmarks.mutation_survivors import REVIEWED, REVIEWS, read_reviews

    entries = json.loads(REVIEWS.read_text(encoding="utf-8"))["reviews"]
    assert all(e["kind"] in REVIEWED and e["why"].strip() and e["changes"] for e in entries)
    assert all(c["from"] != c["to"] for e in entries for c in e["changes"])
    # no change read twice
    assert sum(len(e["changes"]) for e in entries) == len(read_reviews())


NO_MUTATE = """\
def f(xs, ys):
    # (lengths equal by construction)
    pairs = zip(xs, ys, strict=True)  # pragma: no mutate
    time.sleep(0.01)  # pragma: no mutate (a poll interval)
    # pragma: no mutate start (a block)
    x = 1
    # pragma: no mutate end
    return pairs  # pragma: no mutate
"""


def test_every_line_kept_from_mutation_is_listed_with_its_reason(tmp_path: Path) -> None:
    from benchmarks.mutation_survivors import NOTE_REACH, REPO, mutated_files, not_mutated

    path = tmp_path / "m.py"
    path.write_text(NO_MUTATE + "\n" * NOTE_REACH + "y = 2  # pragma: no mutate\n",
                    encoding="utf-8")
    found = [(f["line"], f["code"], f["block"], f["reason"]) for f in not_mutated([path], tmp_path)]
    assert found == [
        (3, "pairs = zip(xs, ys, strict=True)", False, "lengths equal by construction"),
        (4, "time.sleep(0.01)", False, "a poll interval"),
        (5, "", True, "a block"),
        (8, "return pairs", False, "lengths equal by construction"),  # the nearest note
        (9 + NOTE_REACH, "y = 2", False, ""),  # no note within reach
    ]
    # the project's own: every one gives its reason
    assert all(f["reason"] for f in not_mutated(mutated_files(), REPO))
