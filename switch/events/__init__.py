"""The committed-event stream (change data capture) of the ledger: docs/events.md.

derive.py (a WAL record's events, pure), backlog.py (numbering and the queue, pure), stream.py
(`service.events`, the switch's one object), jetstream.py (NATS, imported only with --events).
"""


class EventsSetupError(Exception):
    """The event stream cannot start; the message is the one line the operator sees."""
