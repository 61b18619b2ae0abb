"""The stream's message format, bytes in and bytes out (no NATS)."""
import pytest

from payswitch.switch.replication.wire import (FIRST_SEQ, FORMAT, LAST_SEQ, MalformedMessage,
                                     encoded_records, message_headers, parse_message,
                                     split_records)
from payswitch.switch.storage.records import encode_record
from payswitch.switch.storage.wal_format import WAL_VERSION, UnsupportedWalVersion


def records(count: int, size: int = 10) -> list[bytes]:
    return [encode_record(bytes([n % 256]) * size) for n in range(count)]


def test_a_group_is_cut_at_record_boundaries_within_the_limit():
    group = records(10)  # 18 bytes each
    messages = split_records(group, 41, max_bytes=40)
    assert [(m.first_seq, m.last_seq) for m in messages] == [(41, 42), (43, 44), (45, 46),
                                                            (47, 48), (49, 50)]
    assert b"".join(m.records for m in messages) == b"".join(group)
    assert all(len(m.records) <= 40 for m in messages)


def test_a_record_larger_than_a_message_is_refused():
    with pytest.raises(ValueError, match="WAL record 7 is 108 bytes"):
        split_records(records(1, 100), 7, max_bytes=50)


def test_a_message_parses_back_to_its_records():
    group = records(3)
    message = split_records(group, 5, max_bytes=1 << 20)[0]
    headers = message_headers(message, "node-a", term=3, expected_last_sequence=12)
    assert headers["Nats-Expected-Last-Sequence"] == "12"
    assert headers["Nats-Msg-Id"] == "node-a:3:5:7"
    parsed, payloads = parse_message(headers, message.records)
    assert (parsed.first_seq, parsed.last_seq) == (5, 7)
    assert payloads == [bytes([n]) * 10 for n in range(3)]
    assert encoded_records(message.records) == group


def test_a_fence_carries_no_records():
    parsed, payloads = parse_message({FIRST_SEQ: "9", LAST_SEQ: "8"}, b"")
    assert payloads == [] and parsed.last_seq == parsed.first_seq - 1


@pytest.mark.parametrize("headers, data, problem", [
    ({}, b"", "missing or bad"),
    ({FIRST_SEQ: "1", LAST_SEQ: "2"}, encode_record(b"x"), "1 intact"),
    ({FIRST_SEQ: "1", LAST_SEQ: "1"}, encode_record(b"x")[:-1], "damage"),
])
def test_damaged_or_mislabelled_messages_are_refused(headers, data, problem):
    with pytest.raises(MalformedMessage, match=problem):
        parse_message(headers, data)


def test_messages_carry_the_wal_format_and_a_newer_one_is_refused():
    message = split_records(records(2, 10), 5, 1000)[0]
    headers = message_headers(message, "node-a", 1, 0)
    assert headers[FORMAT] == str(WAL_VERSION)
    assert parse_message(headers, message.records)[0] == message
    with pytest.raises(UnsupportedWalVersion, match=f"records 5..6: WAL format version "
                                                    f"{WAL_VERSION + 1}; this switch reads"):
        parse_message({**headers, FORMAT: str(WAL_VERSION + 1)}, message.records)
