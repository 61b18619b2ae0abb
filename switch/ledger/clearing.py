"""Clearing: per-participant positions, the bilateral matrix, net debit caps and windows.

Everything a window report needs is kept incrementally as money moves (O(1) per transfer), so
closing a window costs time in proportion to the positions with activity, never to the transfers
in it. The closed window's bilateral matrix is handed over as it stands (the payers' `owes` maps)
and turned into sorted rows only when first read, so a close stays O(positions) even when every
pair of participants traded.
"""

import hashlib

from .codes import ADMIN


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

    def __init__(self, participant, currency):
        self.participant = participant
        self.currency = currency
        self.debits = 0
        self.credits = 0
        self.reserved = 0
        self.owes = {}
        self.moves = 0


class Window:
    __slots__ = ("window_id", "opened_at", "closed_at", "transfers", "rows", "matrix",
                 "settlement", "owes", "participant_transfers")

    def __init__(self, window_id, opened_at, closed_at=None, transfers=0, rows=None,
                 matrix=None, settlement=None, participant_transfers=None):
        self.window_id = window_id
        self.opened_at = opened_at
        self.closed_at = closed_at  # None while open
        self.transfers = transfers  # interbank one-phase transfers and posts
        self.rows = rows  # closed: [participant, currency, debits, credits], sorted
        # closed: [payer, payee, currency, amount], sorted, amounts > 0 (see closed_matrix)
        self.matrix = matrix
        # closed with settlement postings: [participant, currency, transfer_id] in the order of
        # the instructions; None when the window was closed without postings (or is open)
        self.settlement = settlement
        self.owes = None  # just closed: [(payer Position, its owes map)] until first read
        # closed: participant -> its interbank transfers and posts in the window (as payer or
        # payee); None while open (the positions' `moves` count then)
        self.participant_transfers = participant_transfers

    def closed_matrix(self):
        """The closed window's matrix rows, built from the handed-over maps on first use."""
        if self.matrix is None and self.owes is not None:
            self.matrix = _matrix_rows(self.owes)
            self.owes = None
        return self.matrix


def within_cap(account, amount):
    """Whether debiting `amount` interbank from `account` keeps its owner within cap."""
    cap = account.owner.caps.get(account.currency)
    if cap is None:
        return True
    pos = account.position
    return pos.debits - pos.credits + pos.reserved + amount <= cap


class Clearing:
    __slots__ = ("positions", "windows", "window")

    def __init__(self):
        self.positions = {}  # (participant, currency) -> Position
        self.windows = []  # oldest first; the last one is open once any exists
        self.window = None  # the open window

    def position(self, participant, currency):
        key = (participant, currency)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Position(participant, currency)
        return pos

    def move(self, payer, payee, amount):
        """Money moved interbank; a negative amount undoes a move of a rolled back chain."""
        payer.debits += amount
        payee.credits += amount
        owes = payer.owes
        owes[payee] = owes.get(payee, 0) + amount
        step = 1 if amount > 0 else -1
        payer.moves += step
        payee.moves += step
        self.window.transfers += step

    def open(self, at):
        self.window = Window(len(self.windows) + 1, at)
        self.windows.append(self.window)

    def close(self, at, settlement=None):
        """Close the open window at `at` and open the next; O(positions), not transfers.

        `settlement` is the window's list of settlement postings (see Window.settlement).
        """
        if self.window is None:
            self.open(at)
        window = self.window
        window.rows = self.active_rows()
        check_nets(window.rows)
        owes = []
        counts = {}
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

    def active_rows(self):
        return [[pid, cur, pos.debits, pos.credits]
                for (pid, cur), pos in sorted(self.positions.items())
                if pos.debits or pos.credits]

    def matrix_rows(self):
        """The open window's bilateral matrix: sorted [payer, payee, currency, amount]."""
        return _matrix_rows((pos, pos.owes) for pos in self.positions.values() if pos.owes)

    def window_matrix(self, window):
        return window.closed_matrix() if window.closed_at is not None else self.matrix_rows()

    def window_rows(self, window):
        return window.rows if window.closed_at is not None else self.active_rows()

    def window_participant_transfers(self, window) -> dict:
        """participant -> its interbank transfers and posts in `window` (so far, when open)."""
        if window.closed_at is not None:
            return window.participant_transfers
        counts = {}
        for (pid, _), pos in self.positions.items():
            if pos.moves:
                counts[pid] = counts.get(pid, 0) + pos.moves
        return counts

    def report(self, window, caller):
        """The window's report; a participant's counts only transfers touching its accounts."""
        rows = self.window_rows(window)
        settlement = window.settlement
        transfers = window.transfers
        if caller != ADMIN:
            transfers = self.window_participant_transfers(window).get(caller, 0)
            rows = [row for row in rows if row[0] == caller]
            if settlement is not None:
                settlement = [entry for entry in settlement if entry[0] == caller]
        return {"window_id": window.window_id,
                "state": "open" if window.closed_at is None else "closed",
                "opened_at": window.opened_at, "closed_at": window.closed_at,
                "transfers": transfers,
                "positions": [{"participant": pid, "currency": cur, "debits": d,
                               "credits": c, "net": c - d} for pid, cur, d, c in rows],
                "instructions": [instruction(pid, cur, c - d)
                                 for pid, cur, d, c in rows if c != d],
                "settlement_transfers": None if settlement is None
                else [tid for _, _, tid in settlement]}

    def matrix_report(self, window, caller):
        rows = self.window_matrix(window)
        if caller != ADMIN:
            rows = [row for row in rows if caller == row[0] or caller == row[1]]
        return {"window_id": window.window_id,
                "state": "open" if window.closed_at is None else "closed",
                "rows": [{"payer": payer, "payee": payee, "currency": cur, "amount": amount}
                         for payer, payee, cur, amount in rows]}

    def listing(self):
        return [{"window_id": w.window_id, "state": "open" if w.closed_at is None else "closed",
                 "opened_at": w.opened_at, "closed_at": w.closed_at} for w in self.windows]


def _matrix_rows(owes):
    """Sorted [payer, payee, currency, amount] rows of (payer Position, owes map) pairs."""
    rows = [[pos.participant, payee.participant, pos.currency, amount]
            for pos, payees in owes for payee, amount in payees.items() if amount]
    rows.sort()
    return rows


def settlement_id(window_id, participant, currency):
    """The deterministic id of the posting that settles `participant`'s `currency` net of a
    window: `settle:<window_id>:<participant>:<CUR>`, or, when that would pass the 64
    characters an id may have, the participant replaced by 16 hex digits of its SHA-256."""
    tid = f"settle:{window_id}:{participant}:{currency}"
    if len(tid) > 64:
        digest = hashlib.sha256(participant.encode()).hexdigest()[:16]
        tid = f"settle:{window_id}:{digest}:{currency}"
    return tid


def instruction(participant, currency, net):
    if net < 0:
        return {"participant": participant, "currency": currency, "pay": -net}
    return {"participant": participant, "currency": currency, "receive": net}


def check_nets(rows):
    """Every interbank move debits one participant and credits another: nets sum to 0."""
    sums = {}
    for _, cur, debits, credits in rows:
        sums[cur] = sums.get(cur, 0) + credits - debits
    if any(sums.values()):
        raise AssertionError(f"window nets do not sum to zero: {sums}")
