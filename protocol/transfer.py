"""Normalization of one transfer item (`create_transfers` items, `transfer` args)."""

import json
from operator import itemgetter
from typing import Any

from .fields import bad, check_keys, opt_bool, opt_currency, opt_id, opt_int, opt_text, req_id
from .values import (MAX_TEXT_CHARS, MAX_TIMEOUT_SECONDS, all_amounts, id_lines,
                     are_valid_ids, is_amount)

__all__ = ["normalize_transfer", "plain_transfer", "plain_fields", "plain_columns",
           "plain_normalized", "TRANSFER_FIELDS"]

TRANSFER_FIELDS = (
    "id", "debit_account", "credit_account", "amount", "currency", "reference",
    "pending", "timeout", "post_pending_id", "void_pending_id", "linked",
)
_ALLOWED = frozenset(TRANSFER_FIELDS)
# The shape nearly every transfer has: one phase, no currency, reference or link.
_PLAIN = frozenset(("id", "debit_account", "credit_account", "amount"))
_PLAIN_LENGTH = frozenset((len(_PLAIN),))
# What reads each of a plain transfer's fields from its map, in plain_fields' order
_FIELDS = tuple(map(itemgetter, ("id", "debit_account", "credit_account", "amount")))


def normalize_transfer(item: dict[str, Any]) -> dict[str, Any]:
    """Every field present, defaults filled; raises `bad_request` for structural faults.

    An amount that is present but invalid becomes 0: that is the item status
    `invalid_amount`, decided by the ledger, not a failure of the request. Such an item alone
    gets one more key, `amount_sent`: what was sent, as its message names it.
    """
    plain = plain_transfer(item)
    if plain is not None:
        return plain
    if type(item) is not dict:
        raise bad("transfer must be a map")
    check_keys(item, _ALLOWED)
    transfer_id = req_id(item, "id")
    post_id = opt_id(item, "post_pending_id")
    void_id = opt_id(item, "void_pending_id")
    pending = opt_bool(item, "pending", False)
    timeout = opt_int(item, "timeout", 0, MAX_TIMEOUT_SECONDS, 0)
    resolves = post_id is not None or void_id is not None
    _check_kind(post_id, void_id, pending, timeout)
    debit = opt_id(item, "debit_account")
    credit = opt_id(item, "credit_account")
    if not resolves and (debit is None or credit is None):
        raise bad("debit_account and credit_account are required (except on a post or void)")
    amount = _amount(item, required=not resolves)
    normalized = {
        "id": transfer_id,
        "debit_account": debit,
        "credit_account": credit,
        "amount": amount,
        "currency": opt_currency(item, "currency"),
        "reference": opt_text(item, "reference", MAX_TEXT_CHARS),
        "pending": pending,
        "timeout": timeout,
        "post_pending_id": post_id,
        "void_pending_id": void_id,
        "linked": opt_bool(item, "linked", False),
    }
    if amount == 0:
        normalized["amount_sent"] = shown_amount(item["amount"])
    return normalized


def plain_transfer(item: object) -> dict[str, Any] | None:
    """The normalized form of a well-formed transfer of the plain shape, in one step (60% of
    the general path's cost, which counts in batches of 8,190); None for anything else,
    including every fault, which the general path words."""
    fields = plain_fields(item)
    return None if fields is None else plain_normalized(*fields)


def plain_fields(item: object) -> tuple[str, str, str, int] | None:
    """(id, debit_account, credit_account, amount) of a well-formed transfer of the plain shape
    (those four keys, nothing else); None for anything else."""
    if type(item) is not dict or item.keys() != _PLAIN:
        return None
    transfer_id, debit = item["id"], item["debit_account"]
    credit, amount = item["credit_account"], item["amount"]
    if not (is_amount(amount) and are_valid_ids(transfer_id, debit, credit)):
        return None
    return transfer_id, debit, credit, amount


def plain_columns(items: list[Any]) -> dict[str, Any] | None:
    """The fields of transfers (at least one, as a decoder makes them) that all have the plain
    shape, one column per field, in item order: what plain_fields gives each, checked a column
    at a time without a Python call per item (about a quarter of plain_fields' cost, which
    counts in batches of 8,190); None when any item is not one.

    {ids, debit_accounts, credit_accounts, amounts}: each column of ids is one string, the ids
    one a line (id_lines: no id holds a newline), so that handing the batch to the switch and
    logging it costs next to nothing per id; amounts is a list."""
    try:  # maps of four keys, and these four among them: the plain keys exactly
        if set(map(len, items)) != _PLAIN_LENGTH:
            return None
        ids, debits, credits, amounts = (list(map(field, items)) for field in _FIELDS)
    except (KeyError, TypeError):  # a key missing, or an item that is not a map
        return None
    if not all_amounts(amounts):
        return None
    columns = {"ids": id_lines(ids), "debit_accounts": id_lines(debits),
               "credit_accounts": id_lines(credits), "amounts": amounts}
    return None if None in columns.values() else columns


def plain_normalized(transfer_id: str, debit: str, credit: str, amount: int) -> dict[str, Any]:
    """The normalized form of a plain transfer with these (valid) fields."""
    return {
        "id": transfer_id, "debit_account": debit, "credit_account": credit, "amount": amount,
        "currency": None, "reference": None, "pending": False, "timeout": 0,
        "post_pending_id": None, "void_pending_id": None, "linked": False,
    }


def _check_kind(post_id: str | None, void_id: str | None, pending: bool | None,
                timeout: int | None) -> None:
    if post_id is not None and void_id is not None:
        raise bad("post_pending_id and void_pending_id cannot be given together")
    if pending and (post_id is not None or void_id is not None):
        raise bad("pending cannot be combined with post_pending_id or void_pending_id")
    if timeout and not pending:
        raise bad("timeout is allowed only with pending: true")


def shown_amount(value: object) -> str:
    """An invalid amount as a message names it: in JSON notation, at most 40 characters."""
    shown = _SHOWN_TYPES.get(type(value))
    if shown is not None:
        return shown
    if type(value) is int and abs(value) >= 10**40:
        return "(an integer of more than 40 digits)"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


_SHOWN_TYPES: dict[type, str] = {dict: "(a map)", list: "(a list)", bytes: "(bytes)"}


def _amount(item: dict[str, Any], required: bool) -> int | None:
    value = item.get("amount")
    if value is None:
        if required:
            raise bad("amount is required (except on a post or void)")
        return None
    return value if is_amount(value) else 0
