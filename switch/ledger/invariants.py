"""Full recomputation of every cached aggregate from the transfers (slow; for checks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import reconcile
from .clearing import check_nets
from .records import (
    EXPIRED, PENDING, PENDING_KIND, POST, POSTED, REGULAR, SETTLEMENT, VOID, VOIDED, Account,
    Transfer,
)

if TYPE_CHECKING:
    from .ledger import Ledger

# The states each kind of transfer can be in (a pending transfer is settled or expired later)
_KIND_STATES = {REGULAR: {POSTED}, POST: {POSTED}, VOID: {VOIDED}, SETTLEMENT: {POSTED},
                PENDING_KIND: {PENDING, POSTED, VOIDED, EXPIRED}}


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def check(ledger: Ledger) -> None:
    check_balances(ledger)
    _check_positions(ledger)


def check_balances(ledger: Ledger) -> None:
    """Everything but the windows: transfers, account balances and lists, totals."""
    balances, touching = _check_transfers(ledger)
    for aid, account in ledger.accounts.items():
        cached = [account.debits_posted, account.credits_posted,
                  account.debits_pending, account.credits_pending]
        _require(cached == balances[account], f"account {aid}: {cached} != {balances[account]}")
        # Transfer has no __eq__, so == compares the lists element by element by identity
        _require(account.transfers == touching[account],
                 f"account {aid}: transfer list out of order")
    _check_totals(ledger)


def _check_transfers(
        ledger: Ledger) -> tuple[dict[Account, list[int]], dict[Account, list[Transfer]]]:
    """Recompute balances and per-account lists; check states, order and the clock.

    It runs over every transfer on each restart, so the loop does as little as it can: one
    condition for the common case, which names what failed only when it fails.
    """
    accounts = ledger.accounts.values()
    touching: dict[Account, list[Transfer]] = {account: [] for account in accounts}
    # account -> [debits posted, credits posted, debits pending, credits pending]
    balances = {account: [0, 0, 0, 0] for account in accounts}
    book = ledger.book
    last = 0
    pending = 0
    live_in_heap = {id(entry.transfer) for entry in book.heap
                    if entry.transfer.state == PENDING}
    _require(book.stale == len(book.heap) - len(live_in_heap), "stale heap entries")
    for t in book.by_id.values():
        debit, credit, kind, state = t.debit, t.credit, t.kind, t.state
        if (t.timestamp <= last or debit is credit or debit.currency != credit.currency
                or state not in _KIND_STATES.get(kind, ())):
            raise AssertionError(f"transfer {t.id}: {_fault(t, last)}")
        last = t.timestamp
        touching[debit].append(t)
        touching[credit].append(t)
        if kind == PENDING_KIND:
            if state == PENDING:
                balances[debit][2] += t.amount
                balances[credit][3] += t.amount
                pending += 1
                _require(not t.timeout or id(t) in live_in_heap,
                         f"transfer {t.id}: not in heap")
            continue
        if kind != VOID:
            balances[debit][0] += t.amount
            balances[credit][1] += t.amount
        if kind != REGULAR and kind != SETTLEMENT:  # a post or void: its pending transfer
            p = t.target
            if p is None:
                raise AssertionError(f"transfer {t.id}: a {kind} without its pending transfer")
            _require(p.kind == PENDING_KIND and p.state == state and t.amount <= p.amount,
                     f"transfer {t.id}: bad settlement of {p.id}")
    _require(book.last_ts >= last, "clock behind the newest transfer")
    _require(book.pending_count == pending, f"pending count {book.pending_count} != {pending}")
    return balances, touching


def _fault(t: Transfer, last: int) -> str:
    if t.timestamp <= last:
        return "timestamps not increasing"
    if t.debit is t.credit or t.debit.currency != t.credit.currency:
        return "bad accounts"
    return f"state {t.state} of a {t.kind} transfer"


def _check_totals(ledger: Ledger) -> None:
    sums: dict[str, list[int]] = {}
    for account in ledger.accounts.values():
        row = sums.setdefault(account.currency, [0, 0, 0, 0])
        row[0] += account.debits_posted
        row[1] += account.credits_posted
        row[2] += account.debits_pending
        row[3] += account.credits_pending
    _require(set(sums) == set(ledger.totals), "currencies of totals")
    for currency, row in sums.items():
        totals = ledger.totals[currency]
        cached = [totals.debits_posted, totals.credits_posted,
                  totals.debits_pending, totals.credits_pending]
        _require(cached == row, f"{currency} totals {cached} != {row}")
        _require(row[0] == row[1] and row[2] == row[3], f"{currency} debits != credits: {row}")


def _check_positions(ledger: Ledger) -> None:
    """Reservations, and every window's report recomputed from the transfers in it."""
    clearing = ledger.clearing
    _require(clearing.window is (clearing.windows[-1] if clearing.windows else None),
             "the open window is not the newest")
    _require(all(w.closed_at is not None for w in clearing.windows[:-1]), "an old window is open")
    differences = reconcile.compare(ledger, closed_only=False)
    _require(not differences, f"windows differ from their transfers: {differences[:5]}")
    for w in clearing.windows:
        if w.closed_at is not None:
            check_nets(w.rows or [])
