"""Status and error codes (equal to the wire codes of docs/protocol.md), LedgerError, and
Executed: what one request did."""

from typing import Any, NamedTuple

# The wire codes (docs/protocol.md) are the ledger's item statuses and request errors.
from payswitch.protocol.codes import (
    ACCOUNT_EXISTS, ACCOUNT_NOT_FOUND, BAD_REQUEST, CREATED, CURRENCY_MISMATCH,
    EXCEEDS_PENDING_AMOUNT, EXISTS, EXISTS_WITH_DIFFERENT_FIELDS, FORBIDDEN, INSUFFICIENT_FUNDS,
    INVALID_AMOUNT, LINKED_EVENT_CHAIN_OPEN, LINKED_EVENT_FAILED, NET_DEBIT_CAP_EXCEEDED,
    PARTICIPANT_EXISTS, PARTICIPANT_NOT_FOUND, PARTICIPANT_SUSPENDED, PENDING_ALREADY_POSTED,
    PENDING_ALREADY_VOIDED, PENDING_EXPIRED, PENDING_NOT_FOUND, SAME_ACCOUNT, UNKNOWN_OP,
    WINDOW_NOT_FOUND,
)
from payswitch.protocol.ops import ADMIN  # the operator; the ledger names it among its codes

__all__ = [
    "ACCOUNT_EXISTS", "ACCOUNT_NOT_FOUND", "ADMIN", "BAD_REQUEST", "CREATED", "CURRENCY_MISMATCH",
    "EXCEEDS_PENDING_AMOUNT", "EXISTS", "EXISTS_WITH_DIFFERENT_FIELDS", "FORBIDDEN",
    "INSUFFICIENT_FUNDS", "INVALID_AMOUNT", "LINKED_EVENT_CHAIN_OPEN", "LINKED_EVENT_FAILED",
    "NET_DEBIT_CAP_EXCEEDED", "PARTICIPANT_EXISTS", "PARTICIPANT_NOT_FOUND",
    "PARTICIPANT_SUSPENDED", "PENDING_ALREADY_POSTED", "PENDING_ALREADY_VOIDED", "PENDING_EXPIRED",
    "PENDING_NOT_FOUND", "SAME_ACCOUNT", "UNKNOWN_OP", "WINDOW_NOT_FOUND",
    "Executed", "LedgerError", "admin_only",
]


def admin_only(op: str, caller: str) -> str:
    """The `forbidden` message of an operator's op asked for by a participant."""
    return f"{op} is for the operator (admin) only, not {caller}"


class LedgerError(Exception):
    """A request-level failure carrying its wire code. An op raises it before it changes
    anything; Ledger.execute returns it in Executed.error."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(code, message or code.replace("_", " "))
        self.code = code
        self.message = message or code.replace("_", " ")


class Executed(NamedTuple):
    """What executing one request did.

    `changed` says whether the state changed, and so whether the request belongs in the
    write-ahead log; it can be True for a failed request too, when pending transfers that were
    due expired before the op failed (a mutating request first expires what is due at its
    time, on replay as at the first run).
    """
    result: Any  # the reply's result; None when the request failed
    changed: bool
    error: LedgerError | None  # why it failed; None when it succeeded
