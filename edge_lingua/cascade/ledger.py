"""The ledger: one SQLite row per request with its route, tokens, latency and cost.

Routes: ``local`` (answered on the device), ``remote`` (answered by the remote),
``degraded`` (remote unreachable, local answer returned), ``deferred`` (queued),
``drained`` (a queued request answered later), ``proxy`` (forwarded by the proxy).
``saved_tokens`` is what did not go up compared with sending the original prompt:
``original_tokens - sent_tokens`` for answered requests, 0 for queued ones (the
``drained`` row counts them once they go out) and for failed remote calls.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edge_lingua.cascade import store
from edge_lingua.errors import InvalidArgumentError

ROUTES = ("local", "remote", "degraded", "deferred", "drained", "proxy")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    route TEXT NOT NULL,
    model TEXT,
    original_tokens INTEGER NOT NULL,
    sent_tokens INTEGER NOT NULL,
    saved_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    compress_s REAL NOT NULL,
    cost_usd REAL,
    baseline_cost_usd REAL,
    redactions INTEGER NOT NULL,
    request_id TEXT,
    error TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_answered_once ON ledger (request_id)
    WHERE route = 'drained';
"""


@dataclass(frozen=True)
class Price:
    """US dollars per million prompt and completion tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        prompt = prompt_tokens * self.input_per_mtok
        return (prompt + completion_tokens * self.output_per_mtok) / 1e6


class PriceTable:
    """Prices per model name; the entry ``"*"`` applies to models not listed.

    JSON form: ``{"gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}, ...}``.
    """

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self.prices = dict(prices or {})

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PriceTable:
        if not isinstance(data, Mapping):
            raise InvalidArgumentError("a price table is a JSON object of model -> prices")
        prices = {}
        for model, entry in data.items():
            try:
                price = Price(float(entry["input_per_mtok"]), float(entry["output_per_mtok"]))
            except (KeyError, TypeError, ValueError):
                raise InvalidArgumentError(
                    f"price of {model!r} needs numeric input_per_mtok and output_per_mtok"
                ) from None
            if price.input_per_mtok < 0 or price.output_per_mtok < 0:
                raise InvalidArgumentError(f"price of {model!r} is negative")
            prices[str(model)] = price
        return cls(prices)

    @classmethod
    def load(cls, path: str | Path) -> PriceTable:
        try:
            return cls.from_json(json.loads(store.resolve(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidArgumentError(f"cannot read price table {path}: {exc}") from None

    def price(self, model: str | None) -> Price | None:
        if model is not None and model in self.prices:
            return self.prices[model]
        return self.prices.get("*")


@dataclass(frozen=True)
class Entry:
    """One ledger row."""

    route: str
    model: str | None
    original_tokens: int
    sent_tokens: int
    completion_tokens: int
    latency_s: float
    compress_s: float = 0.0
    redactions: int = 0
    request_id: str | None = None
    error: str | None = None

    @property
    def answered(self) -> bool:
        """Whether the request got an answer (queued ones and failed remote calls did not)."""
        return self.route != "deferred" and not (self.error and self.route in ("remote", "proxy"))

    @property
    def saved_tokens(self) -> int:
        return self.original_tokens - self.sent_tokens if self.answered else 0


class Ledger:
    """Appends :class:`Entry` rows to a SQLite file and summarises them."""

    def __init__(self, path: str | Path, prices: PriceTable | None = None) -> None:
        self.path = store.resolve(path)
        self.prices = prices or PriceTable()
        store.create(self.path, _SCHEMA, "ledger")

    def _db(self) -> AbstractContextManager[sqlite3.Connection]:
        return store.connect(self.path, what="ledger")

    def record(self, entry: Entry) -> None:
        if entry.route not in ROUTES:
            raise InvalidArgumentError(f"unknown route {entry.route!r}; expected one of {ROUTES}")
        price = self.prices.price(entry.model)
        cost = baseline = None
        if price is not None:
            billed_completion = entry.completion_tokens if entry.sent_tokens else 0
            cost = price.cost(entry.sent_tokens, billed_completion)
            baseline = (price.cost(entry.original_tokens, entry.completion_tokens)
                        if entry.answered else 0.0)
        row = asdict(entry)
        row.update(ts=time.time(), saved_tokens=entry.saved_tokens, cost_usd=cost,
                   baseline_cost_usd=baseline)
        columns = ", ".join(row)
        with self._db() as db:  # a drained request is counted once, whoever records it
            db.execute(
                f"INSERT INTO ledger ({columns}) VALUES ({', '.join('?' * len(row))}) "
                "ON CONFLICT DO NOTHING",  # only the unique drained id; NOT NULL still raises
                tuple(row.values()),
            )

    def rows(self) -> list[dict[str, Any]]:
        with self._db() as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM ledger ORDER BY id")]


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals per route and overall: requests, tokens, savings, latency, cost."""
    def block(selected: list[dict[str, Any]]) -> dict[str, Any]:
        original = sum(r["original_tokens"] for r in selected)
        sent = sum(r["sent_tokens"] for r in selected)
        saved = sum(r["saved_tokens"] for r in selected)
        latencies = sorted(r["latency_s"] for r in selected)
        costs = [r["cost_usd"] for r in selected if r["cost_usd"] is not None]
        baselines = [r["baseline_cost_usd"] for r in selected if r["baseline_cost_usd"] is not None]
        return {
            "requests": len(selected),
            "errors": sum(1 for r in selected if r["error"]),
            "original_tokens": original,
            "sent_tokens": sent,
            "saved_tokens": saved,
            "saved_pct": round(100.0 * saved / original, 2) if original else 0.0,
            "completion_tokens": sum(r["completion_tokens"] for r in selected),
            "latency_p50_s": _percentile(latencies, 50),
            "latency_p95_s": _percentile(latencies, 95),
            "cost_usd": round(sum(costs), 6) if costs else None,
            "baseline_cost_usd": round(sum(baselines), 6) if baselines else None,
        }

    routes = sorted({r["route"] for r in rows}, key=ROUTES.index)
    return {
        "total": block(rows),
        "routes": {route: block([r for r in rows if r["route"] == route]) for route in routes},
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as a fixed-width text table."""
    header = ("route", "requests", "errors", "original", "sent", "saved", "saved%",
              "p50 s", "p95 s", "cost $", "baseline $")
    lines = [header]
    for name, block in [*summary["routes"].items(), ("total", summary["total"])]:
        lines.append((
            name, str(block["requests"]), str(block["errors"]), str(block["original_tokens"]),
            str(block["sent_tokens"]), str(block["saved_tokens"]), f"{block['saved_pct']:.1f}",
            _fmt(block["latency_p50_s"], 3), _fmt(block["latency_p95_s"], 3),
            _fmt(block["cost_usd"], 6), _fmt(block["baseline_cost_usd"], 6),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w)
                  in enumerate(zip(line, widths, strict=True)))
        for line in lines
    )


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return round(sorted_values[rank - 1], 4)
