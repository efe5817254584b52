"""Surviving mutants sorted by the kind of change they make (benchmarks/mutation_survivors.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.mutation_survivors import UNCLASSIFIED, changed_lines, classify, kind_of
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
    assert kinds == {"edge_lingua.mod.x_g__mutmut_1": wording,
                     "edge_lingua.mod.x_g__mutmut_2": UNCLASSIFIED,
                     "edge_lingua.mod.x_g__mutmut_3": UNCLASSIFIED}  # not in the sources


def test_a_review_names_each_mutant_a_person_read_with_its_class_and_reason(
        tmp_path: Path) -> None:
    import json

    from benchmarks.mutation_survivors import REVIEWED, REVIEWS, read_reviews

    path = tmp_path / "reviews.json"
    path.write_text(json.dumps({"reviews": [
        {"function": "edge_lingua.m.x_f", "mutants": [2, 7], "kind": "equivalent",
         "why": "the seed of a greedy decoder"},
        {"function": "edge_lingua.m.x_g", "mutants": [1], "kind": "known gap",
         "why": "no test reads it"}]}), encoding="utf-8")
    assert read_reviews(path) == {
        "edge_lingua.m.x_f__mutmut_2": (REVIEWED["equivalent"], "the seed of a greedy decoder"),
        "edge_lingua.m.x_f__mutmut_7": (REVIEWED["equivalent"], "the seed of a greedy decoder"),
        "edge_lingua.m.x_g__mutmut_1": (REVIEWED["known gap"], "no test reads it")}
    # the project's reviews: each names its class and why, and no mutant twice
    entries = json.loads(REVIEWS.read_text(encoding="utf-8"))["reviews"]
    assert all(e["kind"] in REVIEWED and e["why"].strip() and e["mutants"] for e in entries)
    assert sum(len(e["mutants"]) for e in entries) == len(read_reviews())
