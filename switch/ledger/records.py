"""The stored records: participants, accounts, per-currency totals and transfers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .codes import ADMIN

if TYPE_CHECKING:
    from .clearing import Position

# A request's normalized args, a transfer item among them, and a reply's result: maps as the
# protocol layer (protocol/validate.py) hands them over and encodes them.
Args = dict[str, Any]
Item = dict[str, Any]
Result = dict[str, Any]

# Transfer kinds.
REGULAR = "regular"
PENDING_KIND = "pending"
POST = "post"
VOID = "void"
# A settlement posting made by `close_window {settle}`: posted money between a participant's
# settlement account and the hub's, exempt from positions (it settles a window, it is not traffic).
SETTLEMENT = "settlement"

# Transfer states.
PENDING = "pending"
POSTED = "posted"
VOIDED = "voided"
EXPIRED = "expired"


class Participant:
    __slots__ = ("id", "name", "caps", "suspended", "token_hash", "timestamp",
                 "settlement_accounts")

    def __init__(self, pid: str, name: str, caps: dict[str, int], suspended: bool,
                 token_hash: str, timestamp: int,
                 settlement_accounts: dict[str, str] | None = None) -> None:
        self.id = pid
        self.name = name
        self.caps = caps  # currency -> net debit cap; a missing currency is unlimited
        self.suspended = suspended
        self.token_hash = token_hash
        self.timestamp = timestamp
        # currency -> id of the participant's own account that settlement postings use
        self.settlement_accounts = settlement_accounts if settlement_accounts is not None else {}

    def as_record(self) -> Result:
        return {"id": self.id, "name": self.name, "net_debit_cap": dict(self.caps),
                "suspended": self.suspended,
                "settlement_accounts": dict(self.settlement_accounts)}


class Totals:
    """Running per-currency sums over all accounts, checked against a recomputation."""

    __slots__ = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")

    def __init__(self) -> None:
        self.debits_posted = 0
        self.credits_posted = 0
        self.debits_pending = 0
        self.credits_pending = 0


class Account:
    # owner, position and totals are object references so the hot path needs no lookups.
    __slots__ = ("id", "owner", "currency", "overdraft_limit", "timestamp",
                 "debits_posted", "credits_posted", "debits_pending", "credits_pending",
                 "transfers", "position", "totals")

    def __init__(self, aid: str, owner: Participant, currency: str, overdraft_limit: int | None,
                 timestamp: int, position: Position, totals: Totals) -> None:
        self.id = aid
        self.owner = owner
        self.currency = currency
        self.overdraft_limit = overdraft_limit  # None: unlimited
        self.timestamp = timestamp
        self.debits_posted = 0
        self.credits_posted = 0
        self.debits_pending = 0
        self.credits_pending = 0
        # every transfer touching the account, in timestamp order
        self.transfers: list[Transfer] = []
        self.position = position  # clearing position of (owner, currency)
        self.totals = totals

    def as_record(self) -> Result:
        balance = self.credits_posted - self.debits_posted
        return {"id": self.id, "participant": self.owner.id, "currency": self.currency,
                "overdraft_limit": self.overdraft_limit,
                "debits_posted": self.debits_posted, "credits_posted": self.credits_posted,
                "debits_pending": self.debits_pending,
                "credits_pending": self.credits_pending,
                "balance": balance, "available": balance - self.debits_pending,
                "timestamp": self.timestamp}


class Transfer:
    """A stored transfer; made by new_transfer. Accounts and the target pending transfer are
    stored as objects; the currency is the debit account's. Ten slots keep it small."""

    __slots__ = ("id", "debit", "credit", "amount", "reference", "timeout", "kind",
                 "target", "state", "timestamp")
    id: str
    debit: Account
    credit: Account
    amount: int
    reference: str | None
    timeout: int
    kind: str
    target: Transfer | None  # the pending transfer a post or void settles, else None
    state: str | None  # None once a linked chain rolled it back
    timestamp: int

    def deadline(self) -> int | None:
        """Expiry time of a pending transfer, None when it never expires."""
        return self.timestamp + self.timeout * 1_000_000_000 if self.timeout else None

    def as_record(self) -> Result:
        kind = self.kind
        target_id = self.target.id if self.target is not None else None
        return {"id": self.id, "debit_account": self.debit.id,
                "credit_account": self.credit.id, "amount": self.amount,
                "currency": self.debit.currency, "reference": self.reference,
                "pending": kind == PENDING_KIND, "timeout": self.timeout,
                "post_pending_id": target_id if kind == POST else None,
                "void_pending_id": target_id if kind == VOID else None,
                "state": self.state, "timestamp": self.timestamp}


# object.__new__ and the slots set in a Python function: building a transfer through the class
# and an __init__ costs one more call into the interpreter from C (about 3% of a plain transfer's
# ledger work in batches, by callgrind).
_allocate = object.__new__


def new_transfer(tid: str, debit: Account, credit: Account, amount: int,
                 reference: str | None, timeout: int, kind: str, target: Transfer | None,
                 state: str | None, timestamp: int) -> Transfer:
    """A Transfer with these fields. The arguments are positional: a keyword call costs more
    than the rest of building a transfer, and their types (checked by mypy) tell the accounts,
    strings and integers apart."""
    t: Transfer = _allocate(Transfer)
    t.id = tid
    t.debit = debit
    t.credit = credit
    t.amount = amount
    t.reference = reference
    t.timeout = timeout
    t.kind = kind
    t.target = target
    t.state = state
    t.timestamp = timestamp
    return t


def visible(caller: str, t: Transfer) -> bool:
    """Whether `caller` may see transfer `t`: the operator, or an owner of either account."""
    return caller == ADMIN or caller == t.debit.owner.id or caller == t.credit.owner.id
