"""Ledger state <-> plain msgpack-serializable values.

Records are listed in timestamp order, so loading them in order rebuilds the
per-account transfer lists, and the expiry heap follows from the pending transfers.
"""

from heapq import heapify

from .clearing import Window
from .records import PENDING, Participant, Transfer

VERSION = 1


def dump(ledger):
    book = ledger.book
    clearing = ledger.clearing
    return {
        "version": VERSION,
        "last_ts": book.last_ts,
        "participants": [[p.id, p.name, dict(p.caps), p.suspended, p.token_hash, p.timestamp]
                         for p in ledger.participants.values()],
        "accounts": [[a.id, a.owner.id, a.currency, a.overdraft_limit, a.timestamp,
                      a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending]
                     for a in ledger.accounts.values()],
        "transfers": [[t.id, t.debit.id, t.credit.id, t.amount, t.reference, t.timeout, t.kind,
                       None if t.target is None else t.target.id, t.state, t.timestamp]
                      for t in book.by_id.values()],
        "positions": [[pid, cur, pos.debits, pos.credits, pos.reserved]
                      for (pid, cur), pos in sorted(clearing.positions.items())],
        "windows": [[w.window_id, w.opened_at, w.closed_at, w.transfers,
                     None if w.rows is None else [list(row) for row in w.rows]]
                    for w in clearing.windows],
    }


def load(ledger, state):
    """Fill the empty `ledger` from `state`."""
    if state["version"] != VERSION:
        raise ValueError(f"unsupported ledger snapshot version {state['version']}")
    for pid, name, caps, suspended, token_hash, ts in state["participants"]:
        ledger.participants[pid] = Participant(pid, name, dict(caps), suspended, token_hash, ts)
    for pid, cur, debits, credits, reserved in state["positions"]:
        pos = ledger.clearing.position(pid, cur)
        pos.debits, pos.credits, pos.reserved = debits, credits, reserved
    for aid, pid, cur, limit, ts, *balances in state["accounts"]:
        account = ledger.new_account(aid, ledger.participants[pid], cur, limit, ts)
        (account.debits_posted, account.credits_posted,
         account.debits_pending, account.credits_pending) = balances
        totals = account.totals
        totals.debits_posted += account.debits_posted
        totals.credits_posted += account.credits_posted
        totals.debits_pending += account.debits_pending
        totals.credits_pending += account.credits_pending
        ledger.accounts[aid] = account
    _load_transfers(ledger.book, state["transfers"])
    ledger.book.last_ts = state["last_ts"]
    for wid, opened_at, closed_at, count, rows in state["windows"]:
        ledger.clearing.windows.append(Window(wid, opened_at, closed_at, count, rows))
    if ledger.clearing.windows:
        ledger.clearing.window = ledger.clearing.windows[-1]


def _load_transfers(book, rows):
    accounts = book.accounts
    by_id = book.by_id
    for tid, debit, credit, amount, reference, timeout, kind, target, state, ts in rows:
        t = Transfer(tid, accounts[debit], accounts[credit], amount, reference, timeout, kind,
                     None if target is None else by_id[target], state, ts)
        by_id[tid] = t
        t.debit.transfers.append(t)
        t.credit.transfers.append(t)
        if state == PENDING:
            book.pending_count += 1
            if timeout:
                book.heap.append((t.deadline(), ts, next(book.heap_seq), t))
    heapify(book.heap)
