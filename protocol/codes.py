"""Every error code and item status of the wire contract, as constants.

Envelope codes answer a whole request; item codes appear as an item's
`status` (or as the error of a single-item request such as `transfer`).
"""

# Envelope
BAD_FRAME = "bad_frame"
FRAME_TOO_LARGE = "frame_too_large"
BAD_REQUEST = "bad_request"
UNKNOWN_OP = "unknown_op"
UNAUTHENTICATED = "unauthenticated"
OVERLOADED = "overloaded"
SHUTTING_DOWN = "shutting_down"
INTERNAL = "internal"
# Replication (docs/replication.md): this node is not the primary (the error object also carries
# `primary`, the primary's advertised "host:port" or null while unknown); the replicated log
# cannot be reached, so nothing new is acknowledged. Both: resend with the same ids, safely.
NOT_PRIMARY = "not_primary"
UNAVAILABLE = "unavailable"

# Item statuses that mean success
CREATED = "created"
EXISTS = "exists"

# Items and results
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
BATCH_NOT_FOUND = "batch_not_found"
WINDOW_NOT_FOUND = "window_not_found"

ENVELOPE = frozenset({
    BAD_FRAME, FRAME_TOO_LARGE, BAD_REQUEST, UNKNOWN_OP, UNAUTHENTICATED,
    OVERLOADED, SHUTTING_DOWN, INTERNAL, NOT_PRIMARY, UNAVAILABLE,
})
SUCCESS = frozenset({CREATED, EXISTS})
ITEM = frozenset({
    FORBIDDEN, EXISTS_WITH_DIFFERENT_FIELDS, PARTICIPANT_NOT_FOUND,
    PARTICIPANT_EXISTS, PARTICIPANT_SUSPENDED, ACCOUNT_NOT_FOUND, ACCOUNT_EXISTS,
    CURRENCY_MISMATCH, SAME_ACCOUNT, INVALID_AMOUNT, INSUFFICIENT_FUNDS,
    NET_DEBIT_CAP_EXCEEDED, PENDING_NOT_FOUND, PENDING_ALREADY_POSTED,
    PENDING_ALREADY_VOIDED, PENDING_EXPIRED, EXCEEDS_PENDING_AMOUNT,
    LINKED_EVENT_FAILED, LINKED_EVENT_CHAIN_OPEN, BATCH_NOT_FOUND,
    WINDOW_NOT_FOUND,
})
ALL = ENVELOPE | SUCCESS | ITEM
