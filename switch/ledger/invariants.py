"""Full recomputation of every cached aggregate from the transfers (slow; for checks)."""

from . import reconcile
from .clearing import check_nets
from .records import PENDING, PENDING_KIND, POST, POSTED, REGULAR, SETTLEMENT, VOID, VOIDED

_KIND_STATES = {REGULAR: {POSTED}, POST: {POSTED}, VOID: {VOIDED}, SETTLEMENT: {POSTED}}


def _require(condition, what):
    if not condition:
        raise AssertionError(what)


def check(ledger):
    check_balances(ledger)
    _check_positions(ledger)


def check_balances(ledger):
    """Everything but the windows: transfers, account balances and lists, totals."""
    balances, touching = _check_transfers(ledger)
    for aid, account in ledger.accounts.items():
        cached = [account.debits_posted, account.credits_posted,
                  account.debits_pending, account.credits_pending]
        _require(cached == balances[aid], f"account {aid}: {cached} != {balances[aid]}")
        _require(len(account.transfers) == len(touching[aid])
                 and all(a is b for a, b in zip(account.transfers, touching[aid])),
                 f"account {aid}: transfer list out of order")
    _check_totals(ledger)


def _check_transfers(ledger):
    """Recompute balances and per-account lists; check states, order and the clock."""
    balances = {aid: [0, 0, 0, 0] for aid in ledger.accounts}
    touching = {aid: [] for aid in ledger.accounts}
    book = ledger.book
    last = 0
    pending = 0
    live_in_heap = {id(entry[3]) for entry in book.heap if entry[3].state == PENDING}
    _require(book.stale == len(book.heap) - len(live_in_heap), "stale heap entries")
    for t in book.by_id.values():
        _require(t.timestamp > last, f"transfer {t.id}: timestamps not increasing")
        last = t.timestamp
        _require(t.debit is not t.credit and t.debit.currency == t.credit.currency,
                 f"transfer {t.id}: bad accounts")
        _require(t.state in _KIND_STATES.get(t.kind, {t.state}), f"transfer {t.id}: state")
        touching[t.debit.id].append(t)
        touching[t.credit.id].append(t)
        if t.kind in (POST, VOID):
            p = t.target
            _require(p.kind == PENDING_KIND and p.state == t.state and t.amount <= p.amount,
                     f"transfer {t.id}: bad settlement of {p.id}")
        if t.kind in (REGULAR, POST, SETTLEMENT):
            balances[t.debit.id][0] += t.amount
            balances[t.credit.id][1] += t.amount
        elif t.kind == PENDING_KIND and t.state == PENDING:
            balances[t.debit.id][2] += t.amount
            balances[t.credit.id][3] += t.amount
            pending += 1
            _require(not t.timeout or id(t) in live_in_heap, f"transfer {t.id}: not in heap")
    _require(book.last_ts >= last, "clock behind the newest transfer")
    _require(book.pending_count == pending, f"pending count {book.pending_count} != {pending}")
    return balances, touching


def _check_totals(ledger):
    sums = {}
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


def _check_positions(ledger):
    """Reservations, and every window's report recomputed from the transfers in it."""
    clearing = ledger.clearing
    _require(clearing.window is (clearing.windows[-1] if clearing.windows else None),
             "the open window is not the newest")
    _require(all(w.closed_at is not None for w in clearing.windows[:-1]), "an old window is open")
    differences = reconcile.compare(ledger, closed_only=False)
    _require(not differences, f"windows differ from their transfers: {differences[:5]}")
    for w in clearing.windows:
        if w.closed_at is not None:
            check_nets(w.rows)
