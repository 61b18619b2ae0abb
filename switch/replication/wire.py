"""How WAL records travel in the replicated stream: sans-IO, bytes in and bytes out.

A stream message carries consecutive WAL records exactly as they are on disk (length, CRC,
payload), so a standby writes the same bytes to its own log and checks them with the same
scanner. Its headers name the first and last record and the records' format version (on disk
the segment header carries it, switch/storage/wal_format.py: a record alone carries none); a
message with no records (last = first - 1) is a new primary's fence: it moves the stream's last
sequence past anything a deposed primary could still try to append.
"""
from typing import NamedTuple

from payswitch.switch.storage.records import HEADER, HEADER_BYTES, RecordScanner
from payswitch.switch.storage.wal_format import WAL_VERSION, check_readable

FIRST_SEQ = "Payswitch-First-Seq"
LAST_SEQ = "Payswitch-Last-Seq"
NODE = "Payswitch-Node"
FORMAT = "Payswitch-Wal-Version"  # absent: version 1, from a build before versioning
EXPECTED_LAST_SEQUENCE = "Nats-Expected-Last-Sequence"  # JetStream's optimistic concurrency
MESSAGE_ID = "Nats-Msg-Id"  # JetStream's de-duplication, for a resend of the same message
# Bytes of headers and subject a message needs besides its records, kept free below max_payload.
HEADROOM_BYTES = 1024


class MalformedMessage(Exception):
    """A stream message that is not a run of intact records matching its headers."""


class LogMessage(NamedTuple):
    first_seq: int
    last_seq: int
    records: bytes  # encoded WAL records first_seq..last_seq, back to back


def split_records(records: list[bytes], first_seq: int, max_bytes: int) -> list[LogMessage]:
    """Consecutive encoded records cut at record boundaries into messages of at most
    `max_bytes` each (a single record larger than that is refused: it could never be sent)."""
    messages, start, size = [], 0, 0
    for index, record in enumerate(records):
        if len(record) > max_bytes:
            raise ValueError(f"WAL record {first_seq + index} is {len(record)} bytes; the "
                             f"stream takes messages of at most {max_bytes}")
        if size + len(record) > max_bytes:
            messages.append(LogMessage(first_seq + start, first_seq + index - 1,
                                       b"".join(records[start:index])))
            start, size = index, 0
        size += len(record)
    if start < len(records):
        messages.append(LogMessage(first_seq + start, first_seq + len(records) - 1,
                                   b"".join(records[start:])))
    return messages


def message_headers(message: LogMessage, node_id: str, term: int,
                    expected_last_sequence: int) -> dict:
    """`term` (the stream sequence of this primary's fence) makes the message id unique to one
    promotion: a resend within it is de-duplicated, while the same record numbers written again
    after a step-down (different records) are not mistaken for a duplicate."""
    return {FIRST_SEQ: str(message.first_seq), LAST_SEQ: str(message.last_seq), NODE: node_id,
            FORMAT: str(WAL_VERSION),
            EXPECTED_LAST_SEQUENCE: str(expected_last_sequence),
            MESSAGE_ID: f"{node_id}:{term}:{message.first_seq}:{message.last_seq}"}


def parse_message(headers: dict | None, data: bytes) -> tuple[LogMessage, list]:
    """The message and its records' payloads; raises MalformedMessage, or
    UnsupportedWalVersion for records in a format this build does not read."""
    try:
        first_seq, last_seq = int(headers[FIRST_SEQ]), int(headers[LAST_SEQ])
        version = int(headers.get(FORMAT, 1))
    except (TypeError, KeyError, ValueError, AttributeError):
        raise MalformedMessage(f"missing or bad {FIRST_SEQ}/{LAST_SEQ}/{FORMAT} headers: "
                               f"{headers!r}") from None
    check_readable(version, f"stream message of records {first_seq}..{last_seq}")
    scanner = RecordScanner(data)
    payloads = [payload for _, payload in scanner]
    if scanner.damage is not None or len(payloads) != last_seq - first_seq + 1:
        raise MalformedMessage(f"records {first_seq}..{last_seq}: {len(payloads)} intact, "
                               f"damage: {scanner.damage}")
    return LogMessage(first_seq, last_seq, data), payloads


def encoded_records(data: bytes) -> list[bytes]:
    """The encoded records (header included) of a message's bytes, for the local log."""
    records, offset = [], 0
    while offset < len(data):
        length = HEADER.unpack_from(data, offset)[0]
        records.append(data[offset:offset + HEADER_BYTES + length])
        offset += HEADER_BYTES + length
    return records
