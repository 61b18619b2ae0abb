"""The Ledger: op dispatch, participants, accounts, lookups and windows."""

from bisect import bisect_right
from operator import attrgetter
from typing import Any

from payswitch.protocol.ops import LEDGER, applied_by

from . import invariants, snapshot
from .clearing import Clearing, Position, SettlementEntry, Window, settlement_id
from .codes import (
    ACCOUNT_EXISTS, ACCOUNT_NOT_FOUND, ADMIN, CREATED, CURRENCY_MISMATCH,
    EXISTS, EXISTS_WITH_DIFFERENT_FIELDS, FORBIDDEN, LINKED_EVENT_CHAIN_OPEN,
    PARTICIPANT_EXISTS, PARTICIPANT_NOT_FOUND, UNKNOWN_OP, WINDOW_NOT_FOUND, Executed,
    LedgerError,
)
from .explain import SINGLE_LINKED, explain_account, explain_participant
from .handlers import dispatch_table, handler_table, handles
from .records import Account, Args, Item, Participant, Result, Totals, visible
from .transfers import Book, Commits, Posting

_timestamp = attrgetter("timestamp")
# Builds an Executed without the Python-level __new__ every NamedTuple has: one is made per
# request, and that __new__ alone cost 8% of a single transfer's execute (scripts/bench-ledger).
_tuple_new = tuple.__new__


class Ledger:
    """The deterministic state machine: time comes in only as `now_ns`."""

    def __init__(self) -> None:
        self.participants: dict[str, Participant] = {}
        self.accounts: dict[str, Account] = {}
        self.totals: dict[str, Totals] = {}  # currency -> Totals
        self.clearing = Clearing()
        self.book = Book(self.accounts, self.clearing)
        # op -> (handler, mutating); queries take no now_ns and change nothing
        self._ops = dispatch_table(self, _HANDLERS)

    def execute(self, caller: str, op: str, args: Args, now_ns: int) -> Executed:
        """Run one request. A failure is returned in Executed.error, never raised: a mutating
        request first expires the pending transfers due at now_ns, and that change stands
        (and is logged) even when the op then fails."""
        entry = self._ops.get(op)
        if entry is None:
            return Executed(None, False, LedgerError(UNKNOWN_OP, f"unknown op {op!r}"))
        handler, mutating = entry
        if not mutating:
            try:
                return _tuple_new(Executed, (handler(caller, args), False, None))
            except LedgerError as error:
                return Executed(None, False, error)
        book = self.book
        book.stored.clear()  # commits nobody took (no event stream): keep memory flat
        book.expired.clear()
        expired = False
        if book.heap and book.due(now_ns):  # no call at all without pending transfers
            expired = book.expire(now_ns) > 0
        try:
            result, changed = handler(caller, args, now_ns)
        except LedgerError as error:
            return Executed(None, expired, error)
        changed = changed or expired
        if changed and self.clearing.window is None:
            self.clearing.open(now_ns)  # window 1 opens at the first change
        return _tuple_new(Executed, (result, changed, None))

    # -- participants ----------------------------------------------------------------

    @handles("create_participants")
    def _create_participants(self, caller: str, args: Args, now: int) -> tuple[Result, bool]:
        before = self.book.last_ts
        results = []
        for item in args["participants"]:
            status = self._create_participant(item, now)
            results.append({"status": status} if status in (CREATED, EXISTS) else
                           {"status": status, "message": explain_participant(self, item, status)})
        return {"results": results}, self.book.last_ts != before

    def _create_participant(self, item: Item, now: int) -> str:
        pid = item["id"]
        caps = dict(item.get("net_debit_cap") or {})
        if pid == ADMIN:
            return PARTICIPANT_EXISTS
        old = self.participants.get(pid)
        if old is not None:
            return EXISTS if old.name == item["name"] and old.caps == caps else PARTICIPANT_EXISTS
        self.participants[pid] = Participant(pid, item["name"], caps, False, item["token_hash"],
                                             self.book.tick(now))
        return CREATED

    @handles("set_participant")
    def _set_participant(self, caller: str, args: Args, now: int) -> tuple[Result, bool]:
        p = self.participants.get(args["id"])
        if p is None:
            raise LedgerError(PARTICIPANT_NOT_FOUND, f"participant {args['id']} does not exist")
        settlement_accounts = args.get("settlement_accounts") or {}
        for currency, aid in settlement_accounts.items():  # all checked before any change
            if aid is not None:
                self._check_settlement_account(p, currency, aid)
        before = (dict(p.caps), p.suspended, dict(p.settlement_accounts))
        for currency, cap in (args.get("net_debit_cap") or {}).items():
            if cap is None:
                p.caps.pop(currency, None)
            else:
                p.caps[currency] = cap
        if args.get("suspended") is not None:
            p.suspended = args["suspended"]
        for currency, aid in settlement_accounts.items():
            if aid is None:
                p.settlement_accounts.pop(currency, None)
            else:
                p.settlement_accounts[currency] = aid
        return p.as_record(), (p.caps, p.suspended, p.settlement_accounts) != before

    def _check_settlement_account(self, p: Participant, currency: str, aid: str) -> None:
        account = self.accounts.get(aid)
        if account is None:
            raise LedgerError(ACCOUNT_NOT_FOUND, f"settlement account {aid} does not exist")
        if account.owner is not p:
            raise LedgerError(FORBIDDEN, f"settlement account {aid} belongs to "
                                         f"{account.owner.id}, not {p.id}")
        if account.currency != currency:
            raise LedgerError(CURRENCY_MISMATCH, f"settlement account {aid} is in "
                                                 f"{account.currency}, not {currency}")

    @handles("rotate_token")
    def _rotate_token(self, caller: str, args: Args, now: int) -> tuple[Result, bool]:
        """The new token's salted hash replaces the old one (the token never reaches here)."""
        p = self.participants.get(args["participant"])
        if p is None:
            raise LedgerError(PARTICIPANT_NOT_FOUND,
                              f"participant {args['participant']!r} does not exist")
        p.token_hash = args["token_hash"]
        return {"participant": p.id}, True

    @handles("get_participant")
    def _get_participant(self, caller: str, args: Args) -> Result:
        """The participant's record and, per currency it has accounts or a cap in, its position
        in the open window and its headroom: the largest interbank debit its cap allows now."""
        pid = args["id"]
        if caller != ADMIN and caller != pid:
            raise LedgerError(FORBIDDEN, f"{caller} may read only its own participant record, "
                                         f"not {pid}'s")
        p = self.participants.get(pid)
        if p is None:
            raise LedgerError(PARTICIPANT_NOT_FOUND, f"participant {pid} does not exist")
        positions = self.clearing.positions
        currencies = {cur for owner, cur in positions if owner == pid} | p.caps.keys()
        rows: list[Result] = []
        for currency in sorted(currencies):
            pos = positions.get((pid, currency)) or Position(pid, currency)
            cap = p.caps.get(currency)
            used = pos.debits - pos.credits + pos.reserved
            rows.append({"currency": currency, "debits": pos.debits, "credits": pos.credits,
                         "net": pos.credits - pos.debits, "reserved": pos.reserved,
                         "headroom": None if cap is None else max(0, cap - used)})
        return {**p.as_record(), "positions": rows}

    def participant_token_hash(self, pid: str) -> str | None:
        p = self.participants.get(pid)
        return None if p is None else p.token_hash

    # -- accounts ----------------------------------------------------------------------

    @handles("create_accounts")
    def _create_accounts(self, caller: str, args: Args, now: int) -> tuple[Result, bool]:
        before = self.book.last_ts
        results = []
        for item in args["accounts"]:
            status = self._create_account(caller, item, now)
            results.append({"status": status} if status in (CREATED, EXISTS) else {
                "status": status, "message": explain_account(self, caller, item, status)})
        return {"results": results}, self.book.last_ts != before

    def _create_account(self, caller: str, item: Item, now: int) -> str:
        pid = item["participant"]
        if caller != ADMIN and caller != pid:
            return FORBIDDEN
        owner = self.participants.get(pid)
        if owner is None:
            return PARTICIPANT_NOT_FOUND
        aid = item["id"]
        currency = item["currency"]
        limit = item["overdraft_limit"]
        old = self.accounts.get(aid)
        if old is not None:
            same = old.owner is owner and old.currency == currency and old.overdraft_limit == limit
            return EXISTS if same else ACCOUNT_EXISTS
        self.accounts[aid] = self.new_account(aid, owner, currency, limit, self.book.tick(now))
        return CREATED

    def new_account(self, aid: str, owner: Participant, currency: str, limit: int | None,
                    timestamp: int) -> Account:
        totals = self.totals.get(currency)
        if totals is None:
            totals = self.totals[currency] = Totals()
        return Account(aid, owner, currency, limit, timestamp,
                       self.clearing.position(owner.id, currency), totals)

    # -- transfers ---------------------------------------------------------------------

    @handles("create_transfers")
    def _create_transfers(self, caller: str, args: Args, now: int) -> tuple[Result, bool]:
        """Normalized items in `transfers`, or a batch of plain transfers in columns of their
        fields (protocol.plain_columns: how the decode worker hands over a large one, and how
        it is logged), each item's result the same either way."""
        book = self.book
        before = book.last_ts
        items = args.get("transfers")
        if items is None:
            results = self._plain_columns(caller, args, now)
        else:
            results = book.create_many(caller, items, now)
        return {"results": results}, book.last_ts != before

    def _plain_columns(self, caller: str, columns: Args, now: int) -> list[Result]:
        """create_many's results of plain transfers given as protocol.plain_columns makes them
        (each column of ids one string, the ids one a line)."""
        return self.book.create_plain_many(
            caller, columns["ids"].split("\n"), columns["debit_accounts"].split("\n"),
            columns["credit_accounts"].split("\n"), columns["amounts"], now)

    @handles("transfer")
    def _transfer(self, caller: str, item: Item, now: int) -> tuple[Result, bool]:
        if item["linked"]:
            raise LedgerError(LINKED_EVENT_CHAIN_OPEN, SINGLE_LINKED)
        result = self.book.create(caller, item, now)
        if result["timestamp"] is None:
            raise LedgerError(result["status"], result["message"])
        return result, result["status"] == CREATED

    @handles("transfer_group")
    def _transfer_group(self, caller: str, args: Args, now: int) -> tuple[Result, bool]:
        """Plain `transfer` requests of one caller (their fields in the columns a plain batch
        has), executed one after another at one `now`: the switch logs a run of them read
        together as one record (switch/session.py). Each gets what `transfer` gives it: its
        result, or the LedgerError it would raise, in `results`."""
        before = self.book.last_ts
        results: list[Result | LedgerError] = [
            result if result["timestamp"] is not None
            else LedgerError(result["status"], result["message"])
            for result in self._plain_columns(caller, args, now)]
        return {"results": results}, self.book.last_ts != before

    @handles("expire_pending")
    def _expire_pending(self, caller: str, args: Args, now: int) -> tuple[Result, bool]:
        return {}, False  # execute already expired what is due

    def next_expiry_ns(self) -> int | None:
        return self.book.next_expiry()

    def take_commits(self) -> Commits:
        """What the last mutating execute committed (transfers.Commits): the change stream's
        source, taken once per WAL record; reading it changes no state."""
        return self.book.take_commits()

    # -- lookups -----------------------------------------------------------------------

    @handles("lookup_accounts")
    def _lookup_accounts(self, caller: str, args: Args) -> Result:
        accounts = self.accounts
        found = (accounts.get(aid) for aid in args["ids"])
        return {"accounts": [a.as_record() for a in found
                             if a is not None and (caller == ADMIN or caller == a.owner.id)]}

    @handles("lookup_transfers")
    def _lookup_transfers(self, caller: str, args: Args) -> Result:
        by_id = self.book.by_id
        found = (by_id.get(tid) for tid in args["ids"])
        return {"transfers": [t.as_record() for t in found
                              if t is not None and visible(caller, t)]}

    @handles("get_account_transfers")
    def _get_account_transfers(self, caller: str, args: Args) -> Result:
        account = self.accounts.get(args["account"])
        if account is None or (caller != ADMIN and caller != account.owner.id):
            # The same words whether it is missing or another's: lookups never tell.
            raise LedgerError(ACCOUNT_NOT_FOUND, f"account {args['account']} does not exist"
                              + ("" if caller == ADMIN else " among your accounts"))
        transfers = account.transfers
        after = args.get("after")
        start = 0 if after is None else bisect_right(transfers, after, key=_timestamp)
        stop = start + args["limit"]
        page = transfers[start:stop]
        cursor = page[-1].timestamp if page and stop < len(transfers) else None
        # next_cursor: the same cursor as a decimal string, exact for JavaScript's JSON.parse
        return {"transfers": [t.as_record() for t in page], "next": cursor,
                "next_cursor": None if cursor is None else str(cursor)}

    # -- windows -----------------------------------------------------------------------

    @handles("open_window")
    def _open_window(self, caller: str, args: Args, now: int) -> tuple[Result, bool]:
        """Internal: the server opens window 1 at first start, so it is listed from then on."""
        if self.clearing.window is not None:
            return {}, False
        return {"window_id": self.clearing.open(self.book.tick(now)).window_id}, True

    @handles("close_window")
    def _close_window(self, caller: str, args: Args, now: int) -> tuple[Result, bool]:
        """Close the open window; with `settle`, post its settlement in the same step.

        All or nothing: when any settlement posting cannot be made, the close is refused with
        that posting's code and nothing changes (the window stays open).
        """
        book = self.book
        settle = args.get("settle")
        postings: list[Posting] = []
        settlement = None
        if settle is not None:
            postings, settlement = self._settlement_postings(settle["hub_accounts"])
        saved_ts = book.last_ts
        closed_at = book.tick(now)
        if postings:
            refused = book.post_settlement(postings, now)
            if refused is not None:
                book.last_ts = saved_ts
                code, posting = refused
                raise LedgerError(code, _posting_failure(code, posting))
        window = self.clearing.close(closed_at, settlement)
        return self.clearing.report(window, caller), True

    def _settlement_postings(
            self, hub_ids: dict[str, str]) -> tuple[list[Posting], list[SettlementEntry]]:
        """The postings that settle the open window's instructions through the hub's accounts.

        Payers pay their settlement account -> the hub's first, then the hub pays each
        receiver's settlement account, so a hub account that starts at 0 never goes below it.
        Returns (postings, settlement) or raises LedgerError when an account is missing.
        """
        hub: dict[str, Account] = {}
        for currency, aid in sorted(hub_ids.items()):
            account = self.accounts.get(aid)
            if account is None:
                raise LedgerError(ACCOUNT_NOT_FOUND,
                                  f"hub settlement account {aid} ({currency}) does not exist")
            if account.currency != currency:
                raise LedgerError(CURRENCY_MISMATCH, f"hub settlement account {aid} is in "
                                                     f"{account.currency}, not {currency}")
            hub[currency] = account
        clearing = self.clearing
        window_id = clearing.window.window_id if clearing.window is not None else 1
        rows = clearing.active_rows() if clearing.window is not None else []
        reference = f"settlement of window {window_id}"
        pay_in: list[Posting] = []
        pay_out: list[Posting] = []
        settlement: list[SettlementEntry] = []
        for pid, currency, debits, credits in rows:
            net = credits - debits
            if not net:
                continue
            hub_account = hub.get(currency)
            if hub_account is None:
                raise LedgerError(ACCOUNT_NOT_FOUND,
                                  f"no hub settlement account given for {currency}")
            own_id = self.participants[pid].settlement_accounts.get(currency)
            if own_id is None:
                raise LedgerError(ACCOUNT_NOT_FOUND, f"{pid} has no {currency} settlement "
                                  f"account (set_participant settlement_accounts)")
            own = self.accounts[own_id]
            tid = settlement_id(window_id, pid, currency)
            settlement.append(SettlementEntry(pid, currency, tid))
            if net < 0:
                pay_in.append(Posting(tid, own, hub_account, -net, reference))
            else:
                pay_out.append(Posting(tid, hub_account, own, net, reference))
        return pay_in + pay_out, settlement

    @handles("get_window")
    def _get_window(self, caller: str, args: Args) -> Result:
        windows = self.clearing.windows
        wid = args["window_id"]
        if not 1 <= wid <= len(windows):
            raise LedgerError(WINDOW_NOT_FOUND, _no_window(wid, windows))
        return self.clearing.report(windows[wid - 1], caller)

    @handles("get_window_matrix")
    def _get_window_matrix(self, caller: str, args: Args) -> Result:
        windows = self.clearing.windows
        wid = args["window_id"]
        if not 1 <= wid <= len(windows):
            raise LedgerError(WINDOW_NOT_FOUND, _no_window(wid, windows))
        return self.clearing.matrix_report(windows[wid - 1], caller)

    @handles("list_windows")
    def _list_windows(self, caller: str, args: Args) -> Result:
        return {"windows": self.clearing.listing()}

    # -- state -------------------------------------------------------------------------

    def snapshot_state(self) -> dict[str, Any]:
        return snapshot.dump(self)

    @classmethod
    def from_snapshot_state(cls, state: dict[str, Any]) -> "Ledger":
        ledger = cls()
        snapshot.load(ledger, state)
        return ledger

    def check_invariants(self) -> None:
        invariants.check(self)

    def counts(self) -> dict[str, int]:
        return {"participants": len(self.participants), "accounts": len(self.accounts),
                "transfers": len(self.book.by_id), "pending": self.book.pending_count,
                "windows": len(self.clearing.windows)}


def _posting_failure(code: str, posting: Posting) -> str:
    tid, debit, credit, amount = posting.transfer_id, posting.debit, posting.credit, posting.amount
    if code == EXISTS_WITH_DIFFERENT_FIELDS:
        detail = "its id is taken by an existing transfer"
    else:
        detail = code.replace("_", " ")
    return (f"settlement posting {tid} ({amount} {debit.currency} from {debit.id} to "
            f"{credit.id}): {detail}; nothing was changed, the window is still open")


def _no_window(wid: int, windows: list[Window]) -> str:
    known = f"windows are 1..{len(windows)}" if windows else "no window is open yet"
    return f"window {wid} does not exist ({known})"


_HANDLERS = handler_table(Ledger, applied_by(LEDGER))  # checked once, at import
