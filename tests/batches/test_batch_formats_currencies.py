"""ISO 4217 minor units and exact decimal -> minor-unit conversion."""

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from payswitch.protocol.batch_files import minor_units, to_minor_units
from payswitch.protocol.batch_files.currencies import MINOR_UNITS

CURRENCIES = sorted(MINOR_UNITS)


def test_table_knows_the_exceptions_to_two_decimals():
    assert {code: minor_units(code) for code in ("EUR", "USD", "GBP", "JPY", "KRW", "ISK", "BHD",
                                                 "KWD", "TND", "CLF", "UYW", "XOF")} == {
        "EUR": 2, "USD": 2, "GBP": 2, "JPY": 0, "KRW": 0, "ISK": 0, "BHD": 3, "KWD": 3, "TND": 3,
        "CLF": 4, "UYW": 4, "XOF": 0}
    assert len(MINOR_UNITS) > 150
    assert minor_units("XAU") is None and minor_units("ABC") is None and minor_units("eur") is None


@pytest.mark.parametrize("text, currency, minor", [
    ("0.10", "EUR", 10), ("1.005", "BHD", 1005), ("100", "JPY", 100), ("0", "EUR", 0),
    ("+3.1", "USD", 310), ("007.50", "GBP", 750), ("1.2345", "CLF", 12345),
    ("92233720368547758.07", "EUR", 2**63 - 1), ("123456789012345678901234567890", "JPY",
                                                   123456789012345678901234567890),
])
def test_exact_conversions(text, currency, minor):
    assert to_minor_units(text, currency) == minor


@pytest.mark.parametrize("text, currency, words", [
    ("1.5", "JPY", "1 decimals, JPY allows 0"), ("1.001", "EUR", "3 decimals"),
    ("-1", "EUR", "negative"), ("", "EUR", "not a decimal"), ("1 000", "EUR", "not a decimal"),
    ("NaN", "EUR", "not a decimal"), ("Infinity", "EUR", "not a decimal"),
    ("1" * 41, "EUR", "too large"), ("1", "XXX", "'XXX' is not an active ISO 4217"),
])
def test_refusals_say_why(text, currency, words):
    with pytest.raises(ValueError, match=words):
        to_minor_units(text, currency)


@given(st.sampled_from(CURRENCIES), st.integers(0, 10**20), st.booleans())
def test_formatted_major_amounts_round_trip_exactly(currency, minor, trim):
    digits = MINOR_UNITS[currency]
    major = Decimal(minor).scaleb(-digits)
    text = format(major.normalize() if trim else major, "f")  # "1.5" as well as "1.50"
    assert to_minor_units(text, currency) == minor


@given(st.sampled_from(CURRENCIES), st.integers(1, 10**12), st.integers(1, 4))
def test_more_decimals_than_the_currency_has_is_refused(currency, minor, extra):
    digits = MINOR_UNITS[currency]
    text = format(Decimal(minor * 10**extra + 1).scaleb(-(digits + extra)), "f")
    with pytest.raises(ValueError, match="decimals"):
        to_minor_units(text, currency)
