"""The ``compress-corpus`` subcommand of ``edge-lingua``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edge_lingua.corpus import CorpusOptions, compress_corpus


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

