"""Reading corpus records (JSONL, Parquet) and writing finished ones (resumably)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edge_lingua.errors import EdgeLinguaError, InvalidArgumentError
from edge_lingua.optional import requires_extra

ROW_ID = "row_id"


def is_parquet(path: Path) -> bool:
    return path.suffix == ".parquet"


def read_records(path: Path) -> Iterator[dict[str, Any] | str]:
    """Every record of a JSONL or Parquet file; a JSONL line that is not an object is a str
    describing the problem (it becomes a failed record, never a silently dropped one)."""
    if is_parquet(path):
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
        # split on "\n" only: texts may hold other line breaks (U+0085, U+2028) unescaped
        for line in data.decode("utf-8").split("\n")[:-1]:
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
