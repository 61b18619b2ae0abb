"""ISO 4217 minor units, and exact conversion of major-unit decimals to minor units.

The table holds the active codes of ISO 4217 list one (2025). Codes whose minor
unit is "N.A." (precious metals XAU/XAG/XPD/XPT, units of account XDR/XSU/XUA,
bond units XBA-XBD, XTS, XXX) are left out on purpose: they cannot be paid in
minor units, so a file using them is refused like an unknown code.
"""

import re

__all__ = ["MINOR_UNITS", "minor_units", "to_minor_units"]

_BY_DIGITS = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    2: """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP
          BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD
          FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD
          KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD
          NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP
          SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED
          VES WST XCD XCG YER ZAR ZMW ZWG""",
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
}
MINOR_UNITS: dict[str, int] = {
    code: digits for digits, codes in _BY_DIGITS.items() for code in codes.split()
}

# xs:decimal's lexical form (the type of ISO 20022 amounts), ASCII digits only.
_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?")
# Far beyond 2^63 minor units, small enough that int() stays cheap on hostile input.
_MAX_DIGITS = 40


def minor_units(currency: str) -> int | None:
    """Decimal places of an ISO 4217 code (JPY 0, EUR 2, BHD 3, CLF 4), None if unknown."""
    return MINOR_UNITS.get(currency)


def to_minor_units(decimal_text: str, currency: str) -> int:
    """'10.50' EUR -> 1050, exactly (no float). ValueError says what is wrong.

    The text may carry at most as many decimals as the currency has minor
    units ('1.5' JPY and '1.500' EUR are refused, as in SEPA/CBPR+ schemas);
    a sign other than '+' is refused. Zero converts to 0: whether zero is an
    acceptable amount is the caller's rule.
    """
    digits = minor_units(currency)
    if digits is None:
        raise ValueError(f"unknown currency {currency!r}: not an ISO 4217 code with minor units")
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
