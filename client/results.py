"""Typed, immutable views of reply results.

Field names mirror the wire. Parsing ignores fields it does not know and fills missing ones with
None, because docs/protocol.md allows the server to add optional fields.
"""

from dataclasses import dataclass, fields
from functools import cache
from typing import Any, Self

from payswitch.protocol import codes

OK_STATUSES = codes.SUCCESS


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))  # fields() is slow enough to show per reply


class _Wire:
    __slots__ = ()

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> Self:
        return cls(*map(obj.get, _field_names(cls)))  # type: ignore[arg-type]  # a class is hashable


@dataclass(frozen=True, slots=True)
class ItemResult(_Wire):
    """Outcome of one item of a batch create (`created`, `exists` or an error code)."""

    status: str
    message: str | None = None  # why it failed: the field, the value and the rule

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


@dataclass(frozen=True, slots=True)
class TransferResult(_Wire):
    status: str
    timestamp: int | None
    message: str | None = None  # why it failed: the field, the value and the rule

    @property
    def ok(self) -> bool:
        # `exists` is a replay of an identical transfer: the money moved exactly once.
        return self.status in OK_STATUSES


@dataclass(frozen=True, slots=True)
class ParticipantResult(_Wire):
    status: str
    token: str | None  # returned once, on creation
    message: str | None = None  # why it failed: the field, the value and the rule

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


@dataclass(frozen=True, slots=True)
class Account(_Wire):
    id: str
    participant: str
    currency: str
    overdraft_limit: int | None  # None: unlimited
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    balance: int
    available: int


@dataclass(frozen=True, slots=True)
class Transfer(_Wire):
    id: str
    debit_account: str
    credit_account: str
    amount: int
    currency: str
    reference: str | None
    pending: bool
    timeout: int  # whole seconds, as on the wire
    post_pending_id: str | None
    void_pending_id: str | None
    state: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class TransferPage:
    transfers: tuple[Transfer, ...]
    next: int | None  # the `after` cursor for the next page; None when nothing follows
    next_cursor: str | None = None  # the same as a decimal string (for clients without int64)

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> Self:
        return cls(tuple(map(Transfer.from_wire, obj["transfers"])), obj.get("next"),
                   obj.get("next_cursor"))


@dataclass(frozen=True, slots=True)
class Position(_Wire):
    participant: str
    currency: str
    debits: int
    credits: int
    net: int  # credits - debits: positive means the participant receives


@dataclass(frozen=True, slots=True)
class Instruction(_Wire):
    participant: str
    currency: str
    pay: int | None
    receive: int | None


@dataclass(frozen=True, slots=True)
class Window:
    """A settlement window; `list_windows` fills only the first four fields."""

    window_id: int
    state: str
    opened_at: int
    closed_at: int | None
    transfers: int | None = None
    positions: tuple[Position, ...] = ()
    instructions: tuple[Instruction, ...] = ()
    # ids of the settlement postings made by `close_window(hub_accounts=...)`, in the order of
    # the instructions; None when the window was closed without postings (or is open)
    settlement_transfers: tuple[str, ...] | None = None

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> Self:
        settlement = obj.get("settlement_transfers")
        return cls(
            window_id=obj["window_id"],
            state=obj["state"],
            opened_at=obj.get("opened_at"),
            closed_at=obj.get("closed_at"),
            transfers=obj.get("transfers"),
            positions=tuple(map(Position.from_wire, obj.get("positions") or ())),
            instructions=tuple(map(Instruction.from_wire, obj.get("instructions") or ())),
            settlement_transfers=None if settlement is None else tuple(settlement),
        )


@dataclass(frozen=True, slots=True)
class MatrixRow(_Wire):
    """Gross interbank money `payer` paid `payee` in one currency within a window."""

    payer: str
    payee: str
    currency: str
    amount: int


@dataclass(frozen=True, slots=True)
class WindowMatrix:
    """A window's bilateral matrix (who owes whom before netting), rows sorted."""

    window_id: int
    state: str
    rows: tuple[MatrixRow, ...] = ()

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> Self:
        return cls(obj["window_id"], obj.get("state"),
                   tuple(map(MatrixRow.from_wire, obj.get("rows") or ())))


@dataclass(frozen=True, slots=True)
class BatchPart(_Wire):
    batch_id: str
    seq: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: str
    state: str  # received, processing, completed or rejected
    total: int | None = None
    created: int | None = None  # counts `exists` items too
    failed: int | None = None
    control_count: int | None = None
    control_sum: int | None = None

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> Self:
        control = obj.get("control") or {}
        return cls(
            batch_id=obj["batch_id"],
            state=obj["state"],
            total=obj.get("total"),
            created=obj.get("created"),
            failed=obj.get("failed"),
            control_count=control.get("count"),
            control_sum=control.get("sum"),
        )


@dataclass(frozen=True, slots=True)
class BatchItemResult(_Wire):
    index: int
    id: str
    status: str

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


@dataclass(frozen=True, slots=True)
class BatchResultsPage:
    results: tuple[BatchItemResult, ...]
    next: int | None

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> Self:
        return cls(tuple(map(BatchItemResult.from_wire, obj["results"])), obj.get("next"))
