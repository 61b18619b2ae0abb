"""Format versions over real files: data directories written before segments were versioned
(fixtures/format-v1) and before `transfer_group` records (fixtures/format-v2) still recover,
and a segment or snapshot of a newer version is refused."""
import io
import shutil
import zlib
from pathlib import Path

import pytest

from support.switch_process import SwitchProcess, run_switch_once
from support.wire import WireClient
from payswitch.switch.ledger.snapshot import VERSION as SNAPSHOT_VERSION
from payswitch.switch.storage.recovery import RecoveryError, recover
from payswitch.switch.storage.segments import list_segments, list_snapshots
from payswitch.switch.storage.snapshots import read_snapshot, write_snapshot_file
from payswitch.switch.storage.verify import run_repair, run_verify
from payswitch.switch.storage.wal_format import (MAGIC, SEGMENT_HEADER, WAL_VERSION,
                                                 read_segment_header)

FIXTURE = Path(__file__).parent / "fixtures" / "format-v1"
FIXTURE_V2 = Path(__file__).parent / "fixtures" / "format-v2"  # the same world, version 2
FIXTURE_BALANCES = {"a-funding": -1_000_000, "a-1": 999_664, "a-2": 33, "b-1": 303, "b-eur": 0}
NEWER = WAL_VERSION + 1


def fixture_copy(tmp_path, fixture: Path = FIXTURE) -> Path:
    data_dir = tmp_path / "data"
    shutil.copytree(fixture, data_dir, ignore=shutil.ignore_patterns("README.md"))
    return data_dir


def recovered_balances(data_dir: Path) -> dict[str, int]:
    ledger = recover(data_dir / "wal", data_dir / "snapshots").state.ledger
    return {account_id: ledger.accounts[account_id].as_record()["balance"]
            for account_id in FIXTURE_BALANCES}


def headed_segment(version: int, first_seq: int, records: bytes) -> bytes:
    fields = SEGMENT_HEADER.pack(MAGIC, version, first_seq, 0)[:-4]
    return fields + zlib.crc32(fields).to_bytes(4, "big") + records


def one_line_refusal(output: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith("switch: cannot start")]
    return line


def test_a_version_1_log_and_snapshot_recover_to_their_balances(tmp_path):
    data_dir = fixture_copy(tmp_path)
    assert recovered_balances(data_dir) == FIXTURE_BALANCES
    shutil.rmtree(data_dir / "snapshots")  # the log alone, from record 1
    (data_dir / "snapshots").mkdir()
    assert recovered_balances(data_dir) == FIXTURE_BALANCES


def test_a_switch_continues_a_version_1_log_in_version_2_segments(tmp_path):
    data_dir = fixture_copy(tmp_path)
    # The fixture's segment is larger than this: the next write begins a new, headed segment
    switch = SwitchProcess(data_dir, extra_args=("--wal-segment-bytes", "1000")).start()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        reply = admin.call("transfer", {"id": "later", "debit_account": "b-1",
                                        "credit_account": "a-2", "amount": 3})
        assert reply["status"] == "created", reply
    switch.kill()
    [(_, old), (_, new)] = list_segments(data_dir / "wal")
    assert old.read_bytes() == (FIXTURE / "wal" / old.name).read_bytes()
    assert new.read_bytes().startswith(MAGIC)
    assert recovered_balances(data_dir) == {**FIXTURE_BALANCES, "a-2": 36, "b-1": 300}
    out = io.StringIO()
    assert run_verify(data_dir, out) == 0
    assert f"segment {old}: format version 1:" in out.getvalue()
    assert f"segment {new}: format version {WAL_VERSION}:" in out.getvalue()
    assert f"version {SNAPSHOT_VERSION}: intact" in out.getvalue()


def test_a_version_2_log_and_snapshot_recover_to_their_balances(tmp_path):
    data_dir = fixture_copy(tmp_path, FIXTURE_V2)
    [(_, segment)] = list_segments(data_dir / "wal")
    assert read_segment_header(segment.read_bytes(), segment).version == 2
    assert recovered_balances(data_dir) == FIXTURE_BALANCES
    shutil.rmtree(data_dir / "snapshots")  # the log alone, from record 1
    (data_dir / "snapshots").mkdir()
    assert recovered_balances(data_dir) == FIXTURE_BALANCES


def test_a_switch_continues_a_version_2_log_in_a_new_segment_of_its_own_version(tmp_path):
    data_dir = fixture_copy(tmp_path, FIXTURE_V2)
    switch = SwitchProcess(data_dir).start()  # the old segment is far from full
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        reply = admin.call("transfer", {"id": "later", "debit_account": "b-1",
                                        "credit_account": "a-2", "amount": 3}, "msgpack")
        assert reply["status"] == "created", reply  # a record a version 2 build cannot read
    switch.kill()
    [(_, old), (_, new)] = list_segments(data_dir / "wal")
    assert old.read_bytes() == (FIXTURE_V2 / "wal" / old.name).read_bytes()
    assert read_segment_header(new.read_bytes(), new).version == WAL_VERSION
    assert recovered_balances(data_dir) == {**FIXTURE_BALANCES, "a-2": 36, "b-1": 300}
    out = io.StringIO()
    assert run_verify(data_dir, out) == 0
    assert f"segment {old}: format version 2:" in out.getvalue()
    assert f"segment {new}: format version {WAL_VERSION}:" in out.getvalue()


def test_a_last_segment_of_an_older_header_alone_is_begun_again_in_this_version(tmp_path):
    data_dir = fixture_copy(tmp_path, FIXTURE_V2)
    begun = data_dir / "wal" / "wal-00000000000000000011.log"  # a rotation, then a crash
    begun.write_bytes(headed_segment(2, 11, b""))
    switch = SwitchProcess(data_dir).start()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        admin.call("transfer", {"id": "later", "debit_account": "b-1", "credit_account": "a-2",
                                "amount": 3}, "msgpack")
    switch.kill()
    assert [path for _, path in list_segments(data_dir / "wal")][-1] == begun
    assert read_segment_header(begun.read_bytes(), begun).version == WAL_VERSION
    assert recovered_balances(data_dir) == {**FIXTURE_BALANCES, "a-2": 36, "b-1": 300}


def test_a_segment_of_a_newer_version_is_refused_at_start_naming_it(tmp_path):
    data_dir = fixture_copy(tmp_path)
    [(first_seq, segment)] = list_segments(data_dir / "wal")
    segment.write_bytes(headed_segment(NEWER, first_seq, segment.read_bytes()))
    before = segment.read_bytes()
    code, output = run_switch_once(data_dir)
    assert code == 1, output
    line = one_line_refusal(output)
    assert str(segment) in line and f"WAL format version {NEWER}" in line
    assert f"reads versions 1 to {WAL_VERSION}" in line
    assert segment.read_bytes() == before  # nothing cut or rewritten
    out = io.StringIO()
    assert run_verify(data_dir, out) == 1
    assert "result: UNREADABLE by this build" in out.getvalue()
    assert run_repair(data_dir, yes=True, out=out) == 1
    assert segment.read_bytes() == before


def test_a_snapshot_of_a_newer_version_is_refused_at_start_naming_it(tmp_path):
    data_dir = fixture_copy(tmp_path)
    [(_, snapshot)] = list_snapshots(data_dir / "snapshots")
    seq, state = read_snapshot(snapshot)
    state["ledger"]["version"] = SNAPSHOT_VERSION + 1
    write_snapshot_file(snapshot, seq, state)
    code, output = run_switch_once(data_dir)
    assert code == 1, output
    line = one_line_refusal(output)
    assert str(snapshot) in line and f"snapshot version {SNAPSHOT_VERSION + 1}" in line
    assert f"reads versions 1, 2, {SNAPSHOT_VERSION}" in line
    out = io.StringIO()
    assert run_verify(data_dir, out) == 1 and "UNREADABLE" in out.getvalue()


def test_a_damaged_segment_header_is_damage_not_a_version(tmp_path):
    data_dir = fixture_copy(tmp_path)
    [(first_seq, segment)] = list_segments(data_dir / "wal")
    headed = bytearray(headed_segment(WAL_VERSION, first_seq, segment.read_bytes()))
    headed[len(MAGIC) + 3] ^= 0x01  # the version
    segment.write_bytes(bytes(headed))
    code, output = run_switch_once(data_dir)
    assert code == 1, output
    line = one_line_refusal(output)
    assert "offset 0: segment header checksum mismatch" in line and "Refusing to start" in line


def test_a_segment_header_cut_short_is_a_torn_tail(tmp_path):
    data_dir = fixture_copy(tmp_path)
    next_seq = 11  # the fixture's log ends at record 10
    torn = data_dir / "wal" / f"wal-{next_seq:020d}.log"
    torn.write_bytes(headed_segment(WAL_VERSION, next_seq, b"")[:10])
    assert recovered_balances(data_dir) == FIXTURE_BALANCES
    assert torn.read_bytes() == b""


def test_a_segment_whose_header_names_another_first_record_is_refused(tmp_path):
    data_dir = fixture_copy(tmp_path)
    [(first_seq, segment)] = list_segments(data_dir / "wal")
    segment.write_bytes(headed_segment(WAL_VERSION, first_seq + 4, segment.read_bytes()))
    with pytest.raises(RecoveryError, match=f"header says it begins at record {first_seq + 4}"):
        recover(data_dir / "wal", data_dir / "snapshots")
