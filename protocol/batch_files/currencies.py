"""Exact conversion of major-unit decimals (pain.001 amounts) to minor units.

The ISO 4217 table itself is `protocol.currencies`, shared by the server and the client.
"""

import re

from ..currencies import (
    MINOR_UNITS, is_accepted_currency, minor_units, unknown_currency_reason,
)
from ..values import is_valid_currency

__all__ = ["MINOR_UNITS", "minor_units", "to_minor_units"]

# xs:decimal's lexical form (the type of ISO 20022 amounts), ASCII digits only.
_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")
# Far beyond 2^63 minor units, small enough that int() stays cheap on hostile input.
_MAX_DIGITS = 40


def to_minor_units(decimal_text: str, currency: str) -> int:
    """'10.50' EUR -> 1050, exactly (no float). ValueError says what is wrong.

    The text may carry at most as many decimals as the currency has minor
    units ('1.5' JPY and '1.500' EUR are refused, as in SEPA/CBPR+ schemas);
    a sign other than '+' is refused. Zero converts to 0: whether zero is an
    acceptable amount is the caller's rule.
    """
    digits = minor_units(currency)
    if digits is None:
        if not is_valid_currency(currency):
            raise ValueError(f"Ccy {currency[:10]!r} must be a currency code of 3 uppercase "
                             f"letters")
        if not is_accepted_currency(currency):
            raise ValueError(f"Ccy {unknown_currency_reason(currency)}")
        raise ValueError(f"Ccy {currency!r} is allowed here but has no ISO 4217 minor units,"
                         f" so a pain.001 amount in it cannot be converted; send these items as"
                         f" CSV or JSON, in minor units")
    text = decimal_text.strip(" \t\r\n")  # xs:decimal collapses whitespace
    match = _DECIMAL.fullmatch(text)
    if match is None or not (match[2] or match[3]):
        raise ValueError(f"amount {decimal_text[:50]!r} is not a decimal number")
    sign, whole, fraction = match[1], match[2], match[3] or ""
    if sign == "-":
        raise ValueError(f"amount {text[:50]!r} is negative")
    if len(fraction) > digits:
        raise ValueError(
            f"amount {text[:50]!r} has {len(fraction)} decimals, {currency} allows {digits}")
    if len(whole.lstrip("0")) + digits > _MAX_DIGITS:
        raise ValueError(f"amount {text[:50]!r} is too large")
    return int((whole or "0") + fraction.ljust(digits, "0"))
