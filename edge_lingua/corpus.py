"""``edge-lingua compress-corpus``: compress every record of a JSONL or Parquet corpus.

Records are read on the driver, compressed on a local process pool (default) or on a Ray Data
actor pool (``--ray``), and written in input order, so any number of workers gives the same
bytes. Each output record is the input record plus ``compressed_text``, ``origin_tokens``,
``compressed_tokens`` and ``error`` (null unless that record failed). Records already in OUT are
skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_lingua.errors import EdgeLinguaError, InvalidArgumentError
from edge_lingua.optional import requires_extra

ROW_ID = "row_id"
ADDED_FIELDS = ("compressed_text", "origin_tokens", "compressed_tokens", "error")


@dataclass(frozen=True)
class CorpusOptions:
    """What each worker needs to build its compressor and compress one text."""

    bundle: str | None = None
    rate: float | None = 0.5
    target_token: int | None = None
    threads: int = 1  # one onnxruntime thread per worker: workers give the parallelism


@dataclass(frozen=True)
class Summary:
    """What a run did: records written now, skipped as already done, failed in OUT overall."""

    written: int
    skipped: int
    failed: int


# --- one text ------------------------------------------------------------------------------
class TextCompressor:
    """One compressor (one per worker process or Ray actor) turning texts into added fields."""

    def __init__(self, options: CorpusOptions) -> None:
        from edge_lingua.compressor import load_compressor

        self.options = options
        self.compressor = load_compressor(options.bundle, threads=options.threads)

    def fields(self, text: str) -> dict[str, Any]:
        """The fields added to a record whose text is ``text``; errors go to ``error``."""
        if not text.strip():
            return {"compressed_text": text, "origin_tokens": 0, "compressed_tokens": 0,
                    "error": None}
        try:
            result = self.compressor.compress(
                text, rate=self.options.rate, target_token=self.options.target_token)
        except EdgeLinguaError as exc:
            return _failed(f"{type(exc).__name__}: {exc}")
        return {"compressed_text": result.compressed_prompt,
                "origin_tokens": result.origin_tokens,
                "compressed_tokens": result.compressed_tokens, "error": None}

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Ray Data ``map_batches`` entry: a batch of ``text`` to a batch of added fields.

        Columns hold no None (Ray would make NaN of it): a failure is a non-empty ``error``
        with ``""`` and ``-1`` in the other columns; :func:`_from_ray` undoes this."""
        rows = [self.fields(str(t)) for t in batch["text"]]
        return {
            "position": batch["position"],
            "compressed_text": [r["compressed_text"] or "" for r in rows],
            "origin_tokens": [-1 if r["error"] else r["origin_tokens"] for r in rows],
            "compressed_tokens": [-1 if r["error"] else r["compressed_tokens"] for r in rows],
            "error": [r["error"] or "" for r in rows],
        }


def _failed(message: str) -> dict[str, Any]:
    return {"compressed_text": None, "origin_tokens": None, "compressed_tokens": None,
            "error": message}


# --- reading -------------------------------------------------------------------------------
def _is_parquet(path: Path) -> bool:
    return path.suffix == ".parquet"


def read_records(path: Path) -> Iterator[dict[str, Any] | str]:
    """Every record of a JSONL or Parquet file; a JSONL line that is not an object is a str
    describing the problem (it becomes a failed record, never a silently dropped one)."""
    if _is_parquet(path):
        with requires_extra("corpus"):
            import pyarrow.parquet as pq
        for batch in pq.ParquetFile(path).iter_batches():
            yield from batch.to_pylist()
        return
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                yield f"line {number} is not valid UTF-8"
                continue
            except json.JSONDecodeError as exc:
                yield f"line {number} is not valid JSON: {exc.msg}"
                continue
            yield record if isinstance(record, dict) else f"line {number} is not a JSON object"


def record_id(record: dict[str, Any] | str, position: int, id_field: str | None) -> str:
    """The stable id resume uses: ``record[id_field]``, else the position in the input."""
    if id_field is None or not isinstance(record, dict):
        return str(position)
    if id_field not in record:
        raise InvalidArgumentError(f"record {position} has no id field {id_field!r}")
    return str(record[id_field])


# --- writing -------------------------------------------------------------------------------
class JsonlSink:
    """Appends finished records to a JSONL file; reads back what an earlier run finished."""

    def __init__(self, path: Path, id_field: str | None) -> None:
        self.path, self.id_field = path, id_field

    def done(self) -> tuple[set[str], int]:
        """Ids already written and how many of them failed; drops a torn last line."""
        if not self.path.exists():
            return set(), 0
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            data = data[: data.rfind(b"\n") + 1]
            self.path.write_bytes(data)
        ids, failed = set(), 0
        for line in data.decode("utf-8").splitlines():
            row = json.loads(line)
            ids.add(str(row[self.id_field or ROW_ID]))
            failed += row.get("error") is not None
        return ids, failed

    def write(self, rows: list[dict[str, Any]]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            f.flush()
            os.fsync(f.fileno())


class ParquetSink:
    """Writes each chunk as one part file of the directory OUT (renamed into place whole).

    Every part has the schema of the first one (the added fields always typed), so the
    directory reads back as one table even when a chunk has only nulls in some column.
    """

    def __init__(self, path: Path, id_field: str | None) -> None:
        with requires_extra("corpus"):
            import pyarrow as pa
            import pyarrow.parquet as pq
        self.pa, self.pq = pa, pq
        self.path, self.id_field = path, id_field
        parts = self._parts()
        self.schema = pq.read_schema(parts[0]) if parts else None

    def _parts(self) -> list[Path]:
        return sorted(self.path.glob("part-*.parquet")) if self.path.is_dir() else []

    def done(self) -> tuple[set[str], int]:
        ids, failed = set(), 0
        for part in self._parts():
            table = self.pq.read_table(part, columns=[self.id_field or ROW_ID, "error"])
            ids.update(str(v) for v in table.column(0).to_pylist())
            failed += sum(e is not None for e in table.column(1).to_pylist())
        return ids, failed

    def write(self, rows: list[dict[str, Any]]) -> None:
        if self.schema is None:
            pa = self.pa
            typed = {"compressed_text": pa.string(), "origin_tokens": pa.int64(),
                     "compressed_tokens": pa.int64(), "error": pa.string(),
                     ROW_ID: pa.int64()}
            inferred = pa.Table.from_pylist(rows).schema
            self.schema = pa.schema([pa.field(f.name, typed.get(f.name, f.type))
                                     for f in inferred])
        self.path.mkdir(parents=True, exist_ok=True)
        part = self.path / f"part-{len(self._parts()):06d}.parquet"
        tmp = part.with_suffix(".tmp")
        try:
            table = self.pa.Table.from_pylist(rows, schema=self.schema)
        except (self.pa.ArrowTypeError, self.pa.ArrowInvalid) as exc:
            raise EdgeLinguaError(
                f"records do not fit one Parquet schema ({exc}); a field changes type between "
                "records: write JSONL output instead"
            ) from None
        self.pq.write_table(table, tmp)
        tmp.replace(part)


# --- running -------------------------------------------------------------------------------
_worker: TextCompressor | None = None  # the compressor of a pool worker process


def _init_worker(options: CorpusOptions) -> None:
    global _worker
    _worker = TextCompressor(options)


def _compress_chunk(texts: list[str]) -> list[dict[str, Any]]:
    assert _worker is not None
    return [_worker.fields(t) for t in texts]


def _local_results(
    texts: list[str], options: CorpusOptions, workers: int, chunk: int
) -> Iterator[list[dict[str, Any]]]:
    chunks = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
    if workers == 1:
        compressor = TextCompressor(options)
        yield from ([compressor.fields(t) for t in texts] for texts in chunks)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(options,)) as pool:
        yield from pool.imap(_compress_chunk, chunks)


def _ray_results(
    texts: list[str], options: CorpusOptions, workers: int | None, chunk: int,
    address: str | None,
) -> Iterator[list[dict[str, Any]]]:
    with requires_extra("ray"):
        import ray
        import ray.data
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    size = workers or max(int(ray.cluster_resources().get("CPU", 1)), 1)
    execution = ray.data.DataContext.get_current().execution_options
    preserve_order, execution.preserve_order = execution.preserve_order, True
    try:
        items = [{"position": i, "text": t} for i, t in enumerate(texts)]
        dataset = ray.data.from_items(items).map_batches(
            TextCompressor, fn_constructor_args=(options,), batch_size=chunk,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=size), num_cpus=1)
        expected = 0
        for batch in dataset.iter_batches(batch_size=chunk, batch_format="numpy"):
            rows = []
            for j, position in enumerate(batch["position"].tolist()):
                if position != expected:
                    raise EdgeLinguaError(f"Ray returned record {position}, not {expected}")
                expected += 1
                rows.append(_from_ray(batch, j))
            yield rows
    finally:
        execution.preserve_order = preserve_order


def _from_ray(batch: dict[str, Any], j: int) -> dict[str, Any]:
    """Row ``j`` of a batch from :meth:`TextCompressor.__call__` as plain Python values."""
    if batch["error"][j]:
        return _failed(str(batch["error"][j]))
    return {"compressed_text": str(batch["compressed_text"][j]),
            "origin_tokens": int(batch["origin_tokens"][j]),
            "compressed_tokens": int(batch["compressed_tokens"][j]), "error": None}


def compress_corpus(
    source: Path, out: Path, *, text_field: str = "text", id_field: str | None = None,
    options: CorpusOptions = CorpusOptions(), workers: int | None = None, chunk: int = 32,
    use_ray: bool = False, ray_address: str | None = None, progress: bool = True,
) -> Summary:
    """Compress ``source`` into ``out`` (see the module docstring); returns what was done."""
    if not source.is_file():
        raise InvalidArgumentError(f"no such input file: {source}")
    if workers is not None and workers < 1:
        raise InvalidArgumentError(f"workers must be at least 1, got {workers}")
    sink = (ParquetSink if _is_parquet(out) else JsonlSink)(out, id_field)
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
        results = _ray_results(texts, options, workers, chunk, ray_address)
    else:
        results = _local_results(texts, options, workers or os.cpu_count() or 1, chunk)
    with requires_extra("corpus"):
        from tqdm import tqdm
    written = failed = 0
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
            failed += sum(r["error"] is not None for r in merged)
            bar.update(len(rows))
    return Summary(written=written, skipped=len(done), failed=failed_before + failed)


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
        added = _failed(problem)
    if id_field is None:
        base[ROW_ID] = int(rid)
    return {**base, **added}


# --- command line --------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    """Add the ``compress-corpus`` subcommand to the ``edge-lingua`` parser."""
    p = subparsers.add_parser("compress-corpus",
                              help="compress every record of a JSONL or Parquet file")
    p.add_argument("input", type=Path, help="records: .jsonl (one JSON object a line) or "
                                            ".parquet")
    p.add_argument("output", type=Path, help="where to write: .jsonl file, or .parquet "
                                             "(a directory of part files)")
    p.add_argument("--text-field", default="text", help="field to compress (default: text)")
    p.add_argument("--id-field", help="unique id field used to resume (default: the record's "
                                      "position, written as row_id)")
    p.add_argument("--bundle", help="compressor bundle (default: the shipped model)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--rate", type=float, default=0.5,
                        help="share of tokens to keep, in (0, 1] (default: 0.5)")
    budget.add_argument("--target-token", type=int, help="token budget of each record")
    p.add_argument("--workers", type=int, help="worker processes or Ray actors (default: "
                                               "every CPU of the machine or cluster)")
    p.add_argument("--batch-size", type=int, default=32, help="records per task (default: 32)")
    p.add_argument("--ray", action="store_true", help="run on Ray Data instead of local "
                                                      "processes")
    p.add_argument("--ray-address", help="Ray cluster to join, e.g. ray://head:10001 "
                                         "(default: RAY_ADDRESS, else a local cluster)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    options = CorpusOptions(bundle=args.bundle,
                            rate=None if args.target_token is not None else args.rate,
                            target_token=args.target_token)
    summary = compress_corpus(
        args.input, args.output, text_field=args.text_field, id_field=args.id_field,
        options=options, workers=args.workers, chunk=args.batch_size, use_ray=args.ray,
        ray_address=args.ray_address, progress=not args.no_progress)
    print(f"{summary.written} records written, {summary.skipped} already done, "
          f"{summary.failed} failed", file=sys.stderr)
    return 1 if summary.failed else 0

