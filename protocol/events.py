"""The committed-event stream's names (docs/events.md): the switch publishes these, the operator
CLI and downstream consumers read them. Here, in `protocol`, so that a reader needs no server.

Each event is one JetStream message on `<prefix>.<type>` (for example
`payswitch.events.transfer.created`), its body one JSON object: the envelope keys below, then
the type's own fields.
"""

VERSION = 1
DEFAULT_STREAM = "PAYSWITCH_EVENTS"
DEFAULT_SUBJECT_PREFIX = "payswitch.events"
NATS_ENV = "PAYSWITCH_NATS"  # the operator CLI's default --nats

TRANSFER_CREATED = "transfer.created"  # one-phase, pending and settlement postings
PENDING_POSTED = "pending.posted"
PENDING_VOIDED = "pending.voided"
PENDING_EXPIRED = "pending.expired"
ACCOUNT_CREATED = "account.created"
PARTICIPANT_CREATED = "participant.created"
WINDOW_CLOSED = "window.closed"
BATCH_FINISHED = "batch.finished"
TYPES = (TRANSFER_CREATED, PENDING_POSTED, PENDING_VOIDED, PENDING_EXPIRED, ACCOUNT_CREATED,
         PARTICIPANT_CREATED, WINDOW_CLOSED, BATCH_FINISHED)

# v: schema version; seq: 1, 2, 3, ... over the whole history, the stream's own sequence;
# committed_at: the WAL record's time (ns since the epoch); wal_seq: that record;
# wal_index: the event's place among the record's events, from 0.
ENVELOPE = ("v", "seq", "type", "committed_at", "wal_seq", "wal_index")


def subject(prefix: str, event_type: str) -> str:
    return f"{prefix}.{event_type}"


def stream_subjects(prefix: str) -> str:
    """The one subject filter of the events stream: every type under the prefix."""
    return f"{prefix}.>"
