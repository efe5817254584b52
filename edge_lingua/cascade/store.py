"""The SQLite files of the cascade (ledger, deferral queue): one way to open them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge_lingua.errors import StorageError


def resolve(path: str | Path) -> Path:
    """The path with ``~`` expanded (``~/.edge-lingua/ledger.sqlite`` is in the home folder)."""
    return Path(path).expanduser()


def create(path: Path, schema: str, what: str) -> None:
    """Make the ``what`` file's folder and tables (idempotent: the schema uses IF NOT EXISTS).

    Raises :class:`StorageError` (one line, no traceback) when the folder or file cannot
    be created or written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the {what} folder {path.parent}: "
                           f"{exc.strerror or exc}") from None
    with connect(path, what=what) as db:
        db.executescript(schema)


@contextmanager
def connect(path: Path, *, what: str, durable: bool = False) -> Iterator[sqlite3.Connection]:
    """A WAL-mode connection committed on success, rolled back on error, always closed.

    ``durable`` syncs every commit to disk (``synchronous=FULL``), for data that must survive
    a power cut; otherwise ``NORMAL``. SQLite errors become :class:`StorageError`.
    """
    try:
        db = sqlite3.connect(path, timeout=30.0)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open the {what} {path}: {exc}") from None
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # FULL (2) syncs every commit; NORMAL (1) under WAL may lose the last commits in a
        # power cut, never the file (SQLite's own default is FULL, so it is said both ways)
        db.execute(f"PRAGMA synchronous={2 if durable else 1}")
        with db:
            yield db
    except sqlite3.Error as exc:
        raise StorageError(f"cannot write the {what} {path}: {exc}") from None
    finally:
        db.close()
