"""Ledger state <-> plain msgpack-serializable values.

Records are listed in timestamp order, so loading them in order rebuilds the
per-account transfer lists, and the expiry heap follows from the pending transfers.

Version 2 adds participants' settlement accounts, the bilateral matrix (the open window's rows
on the positions, closed windows' on the windows) and windows' settlement postings. A version 1
state still loads: its matrices are recomputed from the transfers.
"""

from heapq import heapify

from .clearing import Window
from .records import PENDING, Participant, Transfer

VERSION = 2
READABLE_VERSIONS = (1, 2)


def dump(ledger):
    book = ledger.book
    clearing = ledger.clearing
    return {
        "version": VERSION,
        "last_ts": book.last_ts,
        "participants": [[p.id, p.name, dict(p.caps), p.suspended, p.token_hash, p.timestamp,
                          dict(p.settlement_accounts)]
                         for p in ledger.participants.values()],
        "accounts": [[a.id, a.owner.id, a.currency, a.overdraft_limit, a.timestamp,
                      a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending]
                     for a in ledger.accounts.values()],
        "transfers": [[t.id, t.debit.id, t.credit.id, t.amount, t.reference, t.timeout, t.kind,
                       None if t.target is None else t.target.id, t.state, t.timestamp]
                      for t in book.by_id.values()],
        "positions": [[pid, cur, pos.debits, pos.credits, pos.reserved,
                       sorted([payee.participant, amount]
                              for payee, amount in pos.owes.items() if amount)]
                      for (pid, cur), pos in sorted(clearing.positions.items())],
        "windows": [[w.window_id, w.opened_at, w.closed_at, w.transfers,
                     None if w.rows is None else [list(row) for row in w.rows],
                     None if w.closed_at is None else [list(row) for row in w.closed_matrix()],
                     None if w.settlement is None else [list(e) for e in w.settlement]]
                    for w in clearing.windows],
    }


def load(ledger, state):
    """Fill the empty `ledger` from `state`."""
    version = state["version"]
    if version not in READABLE_VERSIONS:
        raise ValueError(f"unsupported ledger snapshot version {version}")
    clearing = ledger.clearing
    for pid, name, caps, suspended, token_hash, ts, *rest in state["participants"]:
        ledger.participants[pid] = Participant(pid, name, dict(caps), suspended, token_hash, ts,
                                               dict(rest[0]) if rest else {})
    for pid, cur, debits, credits, reserved, *rest in state["positions"]:
        pos = clearing.position(pid, cur)
        pos.debits, pos.credits, pos.reserved = debits, credits, reserved
        for payee, amount in (rest[0] if rest else ()):
            pos.owes[clearing.position(payee, cur)] = amount
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
    for wid, opened_at, closed_at, count, rows, *rest in state["windows"]:
        matrix, settlement = (rest + [None, None])[:2]
        clearing.windows.append(Window(wid, opened_at, closed_at, count, rows, matrix,
                                       settlement))
    if clearing.windows:
        clearing.window = clearing.windows[-1]
    if version == 1:
        _recompute_matrices(ledger)


def _recompute_matrices(ledger):
    """A version 1 state kept no bilateral matrix: rebuild it from the transfers."""
    from .reconcile import recompute  # reconcile imports clearing; keep the import local

    clearing = ledger.clearing
    pairs = recompute(ledger).pairs
    for number, w in enumerate(clearing.windows):
        rows = sorted([payer, payee, cur, amount]
                      for (payer, payee, cur), amount in pairs[number].items() if amount)
        if w.closed_at is not None:
            w.matrix = rows
            continue
        for payer, payee, cur, amount in rows:
            clearing.position(payer, cur).owes[clearing.position(payee, cur)] = amount


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
