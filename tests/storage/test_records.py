"""WAL record framing on real bytes: intact prefixes, torn tails, damage before the tail."""
from hypothesis import given, strategies as st

from payswitch.switch.storage.records import HEADER_BYTES, RecordScanner, encode_record

payload_lists = st.lists(st.binary(min_size=0, max_size=64), min_size=1, max_size=8)


def scan(data: bytes):
    scanner = RecordScanner(data)
    return [bytes(payload) for _, payload in scanner], scanner


@given(payload_lists)
def test_intact_log_scans_to_its_payloads(payloads):
    found, scanner = scan(b"".join(encode_record(p) for p in payloads))
    assert found == payloads
    assert scanner.damage is None


@given(payload_lists, st.data())
def test_any_cut_yields_a_prefix_and_is_a_torn_tail(payloads, data):
    log = b"".join(encode_record(p) for p in payloads)
    cut = data.draw(st.integers(0, len(log)))
    found, scanner = scan(log[:cut])
    assert found == payloads[:len(found)]
    assert scanner.good_end <= cut
    if scanner.damage is not None:
        assert not scanner.intact_record_follows()


def test_every_cut_of_the_last_records_recovers_the_longest_complete_prefix():
    payloads = [bytes([n]) * n for n in range(1, 6)]
    records = [encode_record(p) for p in payloads]
    log = b"".join(records)
    boundaries = [sum(map(len, records[:k])) for k in range(len(records) + 1)]
    for cut in range(len(log) + 1):
        found, scanner = scan(log[:cut])
        complete = max(k for k, end in enumerate(boundaries) if end <= cut)
        assert found == payloads[:complete]
        assert scanner.good_end == boundaries[complete]


def test_flipped_byte_in_the_middle_is_damage_with_intact_records_after_it():
    records = [encode_record(b"payment-%d" % n) for n in range(5)]
    log = bytearray(b"".join(records))
    middle = len(records[0]) + HEADER_BYTES + 2  # inside the second record's payload
    log[middle] ^= 0xFF
    found, scanner = scan(bytes(log))
    assert found == [b"payment-0"]
    assert scanner.damage == "checksum mismatch"
    assert scanner.good_end == len(records[0])
    assert scanner.intact_record_follows()


def test_damaged_length_is_caught_by_the_checksum():
    records = [encode_record(b"x" * 10) for _ in range(3)]
    log = bytearray(b"".join(records))
    log[len(records[0]) + 3] = 5  # second record claims 5 bytes instead of 10
    found, scanner = scan(bytes(log))
    assert len(found) == 1 and scanner.damage is not None
    assert scanner.intact_record_follows()
