"""A record damaged in the middle of the log: the switch refuses to start naming file and offset;
`python -m switch wal verify` names them too; `wal repair` cuts the log back to the last good
record only after the operator types `yes`, keeps what it cut in wal/quarantine/, and the switch
then starts with everything before the damage."""
from support.switch_process import SwitchProcess, run_switch_once
from support.wire import WireClient
from support.world import FUNDS, create_world, lookup_all
from payswitch.switch.storage.segments import list_segments

from hardening.fault_support import (assert_books_balance, find_record, flip_byte,
                                     records, run_switch_cli, send_transfers, snapshots,
                                     tree_digest)


def started_world(data_dir, *extra_args) -> SwitchProcess:
    switch = SwitchProcess(data_dir, extra_args=extra_args).start()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        create_world(admin)
    return switch


def test_verify_names_file_and_offset_and_repair_cuts_only_after_yes(tmp_path):
    data_dir = tmp_path / "data"
    switch = started_world(data_dir)
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        acked = send_transfers(admin, "p", 12)
    # beside a running switch: verify reads and says clean; repair refuses (the lock is held)
    code, output = run_switch_cli("wal", "verify", "--data-dir", data_dir)
    assert code == 0 and "result: clean" in output, output
    code, output = run_switch_cli("wal", "repair", "--data-dir", data_dir, "--yes")
    assert code == 1 and "refusing to repair" in output and "LOCK" in output, output
    switch.kill()

    segment, offset, seq = find_record(data_dir, "p5")
    flip_byte(segment, offset + 12)  # inside the payload of the record that created p5
    code, output = run_switch_cli("wal", "verify", "--data-dir", data_dir)
    assert code == 1, output
    assert f"segment {segment}:" in output and f"DAMAGED at offset {offset}: checksum mismatch" \
        in output and "intact records follow (6 found after it)" in output, output
    assert "result: DAMAGED" in output
    code, output = run_switch_once(data_dir)
    assert code == 1 and str(segment) in output and f"offset {offset}" in output

    before, size = tree_digest(data_dir), segment.stat().st_size
    for answer in ("", "no\n", "y\n", "YES please\n"):
        code, output = run_switch_cli("wal", "repair", "--data-dir", data_dir, stdin=answer)
        assert code == 1 and "not confirmed; nothing changed" in output, output
        assert f"damage: {segment} at offset {offset}" in output
        assert f"the last good record is {seq - 1}" in output
        assert "lost:   6 intact records" in output
        assert tree_digest(data_dir) == before, "repair changed something without a yes"

    code, output = run_switch_cli("wal", "repair", "--data-dir", data_dir, stdin="yes\n")
    assert code == 0 and f"the log ends at record {seq - 1}" in output, output
    assert segment.stat().st_size == offset
    quarantined = list((data_dir / "wal" / "quarantine").rglob(f"{segment.name}.from-offset-*"))
    assert len(quarantined) == 1 and quarantined[0].stat().st_size == size - offset
    code, output = run_switch_cli("wal", "verify", "--data-dir", data_dir)
    assert code == 0 and "result: clean" in output, output

    switch.start()
    try:
        with WireClient(switch.host, switch.port) as admin:
            admin.hello("admin", switch.admin_token)
            found = lookup_all(admin, acked)
            kept = {f"p{n}" for n in range(5)}
            assert set(found) == kept, "repair must keep exactly the records before the damage"
            assert all(found[i]["timestamp"] == acked[i] for i in kept)
            accounts = assert_books_balance(admin)
            assert accounts["b-1"]["balance"] == 3 * len(kept)
            assert accounts["a-1"]["balance"] == FUNDS - 3 * len(kept)
            assert admin.call("transfer", {"id": "p5", "debit_account": "a-1",
                                           "credit_account": "b-1", "amount": 3})["status"] \
                == "created", "the id cut off is free again: the client resends it"
    finally:
        switch.stop()


def test_repair_of_an_older_segment_moves_later_segments_to_quarantine(tmp_path):
    data_dir = tmp_path / "data"
    switch = started_world(data_dir, "--wal-segment-bytes", "3000")
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        acked = send_transfers(admin, "q", 80, reference="x" * 40)
    switch.kill()
    segments = list_segments(data_dir / "wal")
    assert len(segments) >= 4, segments
    segment, offset, seq = find_record(data_dir, "q30")
    later = [path for _, path in segments if path.name > segment.name]
    assert later, "the damaged segment must not be the last one"
    flip_byte(segment, offset + 2)  # the length field: caught by the checksum over it
    code, output = run_switch_once(data_dir)
    assert code == 1 and str(segment) in output and f"offset {offset}" in output

    code, output = run_switch_cli("wal", "repair", "--data-dir", data_dir, "--yes")
    assert code == 0, output
    for path in later:
        assert f"move:   later segment {path}" in output
        assert not path.exists()
        assert list((data_dir / "wal" / "quarantine").rglob(path.name)), path
    switch.start()
    try:
        with WireClient(switch.host, switch.port) as admin:
            admin.hello("admin", switch.admin_token)
            found = lookup_all(admin, acked)
            assert set(found) == {f"q{n}" for n in range(30)}
            assert assert_books_balance(admin)["b-1"]["balance"] == 3 * 30
    finally:
        switch.stop()


def test_repair_refuses_when_the_cut_would_leave_records_nothing_covers(tmp_path):
    """Damage before the newest snapshot's seq, in the segment recovery starts with, and older
    segments already pruned: the cut would drop that snapshot (it holds records after the cut)
    and leave records no snapshot holds, so repair refuses and changes nothing. Damage in a
    segment the snapshot fully covers is left alone: the switch starts without reading it."""
    data_dir = tmp_path / "data"
    switch = started_world(data_dir, "--wal-segment-bytes", "3000",
                           "--snapshot-every-bytes", "1000000000")
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        send_transfers(admin, "r", 60, reference="y" * 40)
    assert switch.stop() == 0  # SIGTERM writes a snapshot and prunes the segments it covers
    assert snapshots(data_dir)
    segments = list_segments(data_dir / "wal")
    assert segments[0][0] > 1, "the snapshot did not let old segments go"
    (snapshot_seq, _), = snapshots(data_dir)
    if len(segments) > 1:  # a segment the snapshot covers: damage there stops nothing
        flip_byte(segments[0][1], 9)
        code, output = run_switch_cli("wal", "verify", "--data-dir", data_dir)
        assert code == 1 and f"covered by snapshot {snapshot_seq}" in output, output
        code, output = run_switch_cli("wal", "repair", "--data-dir", data_dir, "--yes")
        assert code == 0 and "nothing to repair" in output, output
    last = segments[-1][1]
    kept = records(last)
    assert len(kept) >= 2 and kept[-1][1][0] == snapshot_seq, kept
    flip_byte(last, kept[0][0] + 9)  # the first record of the segment recovery starts with
    code, output = run_switch_once(data_dir)
    assert code == 1 and str(last) in output and "Refusing to start" in output
    before = tree_digest(data_dir)
    code, output = run_switch_cli("wal", "repair", "--data-dir", data_dir, "--yes")
    assert code == 1 and "refusing to repair" in output and "no intact snapshot" in output, \
        output
    assert f"move:   snapshot {snapshots(data_dir)[0][1]}" in output
    assert tree_digest(data_dir) == before
