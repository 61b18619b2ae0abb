"""Transfer rules: one- and two-phase transfers, linked chains, idempotency, expiry."""

from heapq import heapify, heappop, heappush
from itertools import count
from typing import Any, Iterable, NamedTuple

from payswitch.protocol.transfer import plain_normalized

from .clearing import Clearing, within_cap
from .explain import CHAIN_OPEN, chain_failed, explain
from .codes import (
    ACCOUNT_NOT_FOUND, ADMIN, BAD_REQUEST, CREATED, CURRENCY_MISMATCH, EXCEEDS_PENDING_AMOUNT,
    EXISTS, EXISTS_WITH_DIFFERENT_FIELDS, FORBIDDEN, INSUFFICIENT_FUNDS, INVALID_AMOUNT,
    LINKED_EVENT_CHAIN_OPEN, LINKED_EVENT_FAILED, NET_DEBIT_CAP_EXCEEDED,
    PARTICIPANT_SUSPENDED, PENDING_ALREADY_POSTED, PENDING_ALREADY_VOIDED, PENDING_EXPIRED,
    PENDING_NOT_FOUND, SAME_ACCOUNT,
)
from .records import (
    EXPIRED, PENDING, PENDING_KIND, POST, POSTED, REGULAR, SETTLEMENT, VOID, VOIDED, Account,
    Item, Result, Transfer, new_transfer, visible,
)

_SETTLED = {POSTED: PENDING_ALREADY_POSTED, VOIDED: PENDING_ALREADY_VOIDED,
            EXPIRED: PENDING_EXPIRED}


class Commits(NamedTuple):
    """What the ledger committed since it was last asked (see Ledger.take_commits): the pending
    transfers it expired and the transfers it stored, each in commit order. Nothing here changes
    the state, so replay is as deterministic with it as without."""
    expired: list[Transfer]
    transfers: list[Transfer]


class Deadline(NamedTuple):
    """An entry of the expiry heap, ordered by deadline, then by timestamp; a rolled back pending
    leaves an entry whose timestamp is reused, so seq breaks that tie."""
    at: int
    timestamp: int
    seq: int
    transfer: Transfer


class Posting(NamedTuple):
    """A settlement posting to make (see Book.post_settlement)."""
    transfer_id: str
    debit: Account
    credit: Account
    amount: int
    reference: str


class Book:
    """All transfers and the clock of committed events.

    `create` returns the item's Result, a failure among them, so the success path raises
    nothing.
    """

    __slots__ = ("accounts", "clearing", "by_id", "heap", "heap_seq", "stale", "last_ts",
                 "pending_count", "stored", "expired")

    def __init__(self, accounts: dict[str, Account], clearing: Clearing) -> None:
        self.accounts = accounts
        self.clearing = clearing
        self.by_id: dict[str, Transfer] = _dict_keeping_hashes()
        # entries of transfers no longer pending are stale and skipped
        self.heap: list[Deadline] = []
        self.heap_seq = count()
        self.stale = 0  # stale entries in heap
        self.last_ts = 0
        self.pending_count = 0
        # Transfers stored and pending transfers expired since the last take_commits, in order
        # (a rolled back transfer leaves `stored` again): what the committed-event stream reports.
        self.stored: list[Transfer] = []
        self.expired: list[Transfer] = []

    def tick(self, now: int) -> int:
        """The timestamp of the next committed event: strictly increasing."""
        ts = self.last_ts + 1
        if now > ts:
            ts = now
        self.last_ts = ts
        return ts

    # -- one item -------------------------------------------------------------------

    def create(self, caller: str, item: Item, now: int) -> Result:
        """The result of one item: {status, timestamp}, or a failure with its message (made
        before anything else changes, as a linked chain needs it before it rolls back)."""
        old = self.by_id.get(item["id"])
        if old is not None:
            if not visible(caller, old):  # never confirm, or leak, another's transfer
                return self._refused(caller, item, EXISTS_WITH_DIFFERENT_FIELDS
                                     if self._debits_own(caller, item) else FORBIDDEN)
            if same_fields(old, item):
                return {"status": EXISTS, "timestamp": old.timestamp}
            return self._refused(caller, item, EXISTS_WITH_DIFFERENT_FIELDS)
        if item["amount"] == 0:
            return self._refused(caller, item, INVALID_AMOUNT)
        if item["post_pending_id"] is not None:
            return self._settle(caller, item, item["post_pending_id"], POST, now)
        if item["void_pending_id"] is not None:
            return self._settle(caller, item, item["void_pending_id"], VOID, now)
        row = (item["id"], item["debit_account"], item["credit_account"], item["amount"])
        return self._new_many(caller, (row,), item["currency"], item["reference"],
                              item["pending"], item["timeout"], now, item)[0]

    def _refused(self, caller: str, item: Item, status: str) -> Result:
        return _failed(status, explain(self, caller, item, status))

    def _debits_own(self, caller: str, item: Item) -> bool:
        account = self.accounts.get(item["debit_account"])
        return account is not None and account.owner.id == caller

    def _new_many(self, caller: str, rows: Iterable[tuple[str, str, str, int]],
                  currency: str | None, reference: str | None, pending: bool, timeout: int,
                  now: int, item: Item | None) -> list[Result]:
        """The results of new transfers, given as rows of the fields that differ (id, debit and
        credit accounts, amount) and the fields they share (a plain batch's, or the one
        normalized `item`'s): every check of a new transfer, its timestamp and its effects, in
        one loop body with what is the same for every row found once. An id already taken is
        `create`d. `item` is None for plain transfers: the normalized map of one is made only
        when it is needed."""
        results: list[Result] = []
        by_id = self.by_id
        accounts = self.accounts
        # tick(now) for every event at this now: the first is max(last_ts + 1, now), each
        # next one the one before + 1
        clock = self.last_ts if self.last_ts >= now else now - 1
        for transfer_id, debit_id, credit_id, amount in rows:
            if transfer_id in by_id:  # idempotency compares every field
                taken = item if item is not None else plain_normalized(
                    transfer_id, debit_id, credit_id, amount)
                results.append(self.create(caller, taken, now))
                continue
            dr = accounts.get(debit_id)
            cr = accounts.get(credit_id)
            if dr is None or cr is None:
                refusal = ACCOUNT_NOT_FOUND
            elif dr is cr:
                refusal = SAME_ACCOUNT
            elif cr.currency != dr.currency or (currency is not None and currency != dr.currency):
                refusal = CURRENCY_MISMATCH
            else:
                payer = dr.owner
                limit = dr.overdraft_limit
                if caller != payer.id and caller != ADMIN:
                    refusal = FORBIDDEN
                elif payer.suspended or cr.owner.suspended:
                    refusal = PARTICIPANT_SUSPENDED
                elif (limit is not None and dr.credits_posted - dr.debits_posted
                      - dr.debits_pending - amount < -limit):
                    refusal = INSUFFICIENT_FUNDS
                # (no call when the payer has no cap at all)
                elif payer is not cr.owner and payer.caps and not within_cap(dr, amount):
                    refusal = NET_DEBIT_CAP_EXCEEDED
                else:
                    clock += 1
                    self.last_ts = clock
                    if pending:
                        t = new_transfer(transfer_id, dr, cr, amount, reference, timeout,
                                         PENDING_KIND, None, PENDING, clock)
                        self._reserve(t, amount)
                        self.pending_count += 1
                        if timeout:
                            heappush(self.heap, self.deadline_entry(t))
                    else:
                        t = new_transfer(transfer_id, dr, cr, amount, reference, 0, REGULAR,
                                         None, POSTED, clock)
                        self._post(t, amount)
                    self._store(t)
                    results.append({"status": CREATED, "timestamp": clock})
                    continue
            refused = item if item is not None else plain_normalized(
                transfer_id, debit_id, credit_id, amount)
            results.append(self._refused(caller, refused, refusal))
        return results

    def _settle(self, caller: str, item: Item, pending_id: str, kind: str,
                now: int) -> Result:
        """Post or void the pending transfer `pending_id`.

        A pending transfer past its deadline is already expired here: every mutating op
        first expires what is due at its now.
        """
        p = self.by_id.get(pending_id)
        if p is None or p.kind != PENDING_KIND or not visible(caller, p):
            return self._refused(caller, item, PENDING_NOT_FOUND)
        amount = item["amount"]
        if not copies_pending(item, p) or (kind == VOID and amount not in (None, p.amount)):
            return self._refused(caller, item, BAD_REQUEST)
        if p.state != PENDING:
            return self._refused(caller, item, _SETTLED[p.state or ""])
        if amount is None:
            amount = p.amount
        elif amount > p.amount:
            return self._refused(caller, item, EXCEEDS_PENDING_AMOUNT)
        t = new_transfer(item["id"], p.debit, p.credit, amount, item["reference"], 0, kind, p,
                         POSTED if kind == POST else VOIDED, self.tick(now))
        self._release(p)
        p.state = t.state
        if p.timeout:
            self.stale += 1
        if kind == POST:
            self._post(t, amount)
        self._store(t)
        return {"status": CREATED, "timestamp": t.timestamp}

    # -- effects on balances; a negative amount undoes ---------------------------------

    def _post(self, t: Transfer, amount: int) -> None:
        """Post `amount` from t's debit to its credit account, and between the two owners'
        positions when they differ, unless t is a settlement posting (it settles positions, it
        is not traffic)."""
        dr = t.debit
        cr = t.credit
        dr.debits_posted += amount
        cr.credits_posted += amount
        totals = dr.totals
        totals.debits_posted += amount
        totals.credits_posted += amount
        if totals.debits_posted != totals.credits_posted:  # explicit: survives python -O
            raise AssertionError(f"{dr.currency}: posted debits != posted credits")
        if dr.owner is not cr.owner and t.kind != SETTLEMENT:
            self.clearing.move(dr.position, cr.position, amount)

    def _reserve(self, t: Transfer, amount: int) -> None:
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

    def _release(self, p: Transfer) -> None:
        self._reserve(p, -p.amount)
        self.pending_count -= 1

    def _store(self, t: Transfer) -> None:
        self.by_id[t.id] = t
        self.stored.append(t)
        t.debit.transfers.append(t)
        t.credit.transfers.append(t)

    def _undo(self, t: Transfer) -> None:
        """Reverse a transfer committed by a chain that then failed (newest first)."""
        kind = t.kind
        if kind == REGULAR or kind == SETTLEMENT:
            self._post(t, -t.amount)
        elif kind == PENDING_KIND:
            self._release(t)
            t.state = None  # makes its expiry heap entry stale
            if t.timeout:
                self.stale += 1
        else:
            p = t.target
            if p is None:
                raise AssertionError(f"undo of {t.id}: a {kind} transfer without its pending one")
            self._reserve(p, p.amount)
            self.pending_count += 1
            p.state = PENDING
            if p.timeout:
                self.stale -= 1  # live again (the heap is compacted only between requests)
            if kind == POST:
                self._post(t, -t.amount)
        del self.by_id[t.id]
        if (t.debit.transfers[-1] is not t or t.credit.transfers[-1] is not t
                or self.stored.pop() is not t):
            raise AssertionError(f"undo of {t.id}: it is not the newest transfer stored")
        t.debit.transfers.pop()
        t.credit.transfers.pop()

    # -- many items and linked chains -------------------------------------------------

    def create_many(self, caller: str, items: list[Item], now: int) -> list[Result]:
        results: list[Result] = []
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
            append(create(caller, item, now))
            i += 1
        if open_start < end:
            results.extend(_failed(LINKED_EVENT_FAILED, CHAIN_OPEN)
                           for _ in range(open_start, end - 1))
            results.append(_failed(LINKED_EVENT_CHAIN_OPEN, CHAIN_OPEN))
        return results

    def create_plain_many(self, caller: str, ids: list[str], debit_ids: list[str],
                          credit_ids: list[str], amounts: list[int], now: int) -> list[Result]:
        """create_many of plain items (none linked), given as columns of their four fields:
        the same results, without a normalized map per item unless it fails."""
        return self._new_many(caller, zip(ids, debit_ids, credit_ids, amounts, strict=True), None,
                              None, False, 0, now, None)

    def _chain(self, caller: str, items: list[Item], start: int, now: int,
               results: list[Result]) -> int:
        """Apply the closed chain starting at `start` as a whole; return the next index."""
        stop = start
        while items[stop]["linked"]:
            stop += 1
        saved_ts = self.last_ts
        first_stored = len(self.stored)  # the chain's new transfers, in order, from here
        done: list[Result] = []
        for k in range(start, stop + 1):
            result = self.create(caller, items[k], now)
            if result["timestamp"] is None:  # its message is made before the roll back
                others = chain_failed(k, items[k], result["status"])
                for created in reversed(self.stored[first_stored:]):
                    self._undo(created)
                self.last_ts = saved_ts  # rolled back events consume no timestamps
                results.extend(_failed(LINKED_EVENT_FAILED, others) for _ in range(start, k))
                results.append(result)
                results.extend(_failed(LINKED_EVENT_FAILED, others) for _ in range(k, stop))
                return stop + 1
            done.append(result)
        results.extend(done)
        return stop + 1

    # -- settlement postings ---------------------------------------------------------

    def post_settlement(self, postings: list[Posting],
                        now: int) -> tuple[str, Posting] | None:
        """Apply settlement postings, all or none.

        They bypass suspension and caps (they settle obligations already incurred) but not
        overdraft limits. Returns None when every posting was applied; otherwise the code and
        the first posting that cannot be, with nothing applied and the clock as it was.
        """
        saved_ts = self.last_ts
        done: list[Transfer] = []
        for posting in postings:
            tid, dr, cr, amount = posting.transfer_id, posting.debit, posting.credit, posting.amount
            code = self._settlement_refusal(tid, dr, cr, amount)
            if code is not None:
                for t in reversed(done):
                    self._undo(t)
                self.last_ts = saved_ts
                return code, posting
            t = new_transfer(tid, dr, cr, amount, posting.reference, 0, SETTLEMENT, None,
                             POSTED, self.tick(now))
            self._post(t, amount)
            self._store(t)
            done.append(t)
        return None

    def _settlement_refusal(self, tid: str, dr: Account, cr: Account,
                            amount: int) -> str | None:
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

    def due(self, now: int) -> bool:
        """Whether `expire` has work at now: a deadline passed or the heap is half stale."""
        heap = self.heap
        return bool(heap) and (heap[0].at <= now or self.stale * 2 > len(heap))

    def expire(self, now: int) -> int:
        """Expire every pending transfer whose deadline is <= now; return how many.

        Runs between requests only, so it may also drop the stale heap entries.
        """
        if self.stale * 2 > len(self.heap):
            self.heap = [entry for entry in self.heap if entry.transfer.state == PENDING]
            heapify(self.heap)
            self.stale = 0
        heap = self.heap
        expired = 0
        while heap and heap[0].at <= now:
            t = heappop(heap).transfer
            if t.state == PENDING:
                self._release(t)
                t.state = EXPIRED
                self.expired.append(t)
                expired += 1
            else:
                self.stale -= 1
        return expired

    def deadline_entry(self, t: Transfer) -> Deadline:
        """The expiry heap's entry of pending transfer `t`, which has a timeout."""
        deadline = t.deadline()
        if deadline is None:
            raise AssertionError(f"transfer {t.id} has no timeout: it never expires")
        return Deadline(deadline, t.timestamp, next(self.heap_seq), t)

    def take_commits(self) -> Commits:
        """The Commits since the last take; the next ones start empty."""
        commits = Commits(self.expired, self.stored)
        self.expired = []
        self.stored = []
        return commits

    def next_expiry(self) -> int | None:
        heap = self.heap
        while heap and heap[0].transfer.state != PENDING:
            heappop(heap)  # posted, voided or rolled back since
            self.stale -= 1
        return heap[0].at if heap else None


def _dict_keeping_hashes() -> dict[Any, Any]:
    """An empty dict that keeps each key's hash beside it. CPython lays out a dict whose keys
    have all been str without the hashes, and a dict that has held another key with them, for
    good; so a lookup of an id not there (every new transfer's) and a resize need not read each
    colliding key, cold in a dict of a million ids: 0.1-0.15 us less a transfer at a million
    (scripts/bench-ledger --groups)."""
    table: dict[Any, Any] = {0: None}
    del table[0]
    return table


def _failed(code: str, message: str) -> Result:
    return {"status": code, "timestamp": None, "message": message}


def copies_pending(item: Item, p: Transfer) -> bool:
    """Accounts and currency of a post or void, when given, equal the pending's."""
    debit = item["debit_account"]
    credit = item["credit_account"]
    currency = item["currency"]
    return ((debit is None or debit == p.debit.id)
            and (credit is None or credit == p.credit.id)
            and (currency is None or currency == p.debit.currency))


def same_fields(t: Transfer, item: Item) -> bool:
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
