"""Settlement windows recomputed from the transfers, and compared with what the ledger reports.

Pure: it reads a Ledger and returns data. `check_invariants` uses it for every window (the open
one included) and fails on any difference; `python -m switch reconcile` uses it for the closed
windows of a data directory and prints every difference.

The recomputation is deliberately independent of the incremental state it checks: a window
holds the interbank one-phase transfers and posts whose timestamps fall in
[opened_at, closed_at); a transfer is interbank when its accounts belong to different
participants; settlement postings never count (they settle a window, they are not traffic).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .clearing import MatrixRow, PositionRow, SettlementEntry, settlement_id
from .records import PENDING, PENDING_KIND, POST, REGULAR, SETTLEMENT, Account, Transfer

if TYPE_CHECKING:
    from .ledger import Ledger

# (participant, currency), (payer, payee, currency), (debit, credit) accounts
Key = tuple[str, str]
Pair = tuple[str, str, str]
Accounts = tuple[Account, Account]

_MOVES = (REGULAR, POST)
_END = float("inf")  # the closing time of the open window


@dataclass(frozen=True)
class Difference:
    window_id: int | None  # None: not about one window
    what: str  # position, transfers, nets, matrix, settlement, window, transfer, reserved
    key: str  # what exactly: "bank-a USD debits", "bank-a->bank-b USD", a transfer id, ...
    reported: object  # what the ledger reports (None: nothing)
    recomputed: object  # what the transfers say (None: nothing)


@dataclass
class Recomputed:
    """Per window index (window_id - 1): moves {(participant, currency): [debits, credits]},
    pairs {(payer, payee, currency): amount}, the number of interbank moves, and involved
    {(participant, currency): number of those moves it paid or received}."""

    moves: list[dict[Key, list[int]]] = field(default_factory=list)
    pairs: list[dict[Pair, int]] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    involved: list[dict[Key, int]] = field(default_factory=list)
    # (participant, currency) -> outgoing pending
    reserved: dict[Key, int] = field(default_factory=dict)
    # id -> settlement posting transfer
    settlements: dict[str, Transfer] = field(default_factory=dict)
    outside: list[Transfer] = field(default_factory=list)  # interbank moves in no window


@dataclass
class Reconciliation:
    windows: int  # closed windows compared
    transfers: int  # interbank transfers and posts found in them
    differences: list[Difference]

    @property
    def ok(self) -> bool:
        return not self.differences


def recompute(ledger: Ledger) -> Recomputed:
    """One pass over every transfer, kept short because it runs on every restart: it sums per
    window and (debit, credit) account pair, and `_per_participant` turns those sums into the
    participants' figures."""
    windows = ledger.clearing.windows
    openings = [w.opened_at for w in windows]
    closings = [_END if w.closed_at is None else w.closed_at for w in windows]
    out = Recomputed([{} for _ in windows], [{} for _ in windows], [0] * len(windows),
                     [{} for _ in windows])
    # per window: (debit, credit) account -> [amount, count]
    moved: list[dict[Accounts, list[int]]] = [{} for _ in windows]
    pending: dict[Accounts, int] = {}  # (debit, credit) account -> amount of pending transfers
    # of the window found last
    sums: dict[Accounts, list[int]] = {}
    opened_at: float = _END
    closed_at: float = _END
    for t in ledger.book.by_id.values():
        kind = t.kind
        if kind == SETTLEMENT:
            out.settlements[t.id] = t
            continue
        pair = t.debit, t.credit
        if kind == PENDING_KIND:
            if t.state == PENDING:
                pending[pair] = pending.get(pair, 0) + t.amount
            continue
        if kind not in _MOVES:
            continue  # a void moves nothing
        ts = t.timestamp
        if not opened_at <= ts < closed_at:  # transfers come in timestamp order: rarely taken
            number = bisect_right(openings, ts) - 1
            if number < 0 or ts >= closings[number]:
                if t.debit.owner is not t.credit.owner:
                    out.outside.append(t)
                continue
            sums, opened_at, closed_at = moved[number], openings[number], closings[number]
        entry = sums.get(pair)
        if entry is None:
            entry = sums[pair] = [0, 0]
        entry[0] += t.amount
        entry[1] += 1
    _per_participant(out, moved, pending)
    return out


def _per_participant(out: Recomputed, moved: list[dict[Accounts, list[int]]],
                     pending: dict[Accounts, int]) -> None:
    """Fills `out` from sums per account pair, leaving out the pairs of one participant."""
    for number, sums in enumerate(moved):
        moves, pairs, involved = out.moves[number], out.pairs[number], out.involved[number]
        for (debit, credit), (amount, count) in sums.items():
            payer, payee, currency = debit.owner.id, credit.owner.id, debit.currency
            if payer == payee:
                continue
            moves.setdefault((payer, currency), [0, 0])[0] += amount
            moves.setdefault((payee, currency), [0, 0])[1] += amount
            pairs[payer, payee, currency] = pairs.get((payer, payee, currency), 0) + amount
            out.counts[number] += count
            for key in ((payer, currency), (payee, currency)):
                involved[key] = involved.get(key, 0) + count
    for (debit, credit), amount in pending.items():
        payer, currency = debit.owner.id, debit.currency
        if payer != credit.owner.id:
            out.reserved[payer, currency] = out.reserved.get((payer, currency), 0) + amount


def compare(ledger: Ledger, recomputed: Recomputed | None = None,
            closed_only: bool = True) -> list[Difference]:
    """Every difference between the windows' reports and the transfers."""
    clearing = ledger.clearing
    rec = recompute(ledger) if recomputed is None else recomputed
    diffs: list[Difference] = []
    referenced: set[str] = set()
    previous = None
    for number, w in enumerate(clearing.windows):
        wid = w.window_id
        if wid != number + 1:
            diffs.append(Difference(wid, "window", "window_id", wid, number + 1))
        if previous is not None and previous.closed_at != w.opened_at:
            diffs.append(Difference(wid, "window", "opened_at (previous closed_at)",
                                    w.opened_at, previous.closed_at))
        previous = w
        if w.settlement is not None:
            referenced.update(entry.transfer_id for entry in w.settlement)
        if closed_only and w.closed_at is None:
            continue
        rows = clearing.window_rows(w)
        matrix = clearing.window_matrix(w)
        diffs += _positions(wid, rows, rec.moves[number])
        if w.transfers != rec.counts[number]:
            diffs.append(Difference(wid, "transfers", "count", w.transfers, rec.counts[number]))
        diffs += _participant_transfers(wid, clearing.window_participant_transfers(w),
                                        rec.involved[number])
        diffs += _nets(wid, rows)
        diffs += _matrix(wid, matrix or [], rec.pairs[number])
        if w.settlement is not None:
            diffs += _settlement(wid, rows, w.settlement, rec.settlements)
    positions = clearing.positions
    for key in sorted(set(positions) | set(rec.reserved)):
        reported = positions[key].reserved if key in positions else None
        if reported != rec.reserved.get(key, 0):
            diffs.append(Difference(None, "reserved", f"{key[0]} {key[1]}", reported,
                                    rec.reserved.get(key, 0)))
    for t in rec.outside:
        diffs.append(Difference(None, "transfer", t.id, None, f"timestamp {t.timestamp} lies "
                                "in no window"))
    for tid in sorted(set(rec.settlements) - referenced):
        diffs.append(Difference(None, "settlement", tid, None, "posting of no window"))
    return diffs


def reconcile(ledger: Ledger) -> Reconciliation:
    """The closed windows of `ledger` against its transfers."""
    rec = recompute(ledger)
    closed = [n for n, w in enumerate(ledger.clearing.windows) if w.closed_at is not None]
    return Reconciliation(len(closed), sum(rec.counts[n] for n in closed),
                          compare(ledger, rec, closed_only=True))


def _positions(wid: int, rows: list[PositionRow],
               moves: dict[Key, list[int]]) -> list[Difference]:
    reported = {(pid, cur): (d, c) for pid, cur, d, c in rows}
    diffs: list[Difference] = []
    for key in sorted(set(reported) | set(moves)):
        d1, c1 = reported.get(key, (0, 0))
        d2, c2 = moves.get(key, [0, 0])
        name = f"{key[0]} {key[1]}"
        for what, a, b in (("debits", d1, d2), ("credits", c1, c2), ("net", c1 - d1, c2 - d2)):
            if a != b:
                diffs.append(Difference(wid, "position", f"{name} {what}", a, b))
    return diffs


def participant_transfers(involved: dict[Key, int]) -> dict[str, int]:
    """participant -> count, from one window's `involved` {(participant, currency): count}."""
    counts: dict[str, int] = {}
    for (pid, _), count in involved.items():
        counts[pid] = counts.get(pid, 0) + count
    return counts


def _participant_transfers(wid: int, reported: dict[str, int],
                           involved: dict[Key, int]) -> list[Difference]:
    """Each participant's count of the window's transfers (what its report shows)."""
    recomputed = participant_transfers(involved)
    return [Difference(wid, "transfers", f"{pid} count", reported.get(pid, 0),
                       recomputed.get(pid, 0))
            for pid in sorted(set(reported) | set(recomputed))
            if reported.get(pid, 0) != recomputed.get(pid, 0)]


def _nets(wid: int, rows: list[PositionRow]) -> list[Difference]:
    sums: dict[str, int] = {}
    for _, cur, d, c in rows:
        sums[cur] = sums.get(cur, 0) + c - d
    return [Difference(wid, "nets", f"{cur} sum of nets", total, 0)
            for cur, total in sorted(sums.items()) if total]


def _matrix(wid: int, matrix: list[MatrixRow], pairs: dict[Pair, int]) -> list[Difference]:
    reported = {(payer, payee, cur): amount for payer, payee, cur, amount in matrix}
    diffs: list[Difference] = []
    for key in sorted(set(reported) | {k for k, v in pairs.items() if v}):
        a, b = reported.get(key, 0), pairs.get(key, 0)
        if a != b:
            diffs.append(Difference(wid, "matrix", f"{key[0]}->{key[1]} {key[2]}", a, b))
    return diffs


def _settlement(wid: int, rows: list[PositionRow], settlement: list[SettlementEntry],
                postings: dict[str, Transfer]) -> list[Difference]:
    """The window's postings: one per instruction, the net's amount, the right direction."""
    expected = {(pid, cur): c - d for pid, cur, d, c in rows if c != d}
    listed = {(pid, cur): tid for pid, cur, tid in settlement}
    diffs: list[Difference] = []
    for key in sorted(set(expected) | set(listed)):
        pid, cur = key
        net = expected.get(key)
        tid = listed.get(key)
        name = f"{pid} {cur}"
        if net is None or tid is None:
            diffs.append(Difference(wid, "settlement", name, tid, None if net is None
                                    else settlement_id(wid, pid, cur)))
            continue
        t = postings.get(tid)
        if t is None:
            diffs.append(Difference(wid, "settlement", f"{name} posting {tid}", None,
                                    "missing"))
            continue
        owner = t.debit.owner.id if net < 0 else t.credit.owner.id
        if t.amount != abs(net) or owner != pid or t.debit.currency != cur:
            got = f"{t.amount} {t.debit.currency} {t.debit.owner.id}->{t.credit.owner.id}"
            want = f"{abs(net)} {cur} " + (f"{pid}->hub" if net < 0 else f"hub->{pid}")
            diffs.append(Difference(wid, "settlement", f"{name} posting {tid}", got, want))
    return diffs


def render(result: Reconciliation) -> str:
    """The reconciliation as text: one line when all agree, else a table of differences."""
    if result.ok:
        return (f"reconciled: {result.windows} windows, {result.transfers} transfers, "
                f"no differences")
    headers = ["window", "what", "key", "reported", "recomputed"]
    cells = [["-" if d.window_id is None else str(d.window_id), d.what, d.key,
              "-" if d.reported is None else str(d.reported),
              "-" if d.recomputed is None else str(d.recomputed)]
             for d in result.differences]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()
             for row in [headers] + cells]
    lines.append(f"NOT reconciled: {len(result.differences)} differences in "
                 f"{result.windows} windows, {result.transfers} transfers")
    return "\n".join(lines)
