"""Status and error codes (equal to the wire codes of docs/protocol.md) and LedgerError."""

# The wire codes (docs/protocol.md) are the ledger's item statuses and request errors.
from protocol.codes import (  # noqa: F401
    ACCOUNT_EXISTS, ACCOUNT_NOT_FOUND, BAD_REQUEST, CREATED, CURRENCY_MISMATCH,
    EXCEEDS_PENDING_AMOUNT, EXISTS, EXISTS_WITH_DIFFERENT_FIELDS, FORBIDDEN, INSUFFICIENT_FUNDS,
    INVALID_AMOUNT, LINKED_EVENT_CHAIN_OPEN, LINKED_EVENT_FAILED, NET_DEBIT_CAP_EXCEEDED,
    PARTICIPANT_EXISTS, PARTICIPANT_NOT_FOUND, PARTICIPANT_SUSPENDED, PENDING_ALREADY_POSTED,
    PENDING_ALREADY_VOIDED, PENDING_EXPIRED, PENDING_NOT_FOUND, SAME_ACCOUNT, UNKNOWN_OP,
    WINDOW_NOT_FOUND,
)

ADMIN = "admin"


def admin_only(op: str, caller) -> str:
    """The `forbidden` message of an operator's op asked for by a participant."""
    return f"{op} is for the operator (admin) only, not {caller}"


class LedgerError(Exception):
    """A request-level failure carrying its wire code.

    `changed` is True when due pending transfers expired before the failure: the
    request then changed state and belongs in the write-ahead log all the same.
    """

    def __init__(self, code, message=None, changed=False):
        super().__init__(code, message or code.replace("_", " "))
        self.code = code
        self.message = message or code.replace("_", " ")
        self.changed = changed
