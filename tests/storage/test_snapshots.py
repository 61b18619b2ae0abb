"""Snapshot files: the switch state comes back exactly, and older layouts still load."""
from ledger.ledger_support import busy_history, standard, version_2_state
from payswitch.switch.state import SwitchState
from payswitch.switch.storage.recovery import load_newest_snapshot
from payswitch.switch.storage.snapshots import save_snapshot


def busy_state() -> SwitchState:
    env = standard()
    busy_history(env)
    return SwitchState(env.ledger)


def test_a_snapshot_file_round_trips_exactly(tmp_path):
    state = busy_state()
    save_snapshot(tmp_path, 7, state.snapshot_state())
    seq, loaded = load_newest_snapshot(tmp_path)
    assert seq == 7
    loaded.check_invariants()
    assert loaded.snapshot_state() == state.snapshot_state()
    assert loaded.counts() == state.counts()


def test_a_version_2_snapshot_file_still_loads(tmp_path):
    """Written before transfers were stored column by column (one list per transfer)."""
    state = busy_state()
    save_snapshot(tmp_path, 7, {"ledger": version_2_state(state.ledger),
                                "batches": state.batches.snapshot_state()})
    seq, loaded = load_newest_snapshot(tmp_path)
    assert seq == 7
    loaded.check_invariants()
    assert loaded.snapshot_state() == state.snapshot_state()
