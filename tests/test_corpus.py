"""compress-corpus: local pool and Ray Data give the same bytes; resume; failures reported."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge_lingua.cli import main
from edge_lingua.corpus import CorpusOptions, compress_corpus

SENTENCES = [
    "The Apollo 11 mission landed the first humans on the Moon on July 20, 1969.",
    "Photosynthesis turns carbon dioxide and water into glucose and oxygen in green plants.",
    "Bread dough rises because yeast ferments sugars and releases carbon dioxide gas.",
    "The Treaty of Westphalia in 1648 ended the Thirty Years' War in the Holy Roman Empire.",
]


def _corpus(path: Path, n: int = 12) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            text = " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 3))
            f.write(json.dumps({"doc": f"d{i}", "text": text, "meta": {"i": i}}) + "\n")
        f.write("{not json\n")
        f.write(json.dumps({"doc": "n", "text": 7}) + "\n")
        f.write(json.dumps({"doc": "m", "body": "no text field"}) + "\n")
        f.write(json.dumps({"doc": "e", "text": "   "}) + "\n")
    return path


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n")[:-1]]


def test_records_gain_compressed_text_and_counts_and_failures_are_reported(
    tmp_path: Path, compressor, capsys
) -> None:
    src, out = _corpus(tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    assert main(["compress-corpus", str(src), str(out), "--workers", "1", "--rate", "0.5",
                 "--no-progress"]) == 1
    assert "16 records written, 0 already done, 3 failed" in capsys.readouterr().err
    rows = _rows(out)
    assert [r["row_id"] for r in rows] == list(range(16))
    for row in rows[:12]:
        expected = compressor.compress(row["text"], rate=0.5)
        assert row["compressed_text"] == expected.compressed_prompt
        assert (row["origin_tokens"], row["compressed_tokens"]) == (
            expected.origin_tokens, expected.compressed_tokens)
        assert row["error"] is None and row["meta"] == {"i": row["row_id"]}
    bad_json, not_text, no_field, blank = rows[12:]
    assert "line 13 is not valid JSON" in bad_json["error"]
    assert not_text["error"] == "field 'text' holds int, not text" and not_text["text"] == 7
    assert no_field["error"] == "record has no field 'text'" and no_field["body"]
    assert blank["error"] is None and blank["compressed_text"] == "   "
    assert all(r["compressed_text"] is None for r in (bad_json, not_text, no_field))


def test_two_processes_write_the_same_bytes_as_one(tmp_path: Path) -> None:
    src = _corpus(tmp_path / "in.jsonl")
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    compress_corpus(src, one, workers=1, chunk=3, progress=False)
    summary = compress_corpus(src, two, workers=2, chunk=3, progress=False)
    assert summary.written == 16 and summary.failed == 3
    assert two.read_bytes() == one.read_bytes()


def test_resume_skips_finished_records_and_drops_a_torn_line(tmp_path: Path) -> None:
    src = _corpus(tmp_path / "in.jsonl")
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    compress_corpus(src, full, workers=1, progress=False)
    lines = full.read_bytes().splitlines(keepends=True)
    part.write_bytes(b"".join(lines[:5]) + lines[5][:20])  # killed while writing record 5
    summary = compress_corpus(src, part, workers=1, progress=False)
    assert (summary.written, summary.skipped) == (11, 5)
    assert part.read_bytes() == full.read_bytes()
    again = compress_corpus(src, part, workers=1, progress=False)
    assert (again.written, again.skipped, again.failed) == (0, 16, 3)


def test_parquet_in_and_out_resume_by_id_field(tmp_path: Path, compressor) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    records = [{"key": f"k{i}", "text": s} for i, s in enumerate(SENTENCES)]
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(pa.Table.from_pylist(records[:2]), src)
    options = CorpusOptions(rate=0.5)
    compress_corpus(src, out, id_field="key", options=options, workers=1, progress=False)
    pq.write_table(pa.Table.from_pylist(records), src)  # two records appended upstream
    summary = compress_corpus(src, out, id_field="key", options=options, workers=1,
                              progress=False)
    assert (summary.written, summary.skipped, summary.failed) == (2, 2, 0)
    rows = pq.read_table(out).to_pylist()
    assert [r["key"] for r in rows] == ["k0", "k1", "k2", "k3"]
    assert "row_id" not in rows[0]
    for row, text in zip(rows, SENTENCES, strict=True):
        assert row["compressed_text"] == compressor.compress(text, rate=0.5).compressed_prompt


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "a b"}\n{"id": 1, "text": "c d"}\n')
    assert main(["compress-corpus", str(src), str(tmp_path / "o.jsonl"), "--id-field", "id",
                 "--no-progress"]) == 2
    assert not (tmp_path / "o.jsonl").exists()


def test_ray_data_two_actors_write_the_same_bytes_as_one(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    src = _corpus(tmp_path / "in.jsonl")
    local = tmp_path / "local.jsonl"
    compress_corpus(src, local, workers=1, chunk=4, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outs = []
        for workers in (1, 2):
            out = tmp_path / f"ray{workers}.jsonl"
            summary = compress_corpus(src, out, workers=workers, chunk=4, use_ray=True,
                                      progress=False)
            assert (summary.written, summary.failed) == (16, 3)
            outs.append(out.read_bytes())
    finally:
        ray.shutdown()
    assert outs[0] == outs[1] == local.read_bytes()


def test_parquet_output_reads_back_as_one_table_when_a_chunk_has_only_nulls(
    tmp_path: Path,
) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    src = tmp_path / "in.jsonl"
    # first chunk: every record fine (error all null); second: every record failed
    src.write_text("".join(json.dumps({"text": SENTENCES[i], "n": i}) + "\n" for i in range(2))
                   + '{"text": "   "}\n{not json\n{"n": 3}\n')
    out = tmp_path / "out.parquet"
    summary = compress_corpus(src, out, workers=1, chunk=2, progress=False)
    assert (summary.written, summary.failed) == (5, 2)
    assert len(list(out.glob("part-*.parquet"))) == 3
    table = pq.read_table(out)
    assert table.column("error").to_pylist()[:3] == [None, None, None]
    assert table.column("origin_tokens").to_pylist()[3:] == [None, None]
    assert table.column("n").to_pylist() == [0, 1, None, None, 3]


def test_a_field_changing_type_is_a_clear_error_for_parquet_output(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a b c d"}\n{"text": 5}\n')
    out = tmp_path / "out.parquet"
    code = main(["compress-corpus", str(src), str(out), "--workers", "1", "--batch-size", "1",
                 "--no-progress"])
    assert code == 2
    assert len(list(out.glob("part-*.parquet"))) == 1  # the first record stays written


_records = st.lists(st.one_of(
    st.fixed_dictionaries({"text": st.text(max_size=60)}),
    st.fixed_dictionaries({"text": st.one_of(st.integers(), st.none(), st.booleans())}),
    st.fixed_dictionaries({"other": st.text(max_size=10)}),
), max_size=8)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=_records)
@example(records=[{"text": "a\x85b\u2028c"}, {"text": "d"}])  # line breaks JSON leaves raw
def test_every_record_comes_out_once_in_order(tmp_path: Path, records: list[dict]) -> None:
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    src, out = work / "in.jsonl", work / "out.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    summary = compress_corpus(src, out, workers=1, progress=False)
    rows = _rows(out) if out.exists() else []
    assert [r["row_id"] for r in rows] == list(range(len(records)))
    for row, record in zip(rows, records, strict=True):
        assert {k: row[k] for k in record} == record
        assert (row["error"] is None) == isinstance(record.get("text"), str)
    assert summary.failed == sum(not isinstance(r.get("text"), str) for r in records)
