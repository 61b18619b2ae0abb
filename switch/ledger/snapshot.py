"""Ledger state <-> plain msgpack-serializable values.

Records are listed in timestamp order, so loading them in order rebuilds the
per-account transfer lists, and the expiry heap follows from the pending transfers.

Version 3 stores the transfers column by column (one list per field, accounts as their index in
`accounts`, kinds and states as small codes, the targets of posts and voids as index pairs):
unpacking is then a few long lists of plain values, and loading builds every transfer in one
`map` instead of a Python loop over one list per transfer, more than twice as fast. The codes
also make every transfer share the same kind and state strings, where one list per transfer gave
each its own copies (about 120 bytes per transfer once loaded).

Version 2 added participants' settlement accounts, the bilateral matrix (the open window's rows
on the positions, closed windows' on the windows) and windows' settlement postings. Versions 1
and 2 (one list per transfer) still load; a version 1 state has its matrices recomputed from the
transfers.

Each participant's count of a window's transfers (its report's `transfers`) is a trailing field
of positions (`moves`, the open window) and of windows (closed ones); a state without them has
them recomputed from the transfers, so every earlier state still loads.
"""

from __future__ import annotations

from bisect import bisect_left
from heapq import heapify
from itertools import compress, repeat
from operator import attrgetter, is_not
from typing import TYPE_CHECKING, Any, Iterable

from .clearing import MatrixRow, PositionRow, SettlementEntry, Window
from .records import (
    EXPIRED, PENDING, PENDING_KIND, POST, POSTED, REGULAR, SETTLEMENT, VOID, VOIDED, Account,
    Participant, Transfer, new_transfer,
)

if TYPE_CHECKING:
    from .ledger import Ledger
    from .transfers import Book

# A snapshot's state: msgpack-serializable maps and lists.
State = dict[str, Any]

VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
# Version 3 codes: a kind or state is stored as its index here, so these orders never change.
KINDS = (REGULAR, PENDING_KIND, POST, VOID, SETTLEMENT)
STATES = (PENDING, POSTED, VOIDED, EXPIRED)
_PENDING_CODE = STATES.index(PENDING)
# The one string object of each kind and state, for versions 1 and 2
_CANONICAL = {name: name for name in KINDS + STATES}
_target = attrgetter("target")


def dump(ledger: Ledger) -> State:
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
        "transfers": _transfer_columns(ledger),
        "positions": [[pid, cur, pos.debits, pos.credits, pos.reserved,
                       sorted([payee.participant, amount]
                              for payee, amount in pos.owes.items() if amount), pos.moves]
                      for (pid, cur), pos in sorted(clearing.positions.items())],
        "windows": [[w.window_id, w.opened_at, w.closed_at, w.transfers,
                     None if w.rows is None else [list(row) for row in w.rows],
                     None if w.closed_at is None else [list(row) for row in w.closed_matrix() or ()],
                     None if w.settlement is None else [list(e) for e in w.settlement],
                     None if w.participant_transfers is None
                     else sorted(map(list, w.participant_transfers.items()))]
                    for w in clearing.windows],
    }


def _transfer_columns(ledger: Ledger) -> dict[str, list[Any]]:
    """Version 3 transfers: {field: [value per transfer]}, timestamp order."""
    transfers = ledger.book.by_id.values()
    account_index = {account: n for n, account in enumerate(ledger.accounts.values())}

    def column(field: str, code: dict[Any, int] | None = None) -> list[Any]:
        values = map(attrgetter(field), transfers)
        return list(values if code is None else map(code.__getitem__, values))

    timestamps = column("timestamp")
    settling = compress(enumerate(transfers), map(is_not, map(_target, transfers), repeat(None)))
    return {
        "ids": list(ledger.book.by_id),
        "debits": column("debit", account_index),
        "credits": column("credit", account_index),
        "amounts": column("amount"),
        "references": column("reference"),
        "timeouts": column("timeout"),
        "kinds": column("kind", {kind: n for n, kind in enumerate(KINDS)}),
        "states": column("state", {state: n for n, state in enumerate(STATES)}),
        "timestamps": timestamps,
        # timestamps are unique and increasing, so a pending transfer's index is where its
        # timestamp is: no index of every transfer needed
        "targets": [[n, bisect_left(timestamps, _target_of(t).timestamp)] for n, t in settling],
    }


def _target_of(t: Transfer) -> Transfer:
    if t.target is None:
        raise AssertionError(f"transfer {t.id} settles no pending transfer")
    return t.target


class UnsupportedSnapshotVersion(ValueError):
    """A state written by a newer build (or an unknown one): never read it as an older one."""


def check_readable(version: object) -> None:
    if version not in READABLE_VERSIONS:
        raise UnsupportedSnapshotVersion(
            f"snapshot version {version}; this switch reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}: start a build that reads it")


def load(ledger: Ledger, state: State) -> None:
    """Fill the empty `ledger` from `state`."""
    version = state["version"]
    check_readable(version)
    clearing = ledger.clearing
    counted = True  # whether the state holds every participant's transfer counts
    for pid, name, caps, suspended, token_hash, ts, *rest in state["participants"]:
        ledger.participants[pid] = Participant(pid, name, dict(caps), suspended, token_hash, ts,
                                               dict(rest[0]) if rest else {})
    for pid, cur, debits, credits, reserved, *rest in state["positions"]:
        pos = clearing.position(pid, cur)
        pos.debits, pos.credits, pos.reserved = debits, credits, reserved
        for payee, amount in (rest[0] if rest else ()):
            pos.owes[clearing.position(payee, cur)] = amount
        if len(rest) > 1:
            pos.moves = rest[1]
        else:
            counted = False
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
    if version >= 3:
        _load_columns(ledger.book, list(ledger.accounts.values()), state["transfers"])
    else:
        _load_rows(ledger.book, state["transfers"])
    ledger.book.last_ts = state["last_ts"]
    for wid, opened_at, closed_at, count, rows, *rest in state["windows"]:
        matrix, settlement, counts = (rest + [None, None, None])[:3]
        if counts is None and closed_at is not None:
            counted = False
        clearing.windows.append(Window(
            wid, opened_at, closed_at, count,
            None if rows is None else [PositionRow(*row) for row in rows],
            None if matrix is None else [MatrixRow(*row) for row in matrix],
            None if settlement is None else [SettlementEntry(*entry) for entry in settlement],
            None if counts is None else dict(counts)))
    if clearing.windows:
        clearing.window = clearing.windows[-1]
    if version == 1:
        _recompute_matrices(ledger)
    if not counted:
        _recompute_participant_transfers(ledger)


def _recompute_matrices(ledger: Ledger) -> None:
    """A version 1 state kept no bilateral matrix: rebuild it from the transfers."""
    from .reconcile import recompute  # reconcile imports clearing; keep the import local

    clearing = ledger.clearing
    pairs = recompute(ledger).pairs
    for number, w in enumerate(clearing.windows):
        rows = sorted(MatrixRow(payer, payee, cur, amount)
                      for (payer, payee, cur), amount in pairs[number].items() if amount)
        if w.closed_at is not None:
            w.matrix = rows
            continue
        for payer, payee, cur, amount in rows:
            clearing.position(payer, cur).owes[clearing.position(payee, cur)] = amount


def _recompute_participant_transfers(ledger: Ledger) -> None:
    """A state from before participants' transfer counts: rebuild them from the transfers."""
    from .reconcile import participant_transfers, recompute  # see _recompute_matrices

    clearing = ledger.clearing
    involved = recompute(ledger).involved
    for number, w in enumerate(clearing.windows):
        if w.closed_at is not None:
            w.participant_transfers = participant_transfers(involved[number])
            continue
        for (pid, cur), count in involved[number].items():
            clearing.position(pid, cur).moves = count


def _load_columns(book: Book, accounts: list[Account], columns: dict[str, list[Any]]) -> None:
    """Version 3: every transfer built by one `map` over the columns (see the module doc)."""
    account_at = accounts.__getitem__
    transfers = list(map(
        new_transfer, columns["ids"], map(account_at, columns["debits"]),
        map(account_at, columns["credits"]), columns["amounts"], columns["references"],
        columns["timeouts"], map(KINDS.__getitem__, columns["kinds"]), repeat(None),
        map(STATES.__getitem__, columns["states"]), columns["timestamps"]))
    for n, target in columns["targets"]:
        transfers[n].target = transfers[target]
    book.by_id.update(zip(columns["ids"], transfers))
    pending = compress(transfers, map(_PENDING_CODE.__eq__, columns["states"]))
    _link(book, transfers, pending)


def _load_rows(book: Book, rows: list[list[Any]]) -> None:
    """Versions 1 and 2: one list per transfer, accounts and targets by id."""
    accounts = book.accounts
    by_id = book.by_id
    for tid, debit, credit, amount, reference, timeout, kind, target, state, ts in rows:
        by_id[tid] = new_transfer(tid, accounts[debit], accounts[credit], amount, reference,
                                  timeout, _CANONICAL[kind],
                                  None if target is None else by_id[target], _CANONICAL[state], ts)
    transfers = by_id.values()
    _link(book, transfers, (t for t in transfers if t.state == PENDING))


def _link(book: Book, transfers: Iterable[Transfer], pending: Iterable[Transfer]) -> None:
    """The per-account lists (timestamp order), the pending count and the expiry heap."""
    for t in transfers:
        t.debit.transfers.append(t)
        t.credit.transfers.append(t)
    pending = list(pending)
    book.pending_count = len(pending)
    book.heap = [book.deadline_entry(t) for t in pending if t.timeout]
    heapify(book.heap)
