"""Readers for one field of an argument map; each raises `bad_request` naming it.

For optional fields an explicit null means the same as omitting the field
(clients may send back records, whose missing fields read as null).
"""

from typing import Any, Callable, Mapping

from .codes import BAD_REQUEST
from .currencies import ISO_4217, is_accepted_currency, unknown_currency_reason
from .errors import ProtocolError
from .values import MAX_UINT63, is_money, is_valid_currency, is_valid_id

# A request's args, or one item of them, as decoded.
Args = Mapping[str, object]

_ID_RULE = "must be a string of 1-64 characters from A-Z a-z 0-9 . _ : -"


def bad(message: str) -> ProtocolError:
    return ProtocolError(BAD_REQUEST, message)


def check_keys(obj: Args, allowed: frozenset[str]) -> None:
    """Refuse keys outside `allowed`, so that a misspelt optional field is not ignored."""
    if not allowed.issuperset(obj):
        unknown = next(key for key in obj if key not in allowed)
        raise bad(f"unknown field {unknown!r}")


def req_id(obj: Args, key: str) -> str:
    value = obj.get(key)
    if not is_valid_id(value):
        raise bad(f"{key} {_ID_RULE}")
    return value


def opt_id(obj: Args, key: str) -> str | None:
    value = obj.get(key)
    if value is None or is_valid_id(value):
        return value
    raise bad(f"{key} {_ID_RULE}")


def check_currency(value: object, name: str) -> str:
    """A well-formed currency code this switch accepts (ISO 4217 or an operator's extra code);
    `bad_request` naming `name` and the value otherwise."""
    if type(value) is str and value in ISO_4217:  # nearly every code: one lookup
        return value
    if not is_valid_currency(value):
        shown = f" {value[:20]!r}" if isinstance(value, str) else ""
        raise bad(f"{name}{shown} must be a currency code of 3 uppercase letters")
    if not is_accepted_currency(value):
        raise bad(f"{name} {unknown_currency_reason(value)}")
    return value


def req_currency(obj: Args, key: str) -> str:
    return check_currency(obj.get(key), key)


def opt_currency(obj: Args, key: str) -> str | None:
    value = obj.get(key)
    return None if value is None else check_currency(value, key)


def req_text(obj: Args, key: str, max_chars: int, min_chars: int = 1) -> str:
    value = obj.get(key)
    if type(value) is not str or not min_chars <= len(value) <= max_chars:
        raise bad(f"{key} must be a string of {min_chars}-{max_chars} characters")
    return value


def opt_text(obj: Args, key: str, max_chars: int) -> str | None:
    value = obj.get(key)
    return None if value is None else req_text(obj, key, max_chars, 0)


def opt_bool(obj: Args, key: str, default: bool | None) -> bool | None:
    value = obj.get(key)
    if value is None:
        return default
    if type(value) is not bool:
        raise bad(f"{key} must be true or false")
    return value


def req_int(obj: Args, key: str, lo: int, hi: int = MAX_UINT63) -> int:
    value = obj.get(key)
    if type(value) is not int or not lo <= value <= hi:
        raise bad(f"{key} must be an integer in {lo}..{hi}")
    return value


def opt_int(obj: Args, key: str, lo: int, hi: int, default: int | None) -> int | None:
    value = obj.get(key)
    return default if value is None else req_int(obj, key, lo, hi)


def opt_cursor(obj: Args, key: str) -> int | None:
    """An optional integer in 0..2^63-1, or the same number as a decimal string: clients whose
    JSON numbers are doubles (JavaScript) cannot carry every integer past 2^53 exactly."""
    value = obj.get(key)
    if value is None or (type(value) is int and 0 <= value <= MAX_UINT63):
        return value
    # At most 19 digits bounds int()'s work before the range check.
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 19:
        number = int(value)
        if number <= MAX_UINT63:
            return number
    if type(value) in (list, dict):  # the repr of a deeply nested one would exhaust the stack
        shown = "a list" if type(value) is list else "a map"
    else:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise bad(f"{key} {shown} must be an integer in 0..{MAX_UINT63} or a string of its "
              f"decimal digits")


def req_money(obj: Args, key: str) -> int:
    value = obj.get(key)
    if not is_money(value):
        raise bad(f"{key} must be an integer amount of minor units in 0..{MAX_UINT63}")
    return value


def req_choice(obj: Args, key: str, choices: tuple[str, ...]) -> str:
    value = obj.get(key)
    if type(value) is not str or value not in choices:
        raise bad(f"{key} must be one of {', '.join(choices)}")
    return value


def req_list(obj: Args, key: str, min_items: int, max_items: int) -> list[Any]:
    value = obj.get(key)
    if type(value) is not list or not min_items <= len(value) <= max_items:
        raise bad(f"{key} must be a list of {min_items}-{max_items} items")
    return value


def req_map(value: object, name: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise bad(f"{name} must be a map")
    return value


def each_item(items: list[Any], name: str,
              normalize: Callable[[dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
    """Normalize every map in `items`, naming the failing one by its index."""
    out = []
    for index, item in enumerate(items):
        if type(item) is not dict:
            raise bad(f"{name}[{index}] must be a map")
        try:
            out.append(normalize(item))
        except ProtocolError as exc:
            raise ProtocolError(exc.code, f"{name}[{index}]: {exc.message}") from None
    return out


def each_id(items: list[Any], name: str) -> list[str]:
    for index, value in enumerate(items):
        if not is_valid_id(value):
            raise bad(f"{name}[{index}] {_ID_RULE}")
    return list(items)


def money_map(value: object, name: str, allow_null: bool) -> dict[str, int | None]:
    """A map of currency code to money (or to null when `allow_null`)."""
    checked = req_map(value, name)
    for currency, amount in checked.items():
        check_currency(currency, f"{name} key")
        if not (is_money(amount) or (allow_null and amount is None)):
            raise bad(f"{name}.{currency} must be an integer amount of minor units in 0..{MAX_UINT63}"
                      + (" or null" if allow_null else ""))
    return dict(checked)
