"""``edge-lingua compress-corpus``: compress every record of a JSONL or Parquet corpus.

Records are read on the driver, compressed on a local process pool (default) or on a Ray Data
actor pool (``--ray``), and written in input order, so any number of workers gives the same
bytes. Each output record is the input record plus ``compressed_text``, ``origin_tokens``,
``compressed_tokens`` and ``error`` (null unless that record failed). Records already in OUT are
skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_lingua.corpus.records import (
    ROW_ID,
    JsonlSink,
    ParquetSink,
    is_parquet,
    read_records,
    record_id,
)
from edge_lingua.corpus.workers import CorpusOptions, failed, local_results, ray_results
from edge_lingua.errors import InvalidArgumentError
from edge_lingua.optional import requires_extra

__all__ = ["CorpusOptions", "Summary", "compress_corpus"]


@dataclass(frozen=True)
class Summary:
    """What a run did: records written now, skipped as already done, failed in OUT overall."""

    written: int
    skipped: int
    failed: int


def compress_corpus(
    source: Path, out: Path, *, text_field: str = "text", id_field: str | None = None,
    options: CorpusOptions | None = None, workers: int | None = None, chunk: int = 32,
    use_ray: bool = False, ray_address: str | None = None, progress: bool = True,
) -> Summary:
    """Compress ``source`` into ``out`` (see the module docstring); returns what was done."""
    options = options or CorpusOptions()
    if not source.is_file():
        raise InvalidArgumentError(f"no such input file: {source}")
    if workers is not None and workers < 1:
        raise InvalidArgumentError(f"workers must be at least 1, got {workers}")
    sink = (ParquetSink if is_parquet(out) else JsonlSink)(out, id_field)
    done, failed_before = sink.done()
    pending: list[tuple[str, dict[str, Any] | str]] = []
    seen: set[str] = set()
    for position, record in enumerate(read_records(source)):
        rid = record_id(record, position, id_field)
        if rid in seen:
            raise InvalidArgumentError(f"id {rid!r} appears twice in {source}")
        seen.add(rid)
        if rid not in done:
            pending.append((rid, record))
    problems = [_problem(record, text_field) for _, record in pending]
    # records with a problem are sent as "" (cheap) and get their error when merged
    texts = ["" if p else record[text_field] for (_, record), p in zip(pending, problems,
                                                                       strict=True)]
    if use_ray:
        results = ray_results(texts, options, workers, chunk, ray_address)
    else:
        results = local_results(texts, options, workers or os.cpu_count() or 1, chunk)
    with requires_extra("corpus"):
        from tqdm import tqdm
    written = n_failed = 0
    with tqdm(total=len(pending), unit="rec", disable=not progress, file=sys.stderr) as bar:
        for rows in results:
            merged = [
                _merge(rid, record, row, problem, id_field)
                for (rid, record), problem, row in zip(
                    pending[written : written + len(rows)],
                    problems[written : written + len(rows)], rows, strict=True)
            ]
            sink.write(merged)
            written += len(rows)
            n_failed += sum(r["error"] is not None for r in merged)
            bar.update(len(rows))
    return Summary(written=written, skipped=len(done), failed=failed_before + n_failed)


def _problem(record: dict[str, Any] | str, text_field: str) -> str | None:
    """Why a record cannot be compressed at all, or None."""
    if isinstance(record, str):  # an unreadable input line, described
        return record
    if text_field not in record:
        return f"record has no field {text_field!r}"
    if not isinstance(record[text_field], str):
        return f"field {text_field!r} holds {type(record[text_field]).__name__}, not text"
    return None


def _merge(rid: str, record: dict[str, Any] | str, added: dict[str, Any], problem: str | None,
           id_field: str | None) -> dict[str, Any]:
    base: dict[str, Any] = dict(record) if isinstance(record, dict) else {}
    if problem is not None:
        added = failed(problem)
    if id_field is None:
        base[ROW_ID] = int(rid)
    return {**base, **added}
