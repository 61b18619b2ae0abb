"""`python -m switch reconcile`: read-only, safe beside a running switch, exit 0 when every closed
window equals its transfers, 1 with a table of differences when a report was doctored."""
import json
import threading

from settlement.settlement_support import (
    BANKS, HUB_ACCOUNTS, create_settlement_world, ok, run_cli, tx,
)
from support.wire import WireClient
from payswitch.switch.reconcile import ledger_of
from payswitch.switch.storage.recovery import recover
from payswitch.switch.storage.segments import list_segments
from payswitch.switch.storage.snapshots import save_snapshot


def reconcile(data_dir, *flags):
    return run_cli("switch", "reconcile", "--data-dir", str(data_dir), *flags)


def files_of(data_dir) -> dict:
    return {p.relative_to(data_dir): p.read_bytes()
            for p in sorted(data_dir.rglob("*")) if p.is_file() and p.name != "LOCK"}


def some_windows(admin) -> int:
    """Three closed windows (one settled) and an open one; returns the interbank moves closed."""
    moved = 0
    for window in range(3):
        items = [tx(f"r{window}-{n}", f"{BANKS[n % 4]}-1", f"{BANKS[(n * 3 + 1) % 4]}-2",
                    10 + n) for n in range(40)]
        ok(admin, "create_transfers", {"transfers": items})
        moved += sum(1 for n in range(40) if n % 4 != (n * 3 + 1) % 4)
        ok(admin, "close_window", {"settle": {"hub_accounts": HUB_ACCOUNTS}} if window == 1
           else {})
    ok(admin, "transfer", tx("open-1", "bank-a-1", "bank-b-1", 5))
    return moved


def test_reconciles_while_the_switch_runs_and_writes_nothing(switch, admin):
    create_settlement_world(admin)
    moved = some_windows(admin)
    stop = threading.Event()

    def keep_sending():  # the WAL grows while reconcile reads it
        with WireClient(switch.host, switch.port) as client:
            client.hello("admin", switch.admin_token)
            n = 0
            while not stop.is_set():
                n += 1
                assert ok(client, "transfer", tx(f"live-{n}", "bank-c-1", "bank-d-1", 1))
    sender = threading.Thread(target=keep_sending, daemon=True)
    sender.start()
    try:
        code, out, err = reconcile(switch.data_dir)
        assert (code, out.strip()) == \
            (0, f"reconciled: 3 windows, {moved} transfers, no differences"), err
        code, out, _ = reconcile(switch.data_dir, "--json")
        assert code == 0 and json.loads(out) == {"windows": 3, "transfers": moved,
                                                 "reconciled": True, "differences": []}
    finally:
        stop.set()
        sender.join(10)
    switch.stop()
    before = files_of(switch.data_dir)
    assert reconcile(switch.data_dir)[0] == 0
    assert files_of(switch.data_dir) == before


def test_a_torn_tail_is_left_alone(switch, admin):
    create_settlement_world(admin)
    moved = some_windows(admin)
    switch.stop()
    _, last = list_segments(switch.data_dir / "wal")[-1]
    last.write_bytes(last.read_bytes() + b"\x00\x00\x01\x00\xde\xad")  # half a record
    before = files_of(switch.data_dir)
    code, out, err = reconcile(switch.data_dir)
    assert (code, out.strip()) == \
        (0, f"reconciled: 3 windows, {moved} transfers, no differences"), err
    assert files_of(switch.data_dir) == before
    recovered = recover(switch.data_dir / "wal", switch.data_dir / "snapshots", read_only=True)
    assert recovered.truncated_bytes == 6
    assert files_of(switch.data_dir) == before


def doctor(data_dir, change) -> None:
    """Write a snapshot of the recovered state with `change(ledger_state)` applied."""
    recovered = recover(data_dir / "wal", data_dir / "snapshots", read_only=True)
    holder = getattr(recovered, "state", None) or ledger_of(recovered)
    state = holder.snapshot_state()
    change(state["ledger"] if "ledger" in state else state)
    save_snapshot(data_dir / "snapshots", recovered.next_seq - 1, state)


def test_a_doctored_report_row_is_reported_with_exit_1(switch, admin):
    create_settlement_world(admin)
    some_windows(admin)
    report = ok(admin, "get_window", {"window_id": 2})
    row = report["positions"][0]
    switch.stop()

    def change(ledger_state):
        window = ledger_state["windows"][1]  # [id, opened_at, closed_at, count, rows, ...]
        assert window[4][0][:2] == [row["participant"], row["currency"]]
        window[4][0][3] += 7  # the first participant's credits in window 2
    doctor(switch.data_dir, change)
    code, out, err = reconcile(switch.data_dir)
    assert code == 1, (out, err)
    lines = out.splitlines()
    assert lines[0].split() == ["window", "what", "key", "reported", "recomputed"]
    who = f"{row['participant']} {row['currency']}"
    assert [line.split() for line in lines if f"{who} credits" in line] == [
        ["2", "position", *who.split(), "credits", str(row["credits"] + 7), str(row["credits"])]]
    assert any(f"{who} net" in line for line in lines)
    assert lines[-1].startswith("NOT reconciled:")
    code, out, _ = reconcile(switch.data_dir, "--json")
    found = json.loads(out)
    assert code == 1 and not found["reconciled"]
    assert {"window_id": 2, "what": "position", "key": f"{who} credits",
            "reported": row["credits"] + 7, "recomputed": row["credits"]} in found["differences"]


def test_a_doctored_settlement_posting_is_reported(switch, admin):
    create_settlement_world(admin)
    some_windows(admin)
    switch.stop()

    def change(ledger_state):
        transfers = ledger_state["transfers"]  # one list per field (snapshot version 3)
        n = next(n for n, tid in enumerate(transfers["ids"]) if tid.startswith("settle:2:"))
        transfers["amounts"][n] += 1  # the amount of the first posting of window 2
        # keep the balances consistent with the doctored transfer, so only the window differs
        ledger_state["accounts"][transfers["debits"][n]][5] += 1
        ledger_state["accounts"][transfers["credits"][n]][6] += 1
    doctor(switch.data_dir, change)
    code, out, _ = reconcile(switch.data_dir)
    assert code == 1
    assert "settlement" in out and "posting settle:2:" in out


def test_not_a_data_dir(tmp_path):
    code, out, err = reconcile(tmp_path / "nothing-here")
    assert code == 2 and "not a switch data directory" in err
