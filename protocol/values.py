"""Value rules of the wire contract: ids, currencies, money and limits."""

import re
from typing import TypeGuard

__all__ = [
    "MAX_MONEY", "MAX_ITEMS", "MAX_TEXT_CHARS", "MAX_TIMEOUT_SECONDS", "MAX_UINT63",
    "is_valid_id", "are_valid_ids", "all_valid_ids", "is_valid_currency", "is_money", "is_amount",
    "all_amounts",
]

MAX_UINT63 = 2**63 - 1
MAX_MONEY = MAX_UINT63
MAX_ITEMS = 8190  # items per request (create_*, lookup_*, page limits)
MAX_TEXT_CHARS = 256  # names, tokens, references
MAX_TIMEOUT_SECONDS = 2**32 - 1

_ID = r"[A-Za-z0-9._:-]{1,64}"
# Measured faster than a frozenset superset check for typical ids.
_match_id = re.compile(_ID).fullmatch
# Three ids in one match (a transfer's), joined by a newline, which no id contains.
_match_three_ids = re.compile("\n".join((_ID, _ID, _ID))).fullmatch
# Any number of ids, one a line: a column of a batch's ids in one match.
_match_id_lines = re.compile(f"(?:{_ID}\n)*{_ID}").fullmatch
_STR, _INT = frozenset((str,)), frozenset((int,))


def is_valid_id(value: object) -> TypeGuard[str]:
    """1-64 characters of A-Z a-z 0-9 . _ : -"""
    return type(value) is str and _match_id(value) is not None


def are_valid_ids(first: object, second: object, third: object) -> bool:
    """is_valid_id of all three, at the cost of one (a plain transfer's ids)."""
    return (type(first) is str and type(second) is str and type(third) is str
            and _match_three_ids(f"{first}\n{second}\n{third}") is not None)


def all_valid_ids(values: list[object]) -> bool:
    """is_valid_id of every value, and at least one, in one match: about a tenth of a call per
    value (a column of a batch's ids)."""
    if set(map(type, values)) != _STR:
        return False
    lines = "\n".join(values)  # type: ignore[arg-type]  # every value is a str
    # as many lines as values: a value holding a newline is not one id
    return lines.count("\n") == len(values) - 1 and _match_id_lines(lines) is not None


def is_valid_currency(value: object) -> TypeGuard[str]:
    """Exactly three ASCII uppercase letters (an ISO 4217 alphabetic code)."""
    return type(value) is str and len(value) == 3 and value.isascii() and value.isalpha() and value.isupper()


def is_money(value: object) -> TypeGuard[int]:
    """An int (not a bool) in 0..2^63-1."""
    return type(value) is int and 0 <= value <= MAX_MONEY


def is_amount(value: object) -> TypeGuard[int]:
    """A transfer amount: an int (not a bool) in 1..2^63-1."""
    return type(value) is int and 0 < value <= MAX_MONEY


def all_amounts(values: list[object]) -> bool:
    """is_amount of every value, and at least one, without a call per value (a column of a
    batch's amounts)."""
    return (set(map(type, values)) == _INT
            and 0 < min(values) and max(values) <= MAX_MONEY)  # type: ignore[type-var]
