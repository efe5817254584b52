"""The SQLite files of the cascade (ledger, deferral queue): one way to open them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def create(path: Path, schema: str) -> None:
    """Make the file's folder and tables (idempotent: the schema uses IF NOT EXISTS)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(path) as db:
        db.executescript(schema)


@contextmanager
def connect(path: Path, durable: bool = False) -> Iterator[sqlite3.Connection]:
    """A WAL-mode connection committed on success, rolled back on error, always closed.

    ``durable`` syncs every commit to disk (``synchronous=FULL``), for data that must survive
    a power cut.
    """
    db = sqlite3.connect(path, timeout=30.0)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        if durable:
            db.execute("PRAGMA synchronous=FULL")
        with db:
            yield db
    finally:
        db.close()
