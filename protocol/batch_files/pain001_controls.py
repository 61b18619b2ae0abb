"""pain.001 control totals: NbOfTxs and CtrlSum against the transactions, exactly."""

import re
from decimal import Decimal

from .parsed import ProblemLog

__all__ = ["Tally", "check_controls"]

_COUNT = re.compile(r"[0-9]{1,15}")  # Max15NumericText
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")  # xs:decimal
_MAX_DECIMAL_CHARS = 64  # CtrlSum has at most 18 digits; bound hostile input


class Tally:
    """Count and exact major-unit sum of some transactions (a PmtInf, or the whole file)."""

    __slots__ = ("count", "exact", "_minor")

    def __init__(self) -> None:
        self.count = 0
        self.exact = True  # False once an amount could not be read: no sum to compare
        self._minor: dict[int, int] = {}  # currency decimals -> sum of amounts in minor units

    def add(self, minor: int, decimals: int) -> None:
        self.count += 1
        self._minor[decimals] = self._minor.get(decimals, 0) + minor

    def add_unreadable(self) -> None:
        self.count += 1
        self.exact = False

    def major_sum(self) -> Decimal:
        """The sum as written in major units, mixing currencies like CtrlSum does."""
        top = max(self._minor, default=0)
        scaled = sum(minor * 10 ** (top - decimals) for decimals, minor in self._minor.items())
        return Decimal(f"{scaled}E-{top}")  # the constructor is exact; arithmetic would round


def check_controls(where: str, tally: Tally, nb_of_txs: str | None, ctrl_sum: str | None,
                   problems: ProblemLog, count_required: bool) -> None:
    """Note NbOfTxs/CtrlSum that do not match `tally` (CtrlSum only when present)."""
    if nb_of_txs is None:
        if count_required:
            problems.add(where, "NbOfTxs missing")
    elif not _COUNT.fullmatch(nb_of_txs.strip()):
        problems.add(where, f"NbOfTxs {nb_of_txs[:40]!r} is not a number")
    elif int(nb_of_txs) != tally.count:
        problems.add(where, f"NbOfTxs is {int(nb_of_txs)} but there are {tally.count} transactions")
    if ctrl_sum is None:
        return
    text = ctrl_sum.strip()
    if len(text) > _MAX_DECIMAL_CHARS or not _DECIMAL.fullmatch(text):
        problems.add(where, f"CtrlSum {ctrl_sum[:40]!r} is not a decimal number")
    elif tally.exact and Decimal(text) != tally.major_sum():
        problems.add(where, f"CtrlSum is {text} but the transactions sum to {tally.major_sum():f}")
