"""`wal verify` / `wal repair` logic on segment files written here (the end-to-end tests drive
the real CLI against a real switch's data directory)."""
import io

import msgpack

from payswitch.switch.storage.records import HEADER_BYTES, RecordScanner, encode_record
from payswitch.switch.storage.segments import segment_path, snapshot_path
from payswitch.switch.storage.snapshots import save_snapshot
from payswitch.switch.storage.verify import plan_repair, run_repair, run_verify, verify


def record(seq: int) -> bytes:
    return encode_record(msgpack.packb([seq, seq, "admin", "ping", {"n": seq}]))


def write_segment(data_dir, first_seq: int, seqs) -> bytes:
    (data_dir / "wal").mkdir(parents=True, exist_ok=True)
    data = b"".join(record(s) for s in seqs)
    segment_path(data_dir / "wal", first_seq).write_bytes(data)
    return data


def test_resynchronizing_counts_the_intact_records_after_damage():
    records = [record(n) for n in range(1, 8)]
    data = bytearray(b"".join(records))
    data[len(records[0]) + HEADER_BYTES + 1] ^= 0xFF  # second record's payload
    scanner = RecordScanner(bytes(data))
    assert len(list(scanner)) == 1
    count, first = scanner.intact_records_after_damage()
    assert (count, first) == (5, len(records[0]) + len(records[1]))
    assert scanner.intact_record_follows()


def test_clean_segments_and_a_torn_tail_verify_clean(tmp_path):
    write_segment(tmp_path, 1, range(1, 6))
    data = write_segment(tmp_path, 6, range(6, 9))
    segment_path(tmp_path / "wal", 6).write_bytes(data + record(9)[:7])
    report = verify(tmp_path)
    assert not report.damaged
    assert [(s.first_record_seq, s.last_record_seq) for s in report.segments] == [(1, 5), (6, 8)]
    assert report.segments[1].torn_tail and report.segments[1].damage_offset == len(data)
    out = io.StringIO()
    assert run_verify(tmp_path, out) == 0
    assert "torn tail at offset" in out.getvalue() and "result: clean" in out.getvalue()


def test_out_of_order_records_and_gaps_are_damage(tmp_path):
    write_segment(tmp_path, 1, [1, 2, 4, 5])
    report = verify(tmp_path)
    assert report.damaged
    segment = report.segments[0]
    assert segment.damage.startswith("record 4 where 3 was expected")
    assert segment.damage_offset == 2 * len(record(1)) and segment.records_after_damage == 2
    plan = plan_repair(tmp_path)
    assert plan.last_good_seq == 2 and plan.records_lost == 2 and plan.refusal is None


def test_damage_a_snapshot_covers_is_reported_but_not_repaired(tmp_path):
    data = bytearray(write_segment(tmp_path, 1, range(1, 5)))
    data[HEADER_BYTES + 2] ^= 0xFF
    segment_path(tmp_path / "wal", 1).write_bytes(bytes(data))
    write_segment(tmp_path, 5, range(5, 9))
    (tmp_path / "snapshots").mkdir()
    save_snapshot(tmp_path / "snapshots", 6, {"state": "irrelevant here"})
    report = verify(tmp_path)
    assert report.damaged and report.segments[0].covered_by == 6
    assert plan_repair(tmp_path) is None
    out = io.StringIO()
    assert run_repair(tmp_path, yes=True, out=out) == 0 and "nothing to repair" in out.getvalue()


def test_repair_without_yes_changes_nothing_and_with_yes_quarantines(tmp_path):
    data = bytearray(write_segment(tmp_path, 1, range(1, 6)))
    cut = 2 * len(record(1))
    data[cut + 5] ^= 0x01
    segment_path(tmp_path / "wal", 1).write_bytes(bytes(data))
    write_segment(tmp_path, 6, range(6, 8))
    (tmp_path / "snapshots").mkdir()
    save_snapshot(tmp_path / "snapshots", 4, {"state": "newer than the cut"})
    out = io.StringIO()
    assert run_repair(tmp_path, yes=False, stdin=io.StringIO("nope\n"), out=out) == 1
    assert segment_path(tmp_path / "wal", 1).read_bytes() == bytes(data)
    assert run_repair(tmp_path, yes=False, stdin=io.StringIO("yes\n"), out=out) == 0
    assert segment_path(tmp_path / "wal", 1).stat().st_size == cut
    assert not segment_path(tmp_path / "wal", 6).exists()
    assert not snapshot_path(tmp_path / "snapshots", 4).exists()
    (quarantine,) = (tmp_path / "wal" / "quarantine").iterdir()
    names = sorted(p.name for p in quarantine.iterdir())
    assert names == sorted(["REPAIR.txt", segment_path(tmp_path, 6).name,
                            snapshot_path(tmp_path, 4).name,
                            f"{segment_path(tmp_path, 1).name}.from-offset-{cut}"])
    assert not verify(tmp_path).damaged
