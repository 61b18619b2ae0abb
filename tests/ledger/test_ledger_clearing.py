"""Positions, net debit caps and settlement windows."""

from ledger.ledger_support import NOW, Env, participant, standard, tr


def close(env, now=None):
    report, changed = env.ex("admin", "close_window", {}, now)
    assert changed
    return report


def test_window_one_opens_at_the_first_change():
    env = Env()
    assert env.result("admin", "list_windows", {}) == {"windows": []}
    assert env.error("admin", "get_window", {"window_id": 1}) == "window_not_found"
    env.ex("admin", "create_participants", {"participants": [participant("p1")]}, now=NOW)
    assert env.result("p1", "list_windows", {}) == {"windows": [
        {"window_id": 1, "state": "open", "opened_at": NOW, "closed_at": None}]}


def test_no_window_opens_without_a_change():
    env = Env()
    env.ex("admin", "lookup_accounts", {"ids": ["x"]})
    env.ex("admin", "expire_pending", {})
    assert env.ledger.counts()["windows"] == 0


def test_close_report():
    env = standard()
    env.statuses("p1", [tr("t1", "a1", "a2", 300), tr("t2", "a1", "a3", 50),
                        tr("intra", "a1", "b1", 7)])
    env.statuses("p2", [tr("t3", "a2", "a1", 100)])
    opened = env.result("admin", "get_window", {"window_id": 1})["opened_at"]
    report = close(env, now=env.now + 5)
    assert report == {
        "window_id": 1, "state": "closed", "opened_at": opened, "closed_at": env.now + 5,
        "transfers": 3,
        "positions": [
            {"participant": "p1", "currency": "USD", "debits": 350, "credits": 100,
             "net": -250},
            {"participant": "p2", "currency": "USD", "debits": 100, "credits": 300,
             "net": 200},
            {"participant": "p3", "currency": "USD", "debits": 0, "credits": 50, "net": 50}],
        "instructions": [
            {"participant": "p1", "currency": "USD", "pay": 250},
            {"participant": "p2", "currency": "USD", "receive": 200},
            {"participant": "p3", "currency": "USD", "receive": 50}],
        "settlement_transfers": None}
    assert env.result("admin", "get_window", {"window_id": 1}) == report
    nxt = env.result("admin", "get_window", {"window_id": 2})
    assert nxt == {"window_id": 2, "state": "open", "opened_at": report["closed_at"],
                   "closed_at": None, "transfers": 0, "positions": [], "instructions": [],
                   "settlement_transfers": None}
    assert [w["state"] for w in env.result("p3", "list_windows", {})["windows"]] \
        == ["closed", "open"]
    env.ledger.check_invariants()


def test_zero_net_is_listed_without_instruction():
    env = standard()
    env.statuses("p1", [tr("t1", "a1", "a2", 40)])
    env.statuses("p2", [tr("t2", "a2", "a1", 40)])
    report = close(env)
    assert [p["net"] for p in report["positions"]] == [0, 0]
    assert report["instructions"] == []


def test_positions_per_currency():
    env = standard()
    env.statuses("admin", [tr("eur", "e2", "e1", 70), tr("usd", "a1", "a2", 5)])
    report = close(env)
    assert [(p["participant"], p["currency"], p["net"]) for p in report["positions"]] == [
        ("p1", "EUR", 70), ("p1", "USD", -5), ("p2", "EUR", -70), ("p2", "USD", 5)]


def test_open_window_so_far_and_participant_view():
    env = standard()
    env.statuses("p1", [tr("t1", "a1", "a2", 30), tr("t2", "a1", "a3", 20)])
    seen = env.result("p3", "get_window", {"window_id": 1})
    # p3 received t2 only: its report counts its own transfers, not everyone's
    assert seen["state"] == "open" and seen["closed_at"] is None and seen["transfers"] == 1
    assert env.result("admin", "get_window", {"window_id": 1})["transfers"] == 2
    assert env.result("p1", "get_window", {"window_id": 1})["transfers"] == 2
    assert seen["positions"] == [{"participant": "p3", "currency": "USD", "debits": 0,
                                  "credits": 20, "net": 20}]
    assert seen["instructions"] == [{"participant": "p3", "currency": "USD", "receive": 20}]
    report = close(env)
    seen = env.result("p2", "get_window", {"window_id": 1})
    assert (report["transfers"], seen["transfers"]) == (2, 1)
    assert seen["positions"] == [p for p in report["positions"] if p["participant"] == "p2"]
    assert seen["instructions"] == [{"participant": "p2", "currency": "USD", "receive": 30}]


def test_close_window_is_admin_only_and_unknown_windows():
    env = standard()
    assert env.error("p1", "close_window", {}) == "forbidden"
    assert env.error("p1", "get_window", {"window_id": 2}) == "window_not_found"
    assert env.error("p1", "get_window", {"window_id": 0}) == "window_not_found"


def test_close_as_the_very_first_op():
    env = Env()
    report = close(env, now=NOW)
    assert (report["window_id"], report["opened_at"], report["closed_at"]) == (1, NOW, NOW)
    assert env.ledger.counts()["windows"] == 2


def test_moves_land_in_the_window_open_at_that_moment():
    env = standard()
    env.statuses("p1", [tr("h", "a1", "a2", 100, pending=True)])
    first = close(env)
    assert first["transfers"] == 0 and first["positions"] == []  # reservations do not move
    env.statuses("p1", [tr("p", amount=60, post_pending_id="h")])
    second = close(env)
    assert second["transfers"] == 1
    assert [(p["participant"], p["net"]) for p in second["positions"]] == [("p1", -60),
                                                                         ("p2", 60)]


def test_net_debit_cap_one_phase():
    env = standard(caps={"p1": {"USD": 500}})
    assert env.transfer("p1", tr("t1", "a1", "a2", 400)) == "created"
    assert env.transfer("p1", tr("t2", "a1", "a3", 101)) == "net_debit_cap_exceeded"
    assert env.transfer("p1", tr("t2", "a1", "b1", 101)) == "created"  # intrabank: no cap
    assert env.transfer("p1", tr("t3", "a1", "a3", 100)) == "created"  # exactly at the cap
    assert env.transfer("admin", tr("t4", "a2", "a1", 50)) == "created"  # credits lower it
    assert env.transfer("p1", tr("t5", "u1", "a3", 50)) == "created"
    assert env.transfer("p1", tr("t6", "u1", "a3", 1)) == "net_debit_cap_exceeded"
    assert env.transfer("p1", tr("e", "e1", "e2", 1)) == "insufficient_funds"  # EUR uncapped
    close(env)
    assert env.transfer("p1", tr("t6", "u1", "a3", 500)) == "created"  # a new window


def test_net_debit_cap_counts_reservations_and_skips_posts():
    env = standard(caps={"p1": {"USD": 500}})
    assert env.transfer("p1", tr("h", "a1", "a2", 400, pending=True, timeout=1)) == "created"
    assert env.transfer("p1", tr("t1", "a1", "a2", 101)) == "net_debit_cap_exceeded"
    assert env.transfer("p1", tr("h2", "a1", "a2", 101, pending=True)) \
        == "net_debit_cap_exceeded"
    env.ex("admin", "set_participant", {"id": "p1", "net_debit_cap": {"USD": 400},
                                        "suspended": None})
    assert env.transfer("p1", tr("p", post_pending_id="h")) == "created"  # posts: no cap
    assert env.transfer("p1", tr("t1", "a1", "a2", 1)) == "net_debit_cap_exceeded"
    env.ex("admin", "set_participant", {"id": "p1", "net_debit_cap": {"USD": None},
                                        "suspended": None})
    assert env.transfer("p1", tr("t1", "a1", "a2", 1)) == "created"


def test_void_and_expiry_release_the_reservation():
    env = standard(caps={"p1": {"USD": 300}})
    assert env.transfer("p1", tr("h", "a1", "a2", 300, pending=True)) == "created"
    assert env.transfer("p1", tr("x", "a1", "a3", 1)) == "net_debit_cap_exceeded"
    assert env.transfer("p1", tr("v", void_pending_id="h")) == "created"
    assert env.transfer("p1", tr("g", "a1", "a2", 300, pending=True, timeout=1)) == "created"
    assert env.transfer("p1", tr("x", "a1", "a3", 1)) == "net_debit_cap_exceeded"
    deadline = env.get_transfer("g")["timestamp"] + 10**9
    assert env.transfer("p1", tr("x", "a1", "a3", 300), now=deadline) == "created"
    env.ledger.check_invariants()


def test_suspension_checked_before_funds_and_cap():
    env = standard(caps={"p1": {"USD": 0}})
    env.ex("admin", "set_participant", {"id": "p1", "net_debit_cap": None, "suspended": True})
    assert env.transfer("p1", tr("x", "a1", "a2", 5000)) == "participant_suspended"
    env.ex("admin", "set_participant", {"id": "p1", "net_debit_cap": None, "suspended": False})
    assert env.transfer("p1", tr("x", "a1", "a2", 5000)) == "insufficient_funds"
    assert env.transfer("p1", tr("x", "a1", "a2", 5)) == "net_debit_cap_exceeded"
