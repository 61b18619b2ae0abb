"""Clearing: per-participant positions, the bilateral matrix, net debit caps and windows.

Everything a window report needs is kept incrementally as money moves (O(1) per transfer), so
closing a window costs time in proportion to the positions with activity, never to the transfers
in it. The closed window's bilateral matrix is handed over as it stands (the payers' `owes` maps)
and turned into sorted rows only when first read, so a close stays O(positions) even when every
pair of participants traded.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Iterable, NamedTuple

from .codes import ADMIN

if TYPE_CHECKING:
    from .records import Account, Result


class PositionRow(NamedTuple):
    """A window's position of one participant in one currency (interbank money moved)."""
    participant: str
    currency: str
    debits: int
    credits: int


class MatrixRow(NamedTuple):
    """One cell of a window's bilateral matrix: what `payer` paid `payee`, gross."""
    payer: str
    payee: str
    currency: str
    amount: int


class SettlementEntry(NamedTuple):
    """The settlement posting of one participant's net in one currency."""
    participant: str
    currency: str
    transfer_id: str


class Position:
    """One participant's position in one currency.

    debits/credits count interbank money moved in the open window; reserved counts
    the participant's outgoing interbank pending transfers (independent of windows);
    owes is this participant's row of the open window's bilateral matrix: payee Position ->
    gross amount paid to it (an entry can fall back to 0 when a linked chain rolls back);
    moves counts the open window's interbank moves paid or received here (a participant's
    report counts its own transfers, not everyone's).
    """

    __slots__ = ("participant", "currency", "debits", "credits", "reserved", "owes", "moves")

    def __init__(self, participant: str, currency: str) -> None:
        self.participant = participant
        self.currency = currency
        self.debits = 0
        self.credits = 0
        self.reserved = 0
        self.owes: dict[Position, int] = {}
        self.moves = 0


class Window:
    __slots__ = ("window_id", "opened_at", "closed_at", "transfers", "rows", "matrix",
                 "settlement", "owes", "participant_transfers")

    def __init__(self, window_id: int, opened_at: int, closed_at: int | None = None,
                 transfers: int = 0, rows: list[PositionRow] | None = None,
                 matrix: list[MatrixRow] | None = None,
                 settlement: list[SettlementEntry] | None = None,
                 participant_transfers: dict[str, int] | None = None) -> None:
        self.window_id = window_id
        self.opened_at = opened_at
        self.closed_at = closed_at  # None while open
        self.transfers = transfers  # interbank one-phase transfers and posts
        self.rows = rows  # closed: sorted
        self.matrix = matrix  # closed: sorted, amounts > 0 (see closed_matrix)
        # closed with settlement postings: in the order of the instructions; None when the
        # window was closed without postings (or is open)
        self.settlement = settlement
        # just closed: [(payer Position, its owes map)] until first read
        self.owes: list[tuple[Position, dict[Position, int]]] | None = None
        # closed: participant -> its interbank transfers and posts in the window (as payer or
        # payee); None while open (the positions' `moves` count then)
        self.participant_transfers = participant_transfers

    def closed_matrix(self) -> list[MatrixRow] | None:
        """The closed window's matrix rows, built from the handed-over maps on first use."""
        if self.matrix is None and self.owes is not None:
            self.matrix = _matrix_rows(self.owes)
            self.owes = None
        return self.matrix


def within_cap(account: Account, amount: int) -> bool:
    """Whether debiting `amount` interbank from `account` keeps its owner within cap."""
    cap = account.owner.caps.get(account.currency)
    if cap is None:
        return True
    pos = account.position
    return pos.debits - pos.credits + pos.reserved + amount <= cap


class Clearing:
    __slots__ = ("positions", "windows", "window")

    def __init__(self) -> None:
        self.positions: dict[tuple[str, str], Position] = {}  # (participant, currency) ->
        self.windows: list[Window] = []  # oldest first; the last one is open once any exists
        self.window: Window | None = None  # the open window

    def position(self, participant: str, currency: str) -> Position:
        key = (participant, currency)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Position(participant, currency)
        return pos

    def move(self, payer: Position, payee: Position, amount: int) -> None:
        """Money moved interbank; a negative amount undoes a move of a rolled back chain."""
        payer.debits += amount
        payee.credits += amount
        owes = payer.owes
        owes[payee] = owes.get(payee, 0) + amount
        step = 1 if amount > 0 else -1
        payer.moves += step
        payee.moves += step
        window = self.window
        if window is None:  # the ledger opens window 1 at its first change, before any move
            raise AssertionError("money moved with no window open")
        window.transfers += step

    def open(self, at: int) -> Window:
        window = self.window = Window(len(self.windows) + 1, at)
        self.windows.append(window)
        return window

    def close(self, at: int, settlement: list[SettlementEntry] | None = None) -> Window:
        """Close the open window at `at` and open the next; O(positions), not transfers.

        `settlement` is the window's list of settlement postings (see Window.settlement).
        """
        window = self.window if self.window is not None else self.open(at)
        window.rows = self.active_rows()
        check_nets(window.rows)
        owes = []
        counts: dict[str, int] = {}
        for pos in self.positions.values():
            if pos.debits or pos.credits or pos.owes or pos.moves:
                if pos.owes:
                    owes.append((pos, pos.owes))
                if pos.moves:
                    counts[pos.participant] = counts.get(pos.participant, 0) + pos.moves
                pos.debits = pos.credits = pos.moves = 0
                pos.owes = {}
        window.owes = owes
        window.participant_transfers = counts
        window.closed_at = at
        window.settlement = settlement
        self.open(at)
        return window

    def active_rows(self) -> list[PositionRow]:
        return [PositionRow(pid, cur, pos.debits, pos.credits)
                for (pid, cur), pos in sorted(self.positions.items())
                if pos.debits or pos.credits]

    def matrix_rows(self) -> list[MatrixRow]:
        """The open window's bilateral matrix, sorted."""
        return _matrix_rows((pos, pos.owes) for pos in self.positions.values() if pos.owes)

    def window_matrix(self, window: Window) -> list[MatrixRow] | None:
        return window.closed_matrix() if window.closed_at is not None else self.matrix_rows()

    def window_rows(self, window: Window) -> list[PositionRow]:
        if window.closed_at is not None and window.rows is not None:
            return window.rows
        return self.active_rows()

    def window_participant_transfers(self, window: Window) -> dict[str, int]:
        """participant -> its interbank transfers and posts in `window` (so far, when open)."""
        if window.closed_at is not None and window.participant_transfers is not None:
            return window.participant_transfers
        counts: dict[str, int] = {}
        for (pid, _), pos in self.positions.items():
            if pos.moves:
                counts[pid] = counts.get(pid, 0) + pos.moves
        return counts

    def report(self, window: Window, caller: str) -> Result:
        """The window's report; a participant's counts only transfers touching its accounts."""
        rows = self.window_rows(window)
        settlement = window.settlement
        transfers = window.transfers
        if caller != ADMIN:
            transfers = self.window_participant_transfers(window).get(caller, 0)
            rows = [row for row in rows if row.participant == caller]
            if settlement is not None:
                settlement = [entry for entry in settlement if entry.participant == caller]
        return {"window_id": window.window_id,
                "state": "open" if window.closed_at is None else "closed",
                "opened_at": window.opened_at, "closed_at": window.closed_at,
                "transfers": transfers,
                "positions": [{"participant": pid, "currency": cur, "debits": d,
                               "credits": c, "net": c - d} for pid, cur, d, c in rows],
                "instructions": [instruction(pid, cur, c - d)
                                 for pid, cur, d, c in rows if c != d],
                "settlement_transfers": None if settlement is None
                else [entry.transfer_id for entry in settlement]}

    def matrix_report(self, window: Window, caller: str) -> Result:
        rows = self.window_matrix(window) or []
        if caller != ADMIN:
            rows = [row for row in rows if caller == row.payer or caller == row.payee]
        return {"window_id": window.window_id,
                "state": "open" if window.closed_at is None else "closed",
                "rows": [{"payer": payer, "payee": payee, "currency": cur, "amount": amount}
                         for payer, payee, cur, amount in rows]}

    def listing(self) -> list[Result]:
        return [{"window_id": w.window_id, "state": "open" if w.closed_at is None else "closed",
                 "opened_at": w.opened_at, "closed_at": w.closed_at} for w in self.windows]


def _matrix_rows(owes: Iterable[tuple[Position, dict[Position, int]]]) -> list[MatrixRow]:
    """The sorted matrix rows of (payer Position, owes map) pairs."""
    rows = [MatrixRow(pos.participant, payee.participant, pos.currency, amount)
            for pos, payees in owes for payee, amount in payees.items() if amount]
    rows.sort()
    return rows


def settlement_id(window_id: int, participant: str, currency: str) -> str:
    """The deterministic id of the posting that settles `participant`'s `currency` net of a
    window: `settle:<window_id>:<participant>:<CUR>`, or, when that would pass the 64
    characters an id may have, the participant replaced by 16 hex digits of its SHA-256."""
    tid = f"settle:{window_id}:{participant}:{currency}"
    if len(tid) > 64:
        digest = hashlib.sha256(participant.encode()).hexdigest()[:16]
        tid = f"settle:{window_id}:{digest}:{currency}"
    return tid


def instruction(participant: str, currency: str, net: int) -> Result:
    if net < 0:
        return {"participant": participant, "currency": currency, "pay": -net}
    return {"participant": participant, "currency": currency, "receive": net}


def check_nets(rows: list[PositionRow]) -> None:
    """Every interbank move debits one participant and credits another: nets sum to 0."""
    sums: dict[str, int] = {}
    for _, cur, debits, credits in rows:
        sums[cur] = sums.get(cur, 0) + credits - debits
    if any(sums.values()):
        raise AssertionError(f"window nets do not sum to zero: {sums}")
