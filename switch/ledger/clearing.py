"""Clearing: per-participant positions, net debit caps and settlement windows."""

from .codes import ADMIN


class Position:
    """One participant's position in one currency.

    debits/credits count interbank money moved in the open window; reserved counts
    the participant's outgoing interbank pending transfers (independent of windows).
    """

    __slots__ = ("participant", "currency", "debits", "credits", "reserved")

    def __init__(self, participant, currency):
        self.participant = participant
        self.currency = currency
        self.debits = 0
        self.credits = 0
        self.reserved = 0


class Window:
    __slots__ = ("window_id", "opened_at", "closed_at", "transfers", "rows")

    def __init__(self, window_id, opened_at, closed_at=None, transfers=0, rows=None):
        self.window_id = window_id
        self.opened_at = opened_at
        self.closed_at = closed_at  # None while open
        self.transfers = transfers  # interbank one-phase transfers and posts
        self.rows = rows  # closed: [participant, currency, debits, credits], sorted


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
        self.window.transfers += 1 if amount > 0 else -1

    def open(self, at):
        self.window = Window(len(self.windows) + 1, at)
        self.windows.append(self.window)

    def close(self, at):
        """Close the open window at `at` and open the next; O(positions), not transfers."""
        if self.window is None:
            self.open(at)
        window = self.window
        window.rows = self.active_rows()
        check_nets(window.rows)
        for row in window.rows:
            pos = self.positions[row[0], row[1]]
            pos.debits = pos.credits = 0
        window.closed_at = at
        self.open(at)
        return window

    def active_rows(self):
        return [[pid, cur, pos.debits, pos.credits]
                for (pid, cur), pos in sorted(self.positions.items())
                if pos.debits or pos.credits]

    def report(self, window, caller):
        rows = window.rows if window.closed_at is not None else self.active_rows()
        if caller != ADMIN:
            rows = [row for row in rows if row[0] == caller]
        return {"window_id": window.window_id,
                "state": "open" if window.closed_at is None else "closed",
                "opened_at": window.opened_at, "closed_at": window.closed_at,
                "transfers": window.transfers,
                "positions": [{"participant": pid, "currency": cur, "debits": d,
                               "credits": c, "net": c - d} for pid, cur, d, c in rows],
                "instructions": [instruction(pid, cur, c - d)
                                 for pid, cur, d, c in rows if c != d]}

    def listing(self):
        return [{"window_id": w.window_id, "state": "open" if w.closed_at is None else "closed",
                 "opened_at": w.opened_at, "closed_at": w.closed_at} for w in self.windows]


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
