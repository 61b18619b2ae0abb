"""Transfer rules: one- and two-phase transfers, linked chains, idempotency, expiry."""

from heapq import heapify, heappop, heappush
from itertools import count
from typing import NamedTuple

from .clearing import within_cap
from .explain import CHAIN_OPEN, chain_failed, explain
from .codes import (
    ACCOUNT_NOT_FOUND, ADMIN, BAD_REQUEST, CREATED, CURRENCY_MISMATCH, EXCEEDS_PENDING_AMOUNT,
    EXISTS, EXISTS_WITH_DIFFERENT_FIELDS, FORBIDDEN, INSUFFICIENT_FUNDS, INVALID_AMOUNT,
    LINKED_EVENT_CHAIN_OPEN, LINKED_EVENT_FAILED, NET_DEBIT_CAP_EXCEEDED,
    PARTICIPANT_SUSPENDED, PENDING_ALREADY_POSTED, PENDING_ALREADY_VOIDED, PENDING_EXPIRED,
    PENDING_NOT_FOUND, SAME_ACCOUNT,
)
from .records import (
    EXPIRED, PENDING, PENDING_KIND, POST, POSTED, REGULAR, SETTLEMENT, VOID, VOIDED, Transfer,
    visible,
)

_SETTLED = {POSTED: PENDING_ALREADY_POSTED, VOIDED: PENDING_ALREADY_VOIDED,
            EXPIRED: PENDING_EXPIRED}


class Commits(NamedTuple):
    """What the ledger committed since it was last asked (see Ledger.take_commits): the pending
    transfers it expired and the transfers it stored, each in commit order. Nothing here changes
    the state, so replay is as deterministic with it as without."""
    expired: list
    transfers: list


class Book:
    """All transfers and the clock of committed events.

    `create` returns (status, transfer); the transfer is None exactly when the item
    failed, so the success path raises nothing.
    """

    __slots__ = ("accounts", "clearing", "by_id", "heap", "heap_seq", "stale", "last_ts",
                 "pending_count", "stored", "expired")

    def __init__(self, accounts, clearing):
        self.accounts = accounts
        self.clearing = clearing
        self.by_id = {}
        # (deadline, timestamp, seq, transfer); entries of transfers no longer pending are
        # stale and skipped. A rolled back pending leaves an entry whose timestamp is
        # reused, so seq breaks the tie.
        self.heap = []
        self.heap_seq = count()
        self.stale = 0  # stale entries in heap
        self.last_ts = 0
        self.pending_count = 0
        # Transfers stored and pending transfers expired since the last take_commits, in order
        # (a rolled back transfer leaves `stored` again): what the committed-event stream reports.
        self.stored = []
        self.expired = []

    def tick(self, now):
        """The timestamp of the next committed event: strictly increasing."""
        ts = self.last_ts + 1
        if now > ts:
            ts = now
        self.last_ts = ts
        return ts

    # -- one item -------------------------------------------------------------------

    def create(self, caller, item, now):
        old = self.by_id.get(item["id"])
        if old is not None:
            if not visible(caller, old):  # never confirm, or leak, another's transfer
                return (EXISTS_WITH_DIFFERENT_FIELDS if self._debits_own(caller, item)
                        else FORBIDDEN), None
            if same_fields(old, item):
                return EXISTS, old
            return EXISTS_WITH_DIFFERENT_FIELDS, None
        if item["amount"] == 0:
            return INVALID_AMOUNT, None
        if item["post_pending_id"] is not None:
            return self._settle(caller, item, item["post_pending_id"], POST, now)
        if item["void_pending_id"] is not None:
            return self._settle(caller, item, item["void_pending_id"], VOID, now)
        return self._new(caller, item, now)

    def _debits_own(self, caller, item):
        account = self.accounts.get(item["debit_account"])
        return account is not None and account.owner.id == caller

    def _new(self, caller, item, now):
        dr = self.accounts.get(item["debit_account"])
        cr = self.accounts.get(item["credit_account"])
        if dr is None or cr is None:
            return ACCOUNT_NOT_FOUND, None
        if dr is cr:
            return SAME_ACCOUNT, None
        currency = item["currency"]
        if cr.currency != dr.currency or (currency is not None and currency != dr.currency):
            return CURRENCY_MISMATCH, None
        payer = dr.owner
        if caller != payer.id and caller != ADMIN:
            return FORBIDDEN, None
        if payer.suspended or cr.owner.suspended:
            return PARTICIPANT_SUSPENDED, None
        amount = item["amount"]
        limit = dr.overdraft_limit
        if (limit is not None
                and dr.credits_posted - dr.debits_posted - dr.debits_pending - amount < -limit):
            return INSUFFICIENT_FUNDS, None
        if payer is not cr.owner and not within_cap(dr, amount):
            return NET_DEBIT_CAP_EXCEEDED, None
        if item["pending"]:
            t = Transfer(item["id"], dr, cr, amount, item["reference"], item["timeout"],
                         PENDING_KIND, None, PENDING, self.tick(now))
            self._reserve(t, amount)
            self.pending_count += 1
            if t.timeout:
                heappush(self.heap, (t.deadline(), t.timestamp, next(self.heap_seq), t))
        else:
            t = Transfer(item["id"], dr, cr, amount, item["reference"], 0, REGULAR, None,
                         POSTED, self.tick(now))
            self._move(t, amount)
        self._store(t)
        return CREATED, t

    def _settle(self, caller, item, pending_id, kind, now):
        """Post or void the pending transfer `pending_id`.

        A pending transfer past its deadline is already expired here: every mutating op
        first expires what is due at its now.
        """
        p = self.by_id.get(pending_id)
        if p is None or p.kind != PENDING_KIND or not visible(caller, p):
            return PENDING_NOT_FOUND, None
        amount = item["amount"]
        if not copies_pending(item, p) or (kind == VOID and amount not in (None, p.amount)):
            return BAD_REQUEST, None
        if p.state != PENDING:
            return _SETTLED[p.state], None
        if amount is None:
            amount = p.amount
        elif amount > p.amount:
            return EXCEEDS_PENDING_AMOUNT, None
        t = Transfer(item["id"], p.debit, p.credit, amount, item["reference"], 0, kind, p,
                     POSTED if kind == POST else VOIDED, self.tick(now))
        self._release(p)
        p.state = t.state
        if p.timeout:
            self.stale += 1
        if kind == POST:
            self._move(t, amount)
        self._store(t)
        return CREATED, t

    # -- effects on balances; a negative amount undoes ---------------------------------

    def _move(self, t, amount):
        """Post `amount` from t's debit to its credit account, and between the two owners'
        positions when they differ."""
        self._post(t, amount)
        dr, cr = t.debit, t.credit
        if dr.owner is not cr.owner:
            self.clearing.move(dr.position, cr.position, amount)

    def _post(self, t, amount):
        """Post `amount` on balances only, never a position (settlement postings use it alone)."""
        dr = t.debit
        cr = t.credit
        dr.debits_posted += amount
        cr.credits_posted += amount
        totals = dr.totals
        totals.debits_posted += amount
        totals.credits_posted += amount
        if totals.debits_posted != totals.credits_posted:  # explicit: survives python -O
            raise AssertionError(f"{t.debit.currency}: posted debits != posted credits")

    def _reserve(self, t, amount):
        dr = t.debit
        cr = t.credit
        dr.debits_pending += amount
        cr.credits_pending += amount
        totals = dr.totals
        totals.debits_pending += amount
        totals.credits_pending += amount
        if totals.debits_pending != totals.credits_pending:
            raise AssertionError(f"{t.debit.currency}: pending debits != pending credits")
        if dr.owner is not cr.owner:
            dr.position.reserved += amount

    def _release(self, p):
        self._reserve(p, -p.amount)
        self.pending_count -= 1

    def _store(self, t):
        self.by_id[t.id] = t
        self.stored.append(t)
        t.debit.transfers.append(t)
        t.credit.transfers.append(t)

    def _undo(self, t):
        """Reverse a transfer committed by a chain that then failed (newest first)."""
        kind = t.kind
        if kind == REGULAR:
            self._move(t, -t.amount)
        elif kind == SETTLEMENT:
            self._post(t, -t.amount)
        elif kind == PENDING_KIND:
            self._release(t)
            t.state = None  # makes its expiry heap entry stale
            if t.timeout:
                self.stale += 1
        else:
            p = t.target
            self._reserve(p, p.amount)
            self.pending_count += 1
            p.state = PENDING
            if p.timeout:
                self.stale -= 1  # live again (the heap is compacted only between requests)
            if kind == POST:
                self._move(t, -t.amount)
        del self.by_id[t.id]
        if (t.debit.transfers[-1] is not t or t.credit.transfers[-1] is not t
                or self.stored.pop() is not t):
            raise AssertionError(f"undo of {t.id}: it is not the newest transfer stored")
        t.debit.transfers.pop()
        t.credit.transfers.pop()

    # -- many items and linked chains -------------------------------------------------

    def create_many(self, caller, items, now):
        results = []
        end = len(items)
        open_start = end  # a chain still open at the end starts here
        while open_start and items[open_start - 1]["linked"]:
            open_start -= 1
        create = self.create
        append = results.append
        i = 0
        while i < open_start:
            item = items[i]
            if item["linked"]:
                i = self._chain(caller, items, i, now, results)
                continue
            status, t = create(caller, item, now)
            if t is None:
                append(_failed(status, explain(self, caller, item, status)))
            else:
                append({"status": status, "timestamp": t.timestamp})
            i += 1
        if open_start < end:
            results.extend(_failed(LINKED_EVENT_FAILED, CHAIN_OPEN)
                           for _ in range(open_start, end - 1))
            results.append(_failed(LINKED_EVENT_CHAIN_OPEN, CHAIN_OPEN))
        return results

    def _chain(self, caller, items, start, now, results):
        """Apply the closed chain starting at `start` as a whole; return the next index."""
        stop = start
        while items[stop]["linked"]:
            stop += 1
        saved_ts = self.last_ts
        done = []
        for k in range(start, stop + 1):
            status, t = self.create(caller, items[k], now)
            if t is None:
                message = explain(self, caller, items[k], status)  # before the roll back
                others = chain_failed(k, items[k], status)
                for old_status, old in reversed(done):
                    if old_status == CREATED:
                        self._undo(old)
                self.last_ts = saved_ts  # rolled back events consume no timestamps
                results.extend(_failed(LINKED_EVENT_FAILED, others) for _ in range(start, k))
                results.append(_failed(status, message))
                results.extend(_failed(LINKED_EVENT_FAILED, others) for _ in range(k, stop))
                return stop + 1
            done.append((status, t))
        results.extend({"status": s, "timestamp": t.timestamp} for s, t in done)
        return stop + 1

    # -- settlement postings ---------------------------------------------------------

    def post_settlement(self, postings, now):
        """Apply settlement postings `[(id, debit, credit, amount, reference)]`, all or none.

        They bypass suspension and caps (they settle obligations already incurred) but not
        overdraft limits. Returns None when every posting was applied; otherwise (code, posting)
        of the first that cannot be, with nothing applied and the clock as it was.
        """
        saved_ts = self.last_ts
        done = []
        for posting in postings:
            tid, dr, cr, amount, reference = posting
            code = self._settlement_refusal(tid, dr, cr, amount)
            if code is not None:
                for t in reversed(done):
                    self._undo(t)
                self.last_ts = saved_ts
                return code, posting
            t = Transfer(tid, dr, cr, amount, reference, 0, SETTLEMENT, None, POSTED,
                         self.tick(now))
            self._post(t, amount)
            self._store(t)
            done.append(t)
        return None

    def _settlement_refusal(self, tid, dr, cr, amount):
        if tid in self.by_id:
            return EXISTS_WITH_DIFFERENT_FIELDS  # the deterministic id is taken
        if dr is cr:
            return SAME_ACCOUNT
        if dr.currency != cr.currency:
            return CURRENCY_MISMATCH
        limit = dr.overdraft_limit
        if (limit is not None
                and dr.credits_posted - dr.debits_posted - dr.debits_pending - amount < -limit):
            return INSUFFICIENT_FUNDS
        return None

    # -- expiry -----------------------------------------------------------------------

    def due(self, now):
        """Whether `expire` has work at now: a deadline passed or the heap is half stale."""
        heap = self.heap
        return bool(heap) and (heap[0][0] <= now or self.stale * 2 > len(heap))

    def expire(self, now):
        """Expire every pending transfer whose deadline is <= now; return how many.

        Runs between requests only, so it may also drop the stale heap entries.
        """
        if self.stale * 2 > len(self.heap):
            self.heap = [entry for entry in self.heap if entry[3].state == PENDING]
            heapify(self.heap)
            self.stale = 0
        heap = self.heap
        expired = 0
        while heap and heap[0][0] <= now:
            t = heappop(heap)[3]
            if t.state == PENDING:
                self._release(t)
                t.state = EXPIRED
                self.expired.append(t)
                expired += 1
            else:
                self.stale -= 1
        return expired

    def take_commits(self):
        """The Commits since the last take; the next ones start empty."""
        commits = Commits(self.expired, self.stored)
        self.expired = []
        self.stored = []
        return commits

    def next_expiry(self):
        heap = self.heap
        while heap and heap[0][3].state != PENDING:
            heappop(heap)  # posted, voided or rolled back since
            self.stale -= 1
        return heap[0][0] if heap else None


def _failed(code, message):
    return {"status": code, "timestamp": None, "message": message}


def copies_pending(item, p):
    """Accounts and currency of a post or void, when given, equal the pending's."""
    debit = item["debit_account"]
    credit = item["credit_account"]
    currency = item["currency"]
    return ((debit is None or debit == p.debit.id)
            and (credit is None or credit == p.credit.id)
            and (currency is None or currency == p.debit.currency))


def same_fields(t, item):
    """Idempotency: the fields of docs/protocol.md, defaults filled, derived ones equal."""
    amount = item["amount"]
    if amount is None and t.target is not None:
        amount = t.target.amount  # an omitted post or void amount is the full pending one
    target_id = t.target.id if t.target is not None else None
    return (amount == t.amount
            and copies_pending(item, t)
            and item["reference"] == t.reference
            and item["pending"] == (t.kind == PENDING_KIND)
            and item["timeout"] == t.timeout
            and item["post_pending_id"] == (target_id if t.kind == POST else None)
            and item["void_pending_id"] == (target_id if t.kind == VOID else None))
