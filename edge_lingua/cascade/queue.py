"""An on-disk (SQLite) queue of requests deferred while the remote is unreachable.

Drainers take requests with :meth:`DeferredQueue.claim`: inside one write transaction it
picks the oldest pending request nobody holds and leases it to the caller for
``lease_s`` seconds, so two drainers (threads, ``Cascade`` objects or processes) never hold
the same request at once. Only the lease holder can complete or fail it, so each request
is answered and counted once. A drainer that dies mid-delivery leaves its lease to run
out; the request is then claimed again and re-sent with the same idempotency key (its
id), so at most that in-flight request goes out twice and the remote can tell.
Answers are kept in the queue for the caller to collect by id.
"""

from __future__ import annotations

import json
import os
import socket
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
    error TEXT,
    lease_owner TEXT,
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS deferred_status ON deferred (status, created);
"""
_LEASE_COLUMNS = {"lease_owner": "TEXT", "lease_until": "REAL"}
DEFAULT_LEASE_S = 300.0


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
    """A SQLite file of deferred chat requests; safe to share between threads and processes.

    ``lease_s`` is how long a claimed request stays with its drainer; make it longer than
    one delivery (the remote's timeout times its attempts).
    """

    def __init__(self, path: str | Path, lease_s: float = DEFAULT_LEASE_S) -> None:
        if lease_s <= 0:
            raise InvalidArgumentError(f"lease_s must be > 0, got {lease_s!r}")
        self.path = store.resolve(path)
        self.lease_s = float(lease_s)
        store.create(self.path, _SCHEMA, "deferral queue")
        with self._db() as db:  # files written before leases existed
            have = {row[1] for row in db.execute("PRAGMA table_info(deferred)")}
            for column, kind in _LEASE_COLUMNS.items():
                if column not in have:
                    db.execute(f"ALTER TABLE deferred ADD COLUMN {column} {kind}")

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return store.connect(self.path, durable=True, what="deferral queue")

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
        """Pending requests, oldest first (leased or not)."""
        query = (f"SELECT {_COLUMNS} FROM deferred WHERE status = '{PENDING}' "
                 "ORDER BY created, rowid")
        params: tuple[int, ...] = ()
        if limit is not None:
            query += " LIMIT ?"
            params = (limit,)
        with self._db() as db:
            return [_row(r) for r in db.execute(query, params).fetchall()]

    def claim(self, owner: str) -> Deferred | None:
        """Lease the oldest pending request nobody holds to ``owner``; None when there is none.

        The lookup and the lease are one ``BEGIN IMMEDIATE`` transaction, so no two owners
        can claim the same request. Claiming counts an attempt.
        """
        now = time.time()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                f"SELECT {_COLUMNS} FROM deferred WHERE status = ? AND "
                "(lease_until IS NULL OR lease_until <= ?) ORDER BY created, rowid LIMIT 1",
                (PENDING, now),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE deferred SET lease_owner = ?, lease_until = ?, attempts = attempts + 1, "
                "updated = ? WHERE id = ?", (owner, now + self.lease_s, now, row[0]),
            )
        item = _row(row)
        return Deferred(item.id, item.created, item.status, item.attempts + 1, item.payload,
                        item.meta, item.response, item.error)

    def release(self, request_id: str, owner: str) -> None:
        """Give a claimed request back at once (the remote cannot take it now)."""
        with self._db() as db:
            db.execute("UPDATE deferred SET lease_owner = NULL, lease_until = NULL "
                       "WHERE id = ? AND lease_owner = ? AND status = ?",
                       (request_id, owner, PENDING))

    def get(self, request_id: str) -> Deferred:
        with self._db() as db:
            row = db.execute(f"SELECT {_COLUMNS} FROM deferred WHERE id = ?",
                             (request_id,)).fetchone()
        if row is None:
            raise InvalidArgumentError(f"no deferred request with id {request_id!r}")
        return _row(row)

    def complete(self, request_id: str, response: dict[str, Any], owner: str) -> bool:
        """Store the answer; False (nothing changed) unless ``owner`` still holds the lease."""
        return self._finish(request_id, owner, DONE, "response", json.dumps(response))

    def fail(self, request_id: str, error: str, owner: str) -> bool:
        """Give a request up for good (the remote rejected it; resending cannot help)."""
        return self._finish(request_id, owner, FAILED, "error", error)

    def counts(self) -> dict[str, int]:
        with self._db() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM deferred GROUP BY status").fetchall()
        return {status: n for status, n in rows}

    def _finish(self, request_id: str, owner: str, status: str, column: str, value: str) -> bool:
        with self._db() as db:
            cursor = db.execute(
                f"UPDATE deferred SET status = ?, {column} = ?, updated = ?, lease_until = NULL "
                "WHERE id = ? AND status = ? AND lease_owner = ?",
                (status, value, time.time(), request_id, PENDING, owner),
            )
        return cursor.rowcount == 1


def new_owner() -> str:
    """A drainer identity unique across hosts, processes and objects."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


_COLUMNS = "id, created, updated, status, attempts, payload, meta, response, error"


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
