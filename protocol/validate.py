"""The normalizers of the operations' arguments (protocol/ops.py names each op's).

Each normalizer returns a new dict with every optional key present (defaults
filled) and only plain msgpack-serializable values, because the server logs it
to the WAL and the ledger replays it. Unknown keys are refused (typos).
"""

import base64
import binascii
from typing import Any, Callable

from .fields import (
    bad, check_currency, check_keys, each_id, each_item, money_map, opt_bool, opt_cursor, opt_int,
    req_choice, req_currency, req_id, req_int, req_list, req_map, req_money, req_text,
)
from .transfer import normalize_transfer
from .values import MAX_ITEMS, MAX_MONEY, MAX_TEXT_CHARS, MAX_UINT63, is_money, is_valid_id

MAX_BATCH_ITEMS = 1_000_000
BATCH_FORMATS = ("csv", "json", "pain.001")
BATCH_MODES = ("atomic", "partial")


def _keys(*names: str) -> frozenset[str]:
    return frozenset(names)


_NO_KEYS = _keys()


def no_args(args: dict[str, Any]) -> dict[str, Any]:
    check_keys(args, _NO_KEYS)
    return {}


_HELLO = _keys("participant", "token")


def hello_args(args: dict[str, Any]) -> dict[str, Any]:
    check_keys(args, _HELLO)
    return {"participant": req_id(args, "participant"), "token": req_text(args, "token", MAX_TEXT_CHARS)}


# --- participants and accounts ---

_ROTATE_TOKEN = _keys("participant")


def rotate_token_args(args: dict[str, Any]) -> dict[str, Any]:
    """`participant` is a participant's id or "admin"; the server adds the new token's hash."""
    check_keys(args, _ROTATE_TOKEN)
    return {"participant": req_id(args, "participant")}


_CREATE_PARTICIPANTS = _keys("participants")
_PARTICIPANT = _keys("id", "name", "net_debit_cap")


def _participant(item: dict[str, Any]) -> dict[str, Any]:
    check_keys(item, _PARTICIPANT)
    cap = item.get("net_debit_cap")
    return {
        "id": req_id(item, "id"),
        "name": req_text(item, "name", MAX_TEXT_CHARS),
        "net_debit_cap": {} if cap is None else money_map(cap, "net_debit_cap", allow_null=False),
    }


def create_participants_args(args: dict[str, Any]) -> dict[str, Any]:
    check_keys(args, _CREATE_PARTICIPANTS)
    items = req_list(args, "participants", 1, MAX_ITEMS)
    return {"participants": each_item(items, "participants", _participant)}


_SET_PARTICIPANT = _keys("id", "net_debit_cap", "suspended", "settlement_accounts")


def set_participant_args(args: dict[str, Any]) -> dict[str, Any]:
    """None means unchanged; a null cap value removes that currency's cap.

    `settlement_accounts` (an addition) appears in the normalized args only when given, so the
    arguments of every earlier request, and their WAL records, stay as they were.
    """
    check_keys(args, _SET_PARTICIPANT)
    cap = args.get("net_debit_cap")
    out = {
        "id": req_id(args, "id"),
        "net_debit_cap": None if cap is None else money_map(cap, "net_debit_cap", allow_null=True),
        "suspended": opt_bool(args, "suspended", None),
    }
    accounts = args.get("settlement_accounts")
    if accounts is not None:
        out["settlement_accounts"] = _account_map(accounts, "settlement_accounts",
                                                  allow_null=True)
    return out


def _account_map(value: object, name: str, allow_null: bool) -> dict[str, Any]:
    """A map of currency code to account id (or to null when `allow_null`)."""
    value = req_map(value, name)
    if len(value) > MAX_ITEMS:
        raise bad(f"{name} may name at most {MAX_ITEMS} currencies")
    for currency, aid in value.items():
        check_currency(currency, f"{name} key")
        if not (is_valid_id(aid) or (allow_null and aid is None)):
            raise bad(f"{name}.{currency} must be an account id"
                      + (" or null" if allow_null else ""))
    return dict(value)


_CREATE_ACCOUNTS = _keys("accounts")
_ACCOUNT = _keys("id", "participant", "currency", "overdraft_limit")


def _account(item: dict[str, Any]) -> dict[str, Any]:
    """overdraft_limit: omitted means 0, an explicit null means unlimited (None)."""
    check_keys(item, _ACCOUNT)
    limit = item.get("overdraft_limit", 0)
    if limit is not None and not is_money(limit):
        raise bad(f"overdraft_limit must be an integer amount of minor units in 0..{MAX_MONEY} or null")
    return {
        "id": req_id(item, "id"),
        "participant": req_id(item, "participant"),
        "currency": req_currency(item, "currency"),
        "overdraft_limit": limit,
    }


def create_accounts_args(args: dict[str, Any]) -> dict[str, Any]:
    check_keys(args, _CREATE_ACCOUNTS)
    items = req_list(args, "accounts", 1, MAX_ITEMS)
    return {"accounts": each_item(items, "accounts", _account)}


# --- transfers and lookups ---

_CREATE_TRANSFERS = _keys("transfers")


def create_transfers_args(args: dict[str, Any]) -> dict[str, Any]:
    check_keys(args, _CREATE_TRANSFERS)
    items = req_list(args, "transfers", 1, MAX_ITEMS)
    return {"transfers": each_item(items, "transfers", normalize_transfer)}


_LOOKUP = _keys("ids")


def lookup_args(args: dict[str, Any]) -> dict[str, Any]:
    check_keys(args, _LOOKUP)
    return {"ids": each_id(req_list(args, "ids", 0, MAX_ITEMS), "ids")}


_ACCOUNT_TRANSFERS = _keys("account", "after", "limit")


def account_transfers_args(args: dict[str, Any]) -> dict[str, Any]:
    check_keys(args, _ACCOUNT_TRANSFERS)
    return {
        "account": req_id(args, "account"),
        "after": opt_cursor(args, "after"),
        "limit": opt_int(args, "limit", 1, MAX_ITEMS, 100),
    }


# --- settlement windows ---

_GET_WINDOW = _keys("window_id")


def window_id_args(args: dict[str, Any]) -> dict[str, Any]:
    check_keys(args, _GET_WINDOW)
    return {"window_id": req_int(args, "window_id", 1)}


_CLOSE_WINDOW = _keys("settle")
_SETTLE = _keys("hub_accounts")


def close_window_args(args: dict[str, Any]) -> dict[str, Any]:
    """`{}` or `{settle: {hub_accounts: {CUR: account}}}` (an addition: settlement postings).

    Without `settle` the normalized args are `{}`, as before the addition.
    """
    check_keys(args, _CLOSE_WINDOW)
    settle = args.get("settle")
    if settle is None:
        return {}
    req_map(settle, "settle")
    check_keys(settle, _SETTLE)
    hub = settle.get("hub_accounts")
    hub = _account_map(hub, "settle.hub_accounts", allow_null=False)
    if not hub:
        raise bad("settle.hub_accounts must name at least one currency's hub account")
    return {"settle": {"hub_accounts": hub}}


# --- batches ---

_UPLOAD_PART = _keys("batch_id", "seq", "data")


def upload_batch_part_args(args: dict[str, Any]) -> dict[str, Any]:
    check_keys(args, _UPLOAD_PART)
    return {
        "batch_id": req_id(args, "batch_id"),
        "seq": req_int(args, "seq", 0),
        "data": _part_data(args.get("data")),
    }


def _part_data(value: object) -> bytes:
    """MessagePack bin as is; a str must be canonical standard base64."""
    if type(value) is bytes:
        return value
    if type(value) is str:
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            data = None
        # Re-encoding refuses what b64decode forgives: non-zero padding bits.
        if data is not None and base64.b64encode(data).decode("ascii") == value:
            return data
    raise bad("data must be bytes (MessagePack bin) or a canonical base64 string")


_SUBMIT = _keys("batch_id", "format", "content", "items", "control_count", "control_sum", "mode")


def submit_batch_args(args: dict[str, Any]) -> dict[str, Any]:
    check_keys(args, _SUBMIT)
    batch_format = req_choice(args, "format", BATCH_FORMATS)
    content = _batch_content(args.get("content"))
    items = args.get("items")
    if items is not None:
        _check_batch_items(items, batch_format, content)
    return {
        "batch_id": req_id(args, "batch_id"),
        "format": batch_format,
        "content": content,
        "items": items,
        "control_count": req_int(args, "control_count", 0),
        "control_sum": req_money(args, "control_sum"),
        "mode": req_choice(args, "mode", BATCH_MODES),
    }


def _batch_content(value: object) -> bytes | None:
    """Content as bytes: a str (JSON text) is taken as its UTF-8 encoding."""
    if value is None:
        return None
    if type(value) is bytes:
        return value
    if type(value) is str:
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            raise bad("content must be valid Unicode text") from None
    raise bad("content must be a string, bytes or null")


def _check_batch_items(items: object, batch_format: str, content: bytes | None) -> None:
    """Shape only: each item is checked as a transfer when the batch is processed."""
    if batch_format != "json":
        raise bad("items are allowed only with format json")
    if content is not None:
        raise bad("content and items cannot be given together")
    if type(items) is not list or len(items) > MAX_BATCH_ITEMS:
        raise bad(f"items must be a list of at most {MAX_BATCH_ITEMS} maps")
    for index, item in enumerate(items):
        if type(item) is not dict:
            raise bad(f"items[{index}] must be a map")


def one_id(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The normalizer of args that are one id named `name`, such as `{batch_id}`."""
    keys = _keys(name)

    def normalize(args: dict[str, Any]) -> dict[str, Any]:
        check_keys(args, keys)
        return {name: req_id(args, name)}
    return normalize


_BATCH_RESULTS = _keys("batch_id", "offset", "limit")


def batch_results_args(args: dict[str, Any]) -> dict[str, Any]:
    check_keys(args, _BATCH_RESULTS)
    return {
        "batch_id": req_id(args, "batch_id"),
        "offset": opt_int(args, "offset", 0, MAX_UINT63, 0),
        "limit": opt_int(args, "limit", 1, MAX_ITEMS, 1000),
    }
