"""Window reports survive restarts: windows, their closes and settlement postings go through the
log (and snapshots), so every report and matrix reads the same after a SIGKILL or a SIGTERM."""
import random
import time

from settlement.settlement_support import (
    BANKS, HUB_ACCOUNTS, all_transfers, as_computed, check_report_shape,
    create_settlement_world, independent_reports, ok, run_cli, traffic_accounts, tx,
)
from support.switch_process import SwitchProcess
from support.wire import WireClient


def traffic(client, prefix: str, count: int, seed: int) -> None:
    rng = random.Random(seed)
    items = []
    for n in range(count):
        payer, payee = rng.sample(BANKS, 2)
        if rng.random() < 0.3:
            payee = payer
        extra = {"pending": True} if n % 10 == 0 else {}
        items.append(tx(f"{prefix}-{n}", f"{payer}-1", f"{payee}-2", rng.randint(1, 5000),
                        **extra))
    for start in range(0, count, 100):
        result = ok(client, "create_transfers", {"transfers": items[start:start + 100]})
        assert {r["status"] for r in result["results"]} == {"created"}
    posts = [{"id": f"{prefix}-post-{n}", "post_pending_id": f"{prefix}-{n}"}
             for n in range(0, count, 20)]
    ok(client, "create_transfers", {"transfers": posts})


def everything(client) -> dict:
    windows = ok(client, "list_windows")["windows"]
    reports = {w["window_id"]: ok(client, "get_window", {"window_id": w["window_id"]})
               for w in windows}
    matrices = {w["window_id"]: ok(client, "get_window_matrix", {"window_id": w["window_id"]})
                for w in windows}
    postings = [tid for r in reports.values() for tid in r["settlement_transfers"] or ()]
    return {"windows": windows, "reports": reports, "matrices": matrices,
            "postings": ok(client, "lookup_transfers", {"ids": postings})["transfers"],
            "accounts": ok(client, "lookup_accounts", {"ids": traffic_accounts()})}


def connect(switch) -> WireClient:
    client = WireClient(switch.host, switch.port)
    client.hello("admin", switch.admin_token)
    return client


def wait_for_snapshot(switch, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not any((switch.data_dir / "snapshots").glob("snapshot-*")):
        assert time.monotonic() < deadline, "no snapshot was taken"
        time.sleep(0.05)


def test_reports_are_identical_across_restarts(tmp_path):
    switch = SwitchProcess(tmp_path / "data", extra_args=("--snapshot-every-bytes", "30000"))
    switch.start()
    try:
        with connect(switch) as admin:
            create_settlement_world(admin)
            traffic(admin, "w1", 300, 1)
            first = ok(admin, "close_window", {"settle": {"hub_accounts": HUB_ACCOUNTS}})
            assert first["settlement_transfers"]
            traffic(admin, "w2", 300, 2)
            ok(admin, "close_window", {})
            traffic(admin, "w3", 150, 3)  # the open window has positions too
            wait_for_snapshot(switch)
            traffic(admin, "w3b", 50, 4)  # and some records after the snapshot
            before = everything(admin)
        switch.kill()
        switch.start()
        with connect(switch) as admin:
            assert everything(admin) == before
            traffic(admin, "w3c", 100, 5)
            ok(admin, "close_window", {"settle": {"hub_accounts": HUB_ACCOUNTS}})
            traffic(admin, "w4", 100, 6)
            before = everything(admin)
        switch.restart()  # SIGTERM, then start
        with connect(switch) as admin:
            after = everything(admin)
            assert after == before
            windows = after["windows"]
            assert [w["state"] for w in windows] == ["closed"] * 3 + ["open"]
            computed = independent_reports(all_transfers(admin, traffic_accounts()), windows)
            for wid, report in after["reports"].items():
                check_report_shape(report)
                assert as_computed(report, after["matrices"][wid]) == computed[wid]
    finally:
        switch.stop()
    code, out, err = run_cli("switch", "reconcile", "--data-dir", str(switch.data_dir))
    assert (code, out.strip()) == (0, "reconciled: 3 windows, "
                                      f"{sum(computed[w]['transfers'] for w in (1, 2, 3))} "
                                      "transfers, no differences"), err
