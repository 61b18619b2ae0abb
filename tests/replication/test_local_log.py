"""Cutting a node's own log back to what the stream is known to hold (real files)."""
from payswitch.switch.replication.local_log import discard_after, last_local_seq
from payswitch.switch.storage.records import RecordScanner, encode_record
from payswitch.switch.storage.segments import segment_path


def write_segment(wal_dir, first_seq: int, count: int) -> None:
    records = b"".join(encode_record(f"record {first_seq + n}".encode()) for n in range(count))
    segment_path(wal_dir, first_seq).write_bytes(records)


def records_in(wal_dir, first_seq: int) -> list[bytes]:
    return [bytes(p) for _, p in RecordScanner(segment_path(wal_dir, first_seq).read_bytes())]


def test_the_tail_after_the_kept_record_is_cut_off_within_and_across_segments(tmp_path):
    wal, snapshots = tmp_path / "wal", tmp_path / "snapshots"
    wal.mkdir(), snapshots.mkdir()
    write_segment(wal, 1, 5)
    write_segment(wal, 6, 5)
    write_segment(wal, 11, 3)
    assert last_local_seq(wal, snapshots) == 13
    assert discard_after(wal, 7) == 6  # 8, 9, 10 and 11, 12, 13
    assert not segment_path(wal, 11).exists()
    assert records_in(wal, 6) == [b"record 6", b"record 7"]
    assert records_in(wal, 1) == [f"record {n}".encode() for n in range(1, 6)]
    assert last_local_seq(wal, snapshots) == 7


def test_nothing_to_cut_changes_nothing(tmp_path):
    wal, snapshots = tmp_path / "wal", tmp_path / "snapshots"
    wal.mkdir(), snapshots.mkdir()
    write_segment(wal, 1, 4)
    before = segment_path(wal, 1).read_bytes()
    assert discard_after(wal, 4) == 0
    assert segment_path(wal, 1).read_bytes() == before
