"""An on-disk (SQLite) queue of requests deferred while the remote is unreachable.

A request stays ``pending`` until the remote has answered it; a crash between sending
and recording the answer leaves it pending, so it is sent again (at least once, never
lost). Answers are kept in the queue for the caller to collect by id.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_lingua.cascade import store
from edge_lingua.errors import InvalidArgumentError

PENDING = "pending"
DONE = "done"
FAILED = "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deferred (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL,
    meta TEXT NOT NULL,
    response TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS deferred_status ON deferred (status, created);
"""


@dataclass(frozen=True)
class Deferred:
    """One queued request."""

    id: str
    created: float
    status: str
    attempts: int
    payload: dict[str, Any]
    meta: dict[str, Any]
    response: dict[str, Any] | None
    error: str | None


class DeferredQueue:
    """A SQLite file of deferred chat requests; safe to use from several threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        store.create(self.path, _SCHEMA)

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return store.connect(self.path, durable=True)

    def put(self, payload: dict[str, Any], meta: dict[str, Any] | None = None) -> str:
        """Store a request (already compressed and redacted); returns its id."""
        request_id = uuid.uuid4().hex
        now = time.time()
        with self._db() as db:
            db.execute(
                "INSERT INTO deferred (id, created, updated, status, payload, meta) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (request_id, now, now, PENDING, json.dumps(payload), json.dumps(meta or {})),
            )
        return request_id

    def pending(self, limit: int | None = None) -> list[Deferred]:
        """Pending requests, oldest first."""
        query = f"SELECT * FROM deferred WHERE status = '{PENDING}' ORDER BY created, rowid"
        params: tuple[int, ...] = ()
        if limit is not None:
            query += " LIMIT ?"
            params = (limit,)
        with self._db() as db:
            return [_row(r) for r in db.execute(query, params).fetchall()]

    def get(self, request_id: str) -> Deferred:
        with self._db() as db:
            row = db.execute("SELECT * FROM deferred WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise InvalidArgumentError(f"no deferred request with id {request_id!r}")
        return _row(row)

    def attempted(self, request_id: str) -> None:
        self._update(request_id, "attempts = attempts + 1")

    def complete(self, request_id: str, response: dict[str, Any]) -> None:
        self._update(request_id, "status = ?, response = ?", DONE, json.dumps(response))

    def fail(self, request_id: str, error: str) -> None:
        """Give a request up for good (the remote rejected it; resending cannot help)."""
        self._update(request_id, "status = ?, error = ?", FAILED, error)

    def counts(self) -> dict[str, int]:
        with self._db() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM deferred GROUP BY status").fetchall()
        return {status: n for status, n in rows}

    def _update(self, request_id: str, assignments: str, *values: Any) -> None:
        with self._db() as db:
            cursor = db.execute(
                f"UPDATE deferred SET {assignments}, updated = ? WHERE id = ?",
                (*values, time.time(), request_id),
            )
        if cursor.rowcount != 1:
            raise InvalidArgumentError(f"no deferred request with id {request_id!r}")


def _row(row: tuple[Any, ...]) -> Deferred:
    rid, created, _updated, status, attempts, payload, meta, response, error = row
    return Deferred(
        id=rid,
        created=created,
        status=status,
        attempts=attempts,
        payload=json.loads(payload),
        meta=json.loads(meta),
        response=None if response is None else json.loads(response),
        error=error,
    )
