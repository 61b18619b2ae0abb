"""The currencies a switch accepts: ISO 4217's active codes with minor units, plus the extra
codes its operator allows (`extra_currencies`).

The table holds the active codes of ISO 4217 list one (2025) with their minor units. Codes whose
minor unit is "N.A." (precious metals XAU/XAG/XPD/XPT, units of account XDR/XSU/XUA, bond units
XBA-XBD, XTS, XXX) are left out on purpose: they cannot be paid in minor units, so they are
refused like an unknown code unless the operator allows them.

Which extra codes are accepted is a setting of the process, made once at start by the switch
and by each of its helper processes (the decode worker, the batch parse worker), because every
request shape is checked by the pure `protocol` functions that run there. It is checked at
admission only: the write-ahead log holds requests already checked, so a log written with an
extra code replays whatever the setting is now.
"""
from typing import Iterable

__all__ = ["MINOR_UNITS", "ISO_4217", "minor_units", "accept_currencies", "is_accepted_currency",
           "accepted_extra_currencies", "unknown_currency_reason"]

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
ISO_4217 = frozenset(MINOR_UNITS)

_extra: frozenset[str] = frozenset()
_any_code = False


def minor_units(currency: str) -> int | None:
    """Decimal places of an ISO 4217 code (JPY 0, EUR 2, BHD 3, CLF 4), None if unknown."""
    return MINOR_UNITS.get(currency)


def accept_currencies(extra: Iterable[str], any_code: bool = False) -> None:
    """This process accepts ISO 4217 and the codes in `extra` from now on; with `any_code`, any
    well-formed code (a batch parse worker re-reading a batch accepted before a restart)."""
    global _extra, _any_code
    _extra = frozenset(extra)
    _any_code = any_code


def accepted_extra_currencies() -> frozenset[str]:
    return _extra


def is_accepted_currency(code: str) -> bool:
    """For a well-formed code (3 uppercase ASCII letters)."""
    return code in ISO_4217 or code in _extra or _any_code


def unknown_currency_reason(code: str) -> str:
    """Why a well-formed code is refused, naming it and what would be accepted."""
    allowed = f" nor one of the extra currencies allowed here ({', '.join(sorted(_extra))})" \
        if _extra else " and no extra currencies are allowed here"
    return f"{code!r} is not an active ISO 4217 currency code,{allowed}"
