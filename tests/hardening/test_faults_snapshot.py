"""A damaged snapshot: recovery falls back to the previous snapshot plus the log (or to the log
alone when it still starts at record 1) with a `snapshot_damaged_falling_back` warning, and every
acknowledged transfer is there; when nothing can replace it, the switch refuses to start."""

from support.switch_process import SwitchProcess, run_switch_once
from support.wire import WireClient
from support.world import FUNDS, create_world, lookup_all
from payswitch.switch.storage.segments import list_segments
from payswitch.switch.storage.snapshots import HEADER

from hardening.fault_support import (assert_books_balance, flip_byte, run_switch_cli,
                                     send_transfers, snapshots)

NO_BACKGROUND_SNAPSHOTS = ("--snapshot-every-bytes", "1000000000")


def run_and_stop(switch: SwitchProcess, prefix: str, count: int, world: bool = False) -> dict:
    """Starts the switch, sends transfers, stops it with SIGTERM (which writes a snapshot)."""
    switch.start()
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        if world:
            create_world(admin)
        acked = send_transfers(admin, prefix, count, reference="z" * 60)
    assert switch.stop() == 0
    return acked


def check_all_present(switch: SwitchProcess, acked: dict) -> None:
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        found = lookup_all(admin, acked)
        assert set(found) == set(acked), "an acknowledged transfer was lost"
        assert all(found[i]["timestamp"] == ts for i, ts in acked.items())
        accounts = assert_books_balance(admin)
        assert accounts["b-1"]["balance"] == 3 * len(acked)
        assert accounts["a-1"]["balance"] == FUNDS - 3 * len(acked)


def test_damaged_newest_snapshot_falls_back_to_the_previous_one_plus_the_log(tmp_path):
    data_dir = tmp_path / "data"
    switch = SwitchProcess(data_dir, extra_args=("--wal-segment-bytes", "4000",
                                                 *NO_BACKGROUND_SNAPSHOTS))
    acked = run_and_stop(switch, "first", 40, world=True)
    acked |= run_and_stop(switch, "second", 40)
    (older_seq, _), (newest_seq, newest) = snapshots(data_dir)
    assert older_seq < newest_seq
    assert list_segments(data_dir / "wal")[0][0] > 1, "the log must need the older snapshot"
    flip_byte(newest, HEADER.size + newest.stat().st_size // 2)
    code, output = run_switch_cli("wal", "verify", "--data-dir", data_dir)
    assert code == 1 and f"snapshot {newest}: seq {newest_seq}: DAMAGED" in output, output

    switch.start()
    try:
        warnings = switch.log_events("snapshot_damaged_falling_back")
        assert len(warnings) == 1 and str(newest) in warnings[0]["reason"], warnings
        assert warnings[0]["level"] == "warning"
        loaded = switch.log_events("snapshot_loaded")
        assert loaded[-1]["seq"] == older_seq, loaded
        assert switch.log_events("recovery_complete")[-1]["records"] >= newest_seq - older_seq
        check_all_present(switch, acked)
    finally:
        assert switch.stop() == 0
    # the clean stop wrote an intact snapshot over the damaged one
    code, output = run_switch_cli("wal", "verify", "--data-dir", data_dir)
    assert code == 0, output


def test_the_only_snapshot_damaged_recovers_from_the_log_when_it_starts_at_record_1(tmp_path):
    data_dir = tmp_path / "data"
    switch = SwitchProcess(data_dir, extra_args=NO_BACKGROUND_SNAPSHOTS)
    acked = run_and_stop(switch, "only", 30, world=True)
    (_, snapshot), = snapshots(data_dir)
    assert list_segments(data_dir / "wal")[0][0] == 1
    flip_byte(snapshot, 3)  # the magic
    switch.start()
    try:
        assert len(switch.log_events("snapshot_damaged_falling_back")) == 1
        assert not switch.log_events("snapshot_loaded")
        assert switch.log_events("recovery_complete")[-1]["snapshot_seq"] == 0
        check_all_present(switch, acked)
    finally:
        switch.stop()


def test_damaged_snapshot_with_nothing_to_replace_it_refuses_to_start(tmp_path):
    data_dir = tmp_path / "data"
    switch = SwitchProcess(data_dir, extra_args=("--wal-segment-bytes", "4000",
                                                 *NO_BACKGROUND_SNAPSHOTS))
    run_and_stop(switch, "gone", 60, world=True)
    (seq, snapshot), = snapshots(data_dir)
    first_seq = list_segments(data_dir / "wal")[0][0]
    assert first_seq > 1
    flip_byte(snapshot, snapshot.stat().st_size - 1)
    code, output = run_switch_once(data_dir)
    assert code == 1 and "snapshot_damaged_falling_back" in output
    assert f"records 1..{first_seq - 1} are missing" in output, output
