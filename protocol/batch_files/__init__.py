"""Pure batch-file formats, shared by the switch and the client (which must not need the
server installed): bytes or item lists in, normalized transfers and problems out.

    parse_batch("csv" | "json" | "pain.001", content, items) -> ParsedBatch
    results_csv(rows) -> bytes                 # index,id,status
    pain002(meta, rows, created_at_iso, message_id) -> bytes

No I/O, no clock: the caller reads uploads, rejects a batch with any error and
runs the items. Each transfer goes through `protocol.normalize_transfer`, so the
rules for ids, accounts, currencies and references live in one place.
"""

from typing import Any

from ..validate import MAX_BATCH_ITEMS

from .csv_format import parse_csv, results_csv
from .currencies import minor_units, to_minor_units
from .json_format import parse_json
from .pain001 import MAX_BYTES, parse_pain001
from .pain002 import DEFAULT_REASON, REASON_CODES, pain002, status_reason_code
from .parsed import BatchProblem, ParsedBatch, ProblemLog, finish

__all__ = [
    "parse_batch", "ParsedBatch", "BatchProblem", "MAX_BYTES", "MAX_BATCH_ITEMS",
    "results_csv", "pain002", "status_reason_code", "REASON_CODES", "DEFAULT_REASON",
    "minor_units", "to_minor_units",
]


def parse_batch(format: str, content: bytes | None, items: list[Any] | None,
                max_items: int = MAX_BATCH_ITEMS, max_bytes: int = MAX_BYTES) -> ParsedBatch:
    """Items of a `submit_batch` in `format`; `max_bytes` bounds pain.001 documents."""
    if format == "json":
        return parse_json(content, items, max_items)
    if format not in ("csv", "pain.001"):
        raise ValueError(f"unknown batch format {format!r}")  # a caller bug: validate_args refuses it
    if content is None:
        problems = ProblemLog()
        problems.add("content", "missing")
        return finish([], problems)
    if format == "csv":
        return parse_csv(content, max_items)
    return parse_pain001(content, max_items, max_bytes)
