"""The WAL written over zeros written ahead of its records: real files, real fsyncs. The zeros
after the last record are the log's unused end (no damage, cut off at start, the writer goes on
where the records end); anything else after the records is judged as before."""
import asyncio
import errno
import io
import os

import pytest
from structlog.testing import capture_logs

from support.filesystem import resize_tmpfs, small_tmpfs
from payswitch.switch.storage.records import RecordScanner, encode_record
from payswitch.switch.storage.recovery import RecoveryError, recover, recover_up_to
from payswitch.switch.storage.segments import list_segments
from payswitch.switch.storage.verify import run_verify, verify
from payswitch.switch.storage.wal_format import SEGMENT_HEADER
from payswitch.switch.storage.wal_writer import WalWriter

ZERO_AHEAD = 64 << 10
ONE_SEGMENT = 64 << 20


def args(n: int, token_bytes: int = 64) -> dict:
    """A record that changes the state when replayed: a participant of its own."""
    return {"participants": [{"id": f"p-{n}", "name": "P", "token_hash": "x" * token_bytes}]}


def open_writer(wal_dir, next_seq: int, zero_ahead: int = ZERO_AHEAD,
                segment_bytes: int = ONE_SEGMENT) -> tuple[WalWriter, list[OSError]]:
    failures: list[OSError] = []
    writer = WalWriter(wal_dir, next_seq, segment_bytes, True, lambda seq: None,
                       failures.append, zero_ahead_bytes=zero_ahead)
    return writer, failures


def write_log(wal_dir, first: int, count: int, crash: bool = True, **options) -> WalWriter:
    """Appends records first..first+count-1, a few per fsync, and closes the writer; with
    `crash`, the segments are left as a crash right after the last fsync leaves them (a clean
    close cuts the zeros off)."""
    async def run() -> WalWriter:
        writer, failures = open_writer(wal_dir, first, **options)
        try:
            for n in range(first, first + count):
                writer.append(n, "admin", "create_participants", args(n))
                if n % 3 == 0:
                    await writer.drain()
            await writer.drain()
            crash_image = {path: path.read_bytes() for _, path in list_segments(wal_dir)}
        finally:
            writer.close()
        if crash:
            for path, data in crash_image.items():
                path.write_bytes(data)
        assert not failures
        assert writer.durable_seq == first + count - 1
        return writer
    return asyncio.run(run())


def records_end(segment) -> int:
    scanner = RecordScanner(segment.read_bytes())
    for _ in scanner:
        pass
    return scanner.good_end


def participants(wal_dir, snapshot_dir) -> list[str]:
    ledger = recover(wal_dir, snapshot_dir).state.ledger
    return sorted(ledger.participants, key=lambda participant: int(participant[2:]))


@pytest.fixture
def dirs(tmp_path):
    wal_dir, snapshot_dir = tmp_path / "data" / "wal", tmp_path / "data" / "snapshots"
    wal_dir.mkdir(parents=True)
    snapshot_dir.mkdir()
    return wal_dir, snapshot_dir


def test_a_log_ending_in_zeros_recovers_every_record_quietly_and_goes_on(dirs):
    wal_dir, snapshot_dir = dirs
    write_log(wal_dir, 1, 20)
    [(_, segment)] = list_segments(wal_dir)
    end = records_end(segment)
    data = segment.read_bytes()
    zeros = len(data) - end
    assert 0 < zeros <= ZERO_AHEAD and data[end:] == bytes(zeros)
    out = io.StringIO()
    assert run_verify(wal_dir.parent, out) == 0
    assert f"then {zeros} bytes of zeros" in out.getvalue()
    assert "result: clean" in out.getvalue()

    read_only = recover(wal_dir, snapshot_dir, read_only=True)  # as a snapshot builder reads
    assert (read_only.next_seq, read_only.truncated_bytes) == (21, 0)
    assert recover_up_to(wal_dir, snapshot_dir, 20).ledger.participants.keys() == \
        read_only.state.ledger.participants.keys()
    assert segment.stat().st_size == len(data)  # read only: left as it is
    with capture_logs() as logged:
        recovered = recover(wal_dir, snapshot_dir)
    assert (recovered.next_seq, recovered.records_replayed, recovered.truncated_bytes) == \
        (21, 20, 0)
    assert not [e for e in logged if e["log_level"] == "warning"], logged
    assert segment.stat().st_size == end  # the zeros are cut off: the writer goes on there

    write_log(wal_dir, 21, 10)
    assert participants(wal_dir, snapshot_dir) == [f"p-{n}" for n in range(1, 31)]
    assert not verify(wal_dir.parent).damaged


def test_a_clean_close_cuts_the_zeros_off(dirs):
    wal_dir, snapshot_dir = dirs
    write_log(wal_dir, 1, 20, crash=False)
    [(_, segment)] = list_segments(wal_dir)
    assert segment.stat().st_size == records_end(segment)
    assert recover(wal_dir, snapshot_dir).next_seq == 21


def test_a_record_torn_before_the_zeros_is_cut_off_as_a_torn_tail(dirs):
    wal_dir, snapshot_dir = dirs
    write_log(wal_dir, 1, 5)
    [(_, segment)] = list_segments(wal_dir)
    end = records_end(segment)
    torn = encode_record(b"a record the crash cut short")[:-9]
    with open(segment, "r+b") as file:  # written over the zeros, its end never made it
        file.seek(end)
        file.write(torn)
    size = segment.stat().st_size
    report = verify(wal_dir.parent).segments[0]
    assert report.torn_tail and report.damage_offset == end and not report.zero_tail
    with capture_logs() as logged:
        recovered = recover(wal_dir, snapshot_dir)
    assert [e["event"] for e in logged if e["log_level"] == "warning"] == \
        ["wal_torn_tail_truncated"]
    assert (recovered.next_seq, recovered.truncated_bytes) == (6, size - end)
    assert segment.stat().st_size == end


@pytest.mark.parametrize("intact_record_after", [False, True], ids=["garbage", "record"])
def test_bytes_after_the_zeros_are_judged_as_before(dirs, intact_record_after):
    """Zeros, then something else: damage, not the log's end. A torn tail when no intact record
    follows (cut off); refusal to start when one does."""
    wal_dir, snapshot_dir = dirs
    write_log(wal_dir, 1, 5)
    [(_, segment)] = list_segments(wal_dir)
    end = records_end(segment)
    later = encode_record(b"an intact record") if intact_record_after else b"\xff\x01garbage"
    with open(segment, "r+b") as file:
        file.seek(end + 4096)
        file.write(later)
    report = verify(wal_dir.parent)
    assert report.segments[0].damage_offset == end and not report.segments[0].zero_tail
    assert report.damaged == intact_record_after
    if intact_record_after:
        with pytest.raises(RecoveryError, match="WAL damaged before its tail"):
            recover(wal_dir, snapshot_dir)
    else:
        with capture_logs() as logged:
            assert recover(wal_dir, snapshot_dir).next_seq == 6
        assert "wal_torn_tail_truncated" in [e["event"] for e in logged]
        assert segment.stat().st_size == end


def test_rotation_leaves_no_zeros_before_the_last_segment_and_reads_them_if_it_did(dirs):
    wal_dir, snapshot_dir = dirs
    write_log(wal_dir, 1, 40, segment_bytes=2000)
    segments = [path for _, path in list_segments(wal_dir)]
    assert len(segments) > 2
    for path in segments[:-1]:  # cut back to their records before the next segment began
        assert path.stat().st_size == records_end(path)
    assert segments[-1].stat().st_size > records_end(segments[-1])

    # A crash before the cut was durable: zeros after the records of an earlier segment
    with open(segments[0], "ab") as file:
        file.write(bytes(ZERO_AHEAD))
    report = verify(wal_dir.parent)
    assert not report.damaged and report.segments[0].zero_tail == ZERO_AHEAD
    assert participants(wal_dir, snapshot_dir) == [f"p-{n}" for n in range(1, 41)]
    assert all(path.stat().st_size == records_end(path) for path in segments)
    write_log(wal_dir, 41, 5, segment_bytes=2000)
    assert participants(wal_dir, snapshot_dir) == [f"p-{n}" for n in range(1, 46)]


def test_zeros_from_the_start_of_an_earlier_segment_are_a_gap_not_an_end(dirs):
    """Zeros read as a segment's end only because the records' sequence numbers show any gap:
    an earlier segment zeroed from its first record on loses records, and that refuses."""
    wal_dir, snapshot_dir = dirs
    write_log(wal_dir, 1, 40, segment_bytes=2000)
    first = list_segments(wal_dir)[0][1]
    size = first.stat().st_size
    with open(first, "r+b") as file:
        file.seek(SEGMENT_HEADER.size)
        file.write(bytes(size - SEGMENT_HEADER.size))
    assert verify(wal_dir.parent).damaged
    with pytest.raises(RecoveryError, match="out of order"):
        recover(wal_dir, snapshot_dir)


def test_log_bytes_count_records_not_zeros(tmp_path):
    zeroed, appended = tmp_path / "zeroed", tmp_path / "appended"
    for wal_dir in (zeroed, appended):
        (wal_dir / "wal").mkdir(parents=True)
        (wal_dir / "snapshots").mkdir()
    with_zeros = write_log(zeroed / "wal", 1, 30, segment_bytes=3000)
    without = write_log(appended / "wal", 1, 30, zero_ahead=0, segment_bytes=3000)
    records = sum(len(encode_record(p)) for _, p in
                  (item for _, path in list_segments(zeroed / "wal")
                   for item in RecordScanner(path.read_bytes())))
    assert with_zeros.appended_bytes == with_zeros.durable_bytes == records
    assert (without.appended_bytes, without.durable_bytes) == (records, records)
    headers = SEGMENT_HEADER.size * len(list_segments(zeroed / "wal"))
    # written since start: the records and the headers of the segments begun (not the first)
    assert with_zeros.bytes_since_start == without.bytes_since_start == \
        records + headers - SEGMENT_HEADER.size
    replayed = [recover(d / "wal", d / "snapshots", read_only=True).log_bytes_read
                for d in (zeroed, appended)]
    assert replayed == [records + headers] * 2


def test_no_zeros_without_fsyncs(dirs):
    wal_dir, _ = dirs

    async def run():
        writer = WalWriter(wal_dir, 1, ONE_SEGMENT, False, lambda seq: None, lambda e: None,
                           zero_ahead_bytes=ZERO_AHEAD)
        writer.append(1, "admin", "create_participants", args(1))
        await writer.drain()
        writer.close()
    asyncio.run(run())
    [(_, segment)] = list_segments(wal_dir)
    assert segment.stat().st_size == records_end(segment)


def test_a_disk_too_full_for_the_zeros_keeps_every_durable_record(tmp_path):
    """The zeros do not fit: records go into what was zeroed, then on as appends until the disk
    refuses one; nothing durable is lost, and once space returns the log is cut back to its
    durable end and goes on."""
    with small_tmpfs(tmp_path / "disk", 128 << 10) as disk:
        wal_dir, snapshot_dir = disk / "wal", disk / "snapshots"
        wal_dir.mkdir()
        snapshot_dir.mkdir()

        async def run() -> int:
            writer, failures = open_writer(wal_dir, 1, zero_ahead=1 << 20)
            try:
                writer.append(1, "admin", "create_participants", args(1, token_bytes=1000))
                await writer.drain()
                assert writer.durable_seq == 1 and not failures  # its zeros did not fit
                assert os.statvfs(disk).f_bavail == 0
                n = 1
                while not failures:
                    n += 1
                    writer.append(n, "admin", "create_participants", args(n, token_bytes=1000))
                    await writer.drain()
                assert [failure.errno for failure in failures] == [errno.ENOSPC]
                assert writer.can_resume() and writer.durable_seq == n - 1 > 10
                resize_tmpfs(disk, 16 << 20)
                writer.resume()
                for m in range(n, n + 5):
                    writer.append(m, "admin", "create_participants", args(m, token_bytes=1000))
                    await writer.drain()
                assert len(failures) == 1 and writer.durable_seq == n + 4
                return n + 4
            finally:
                writer.close()

        last = asyncio.run(run())
        assert not verify(disk).damaged
        assert participants(wal_dir, snapshot_dir) == [f"p-{n}" for n in range(1, last + 1)]
