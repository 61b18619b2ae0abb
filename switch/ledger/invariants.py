"""Full recomputation of every cached aggregate from the transfers (slow; for checks)."""

from bisect import bisect_right

from .clearing import check_nets
from .records import PENDING, PENDING_KIND, POST, POSTED, REGULAR, VOID, VOIDED

_KIND_STATES = {REGULAR: {POSTED}, POST: {POSTED}, VOID: {VOIDED}}


def _require(condition, what):
    if not condition:
        raise AssertionError(what)


def check(ledger):
    balances, touching = _check_transfers(ledger)
    for aid, account in ledger.accounts.items():
        cached = [account.debits_posted, account.credits_posted,
                  account.debits_pending, account.credits_pending]
        _require(cached == balances[aid], f"account {aid}: {cached} != {balances[aid]}")
        _require(len(account.transfers) == len(touching[aid])
                 and all(a is b for a, b in zip(account.transfers, touching[aid])),
                 f"account {aid}: transfer list out of order")
    _check_totals(ledger)
    _check_positions(ledger)


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
        if t.kind in (REGULAR, POST):
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
    """Reservations, and every window's moves recomputed from the transfers in it."""
    clearing = ledger.clearing
    openings = [w.opened_at for w in clearing.windows]
    reserved = dict.fromkeys(clearing.positions, 0)
    moves = [{} for _ in openings]  # per window: (participant, currency) -> [debits, credits]
    counts = [0] * len(openings)
    for t in ledger.book.by_id.values():
        payer, payee = t.debit.owner.id, t.credit.owner.id
        currency = t.debit.currency
        if payer == payee:
            continue
        if t.kind == PENDING_KIND and t.state == PENDING:
            reserved[payer, currency] += t.amount
        elif t.kind in (REGULAR, POST):
            # a window holds the events from its opening up to its closing timestamp
            number = bisect_right(openings, t.timestamp) - 1
            moves[number].setdefault((payer, currency), [0, 0])[0] += t.amount
            moves[number].setdefault((payee, currency), [0, 0])[1] += t.amount
            counts[number] += 1
    for key, pos in clearing.positions.items():
        _require(pos.reserved == reserved[key], f"position {key}: reserved {pos.reserved}")
    for number, w in enumerate(clearing.windows):
        _require(w.window_id == number + 1, "window ids")
        _require(w.transfers == counts[number], f"window {w.window_id}: transfer count")
        rows = [[pid, cur, d, c] for (pid, cur), (d, c) in sorted(moves[number].items())]
        if w.closed_at is None:
            _require(w is clearing.window and rows == clearing.active_rows(),
                     "open window positions")
        else:
            _require(w.rows == rows, f"window {w.window_id}: positions")
            check_nets(w.rows)
