"""Status and error codes (equal to the wire codes of PROTOCOL.md) and LedgerError."""

ADMIN = "admin"

CREATED = "created"
EXISTS = "exists"

BAD_REQUEST = "bad_request"
UNKNOWN_OP = "unknown_op"
FORBIDDEN = "forbidden"
EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
PARTICIPANT_NOT_FOUND = "participant_not_found"
PARTICIPANT_EXISTS = "participant_exists"
PARTICIPANT_SUSPENDED = "participant_suspended"
ACCOUNT_NOT_FOUND = "account_not_found"
ACCOUNT_EXISTS = "account_exists"
CURRENCY_MISMATCH = "currency_mismatch"
SAME_ACCOUNT = "same_account"
INVALID_AMOUNT = "invalid_amount"
INSUFFICIENT_FUNDS = "insufficient_funds"
NET_DEBIT_CAP_EXCEEDED = "net_debit_cap_exceeded"
PENDING_NOT_FOUND = "pending_not_found"
PENDING_ALREADY_POSTED = "pending_already_posted"
PENDING_ALREADY_VOIDED = "pending_already_voided"
PENDING_EXPIRED = "pending_expired"
EXCEEDS_PENDING_AMOUNT = "exceeds_pending_amount"
LINKED_EVENT_FAILED = "linked_event_failed"
LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
WINDOW_NOT_FOUND = "window_not_found"


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
