"""Plain-text rendering for the operator CLI: aligned columns, integers as they are, and
timestamps (`iso_utc`) as ISO 8601 UTC; `--json` output keeps the raw nanoseconds."""

import datetime
from collections.abc import Iterable, Sequence
from typing import Any

NS_PER_S = 1_000_000_000


def iso_utc(ns: int | None) -> str | None:
    """Nanoseconds since the Unix epoch as ISO 8601 UTC, every digit kept (None stays None):
    1764851696123456789 -> 2025-12-04T12:34:56.123456789Z."""
    if ns is None:
        return None
    seconds, fraction = divmod(ns, NS_PER_S)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):  # e.g. net debit caps: USD=1000 EUR=500
        return " ".join(f"{k}={cell(v)}" for k, v in value.items()) or "-"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned so digits line up."""
    cells = [[cell(v) for v in row] for row in rows]
    numeric = [_numeric_column([row[i] for row in cells]) for i in range(len(headers))]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = (v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric))
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers)] + [line(row) for row in cells])


def fields(pairs: Iterable[tuple[str, Any]]) -> str:
    """`name  value` lines, names padded to one width."""
    pairs = [(name, cell(value)) for name, value in pairs]
    width = max((len(name) for name, _ in pairs), default=0)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in pairs)


def _numeric_column(texts: list[str]) -> bool:
    numbers = [t for t in texts if t != "-"]  # "-" is a missing value
    return bool(numbers) and all(t.lstrip("-").isdigit() for t in numbers)
