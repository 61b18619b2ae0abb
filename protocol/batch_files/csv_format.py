"""CSV batch files (`id,debit_account,credit_account,amount,currency,reference`) and results.

Rows stream from the bytes through a text decoder, so a million-row file never
becomes one giant string. Line numbers are physical lines, the header being
line 1; a row whose quoted field spans lines is named by its first line.
"""

import csv
import io
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import ProtocolError, normalize_transfer

from .parsed import ParsedBatch, ProblemLog, finish

if TYPE_CHECKING:
    from _csv import Reader  # what csv.reader returns: no public name before Python 3.12

__all__ = ["HEADER", "parse_csv", "results_csv"]

HEADER = ["id", "debit_account", "credit_account", "amount", "currency", "reference"]
_AMOUNT = re.compile(r"[0-9]+").fullmatch  # ASCII digits only: str.isdigit takes "١٢"
_MONEY_DIGITS = 19  # 2^63-1 has 19 digits; longer values are invalid_amount without int()


class _RowError(ValueError):
    """A row that cannot be read as a transfer; its message becomes the problem's reason."""


def parse_csv(content: bytes, max_items: int) -> ParsedBatch:
    problems = ProblemLog()
    items: list[dict[str, Any]] = []
    text = io.TextIOWrapper(io.BytesIO(content), encoding="utf-8-sig", newline="")
    reader = csv.reader(text, strict=True)
    header = _next_row(reader, content, problems, 0)
    if header == HEADER:
        _read_rows(reader, content, items, problems, max_items)
    elif not problems:  # an unreadable first line is already noted
        problems.add("line 1", f"header must be exactly {','.join(HEADER)}")
    return finish(items, problems)


def _read_rows(reader: "Reader", content: bytes, items: list[dict[str, Any]], problems: ProblemLog,
               max_items: int) -> None:
    rows = 0
    line_end = 1
    while (row := _next_row(reader, content, problems, line_end)) is not None:
        # line_num is the row's last line; a quoted newline makes a row span several.
        line, line_end = line_end + 1, reader.line_num
        rows += 1
        if rows > max_items:
            problems.add(f"line {line}", f"more than {max_items} items")
            return
        try:
            items.append(_transfer(row))
        except _RowError as exc:
            problems.add(f"line {line}", str(exc))
        except ProtocolError as exc:
            problems.add(f"line {line}", exc.message)


def _next_row(reader: "Reader", content: bytes, problems: ProblemLog,
              line_end: int) -> list[str] | None:
    """The next row, or None at the end or (after noting it) where the file cannot be read."""
    try:
        return next(reader, None)
    except UnicodeDecodeError:
        problems.add(f"line {_bad_utf8_line(content)}", "not valid UTF-8")
    except csv.Error as exc:
        problems.add(f"line {line_end + 1}", f"malformed CSV: {exc}")
    return None


def _transfer(row: list[str]) -> dict[str, Any]:
    if len(row) != len(HEADER):
        raise _RowError(f"expected {len(HEADER)} fields, found {len(row)}")
    transfer_id, debit, credit, amount, currency, reference = row
    if not _AMOUNT(amount):
        raise _RowError(f"amount {amount[:40]!r} must be a whole number of minor units (digits only)")
    return normalize_transfer({
        "id": transfer_id,
        "debit_account": debit,
        "credit_account": credit,
        # Too many digits is a bad amount, not a bad row: the ledger answers invalid_amount
        # (the digits stay text: int() of a huge one is slow, and it cannot be a valid amount).
        "amount": int(amount) if len(amount.lstrip("0")) <= _MONEY_DIGITS else amount,
        "currency": currency or None,
        "reference": reference or None,
    })


def _bad_utf8_line(content: bytes) -> int:
    """Line of the first invalid byte (only on the error path: decodes the whole file)."""
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        return content.count(b"\n", 0, exc.start) + 1
    return 1


def results_csv(rows: Iterable[tuple[int, str, str]]) -> bytes:
    """`index,id,status` for rows of (index, id, status); RFC 4180 (CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(("index", "id", "status"))
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
