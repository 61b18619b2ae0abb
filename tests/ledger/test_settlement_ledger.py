"""The bilateral matrix, settlement accounts, settlement postings in close_window, and the pure
reconciliation of windows against their transfers."""

import msgpack
import pytest

from ledger.ledger_support import Env, account, participant, standard, tr, version_2_state
from payswitch.switch.ledger import Ledger
from payswitch.switch.ledger.clearing import settlement_id
from payswitch.switch.ledger.reconcile import reconcile, render

HUB = {"USD": "hub-usd", "EUR": "hub-eur"}


def matrix(env, wid, caller="admin"):
    rows = env.result(caller, "get_window_matrix", {"window_id": wid})["rows"]
    return [(r["payer"], r["payee"], r["currency"], r["amount"]) for r in rows]


def settled_world(caps=None):
    """`standard` plus a hub participant with unlimited hub accounts, and settlement accounts:
    s1 (p1, funded with 1000), s2 (p2, unlimited), s3 (p3, overdraft 0, empty)."""
    env = standard(caps)
    env.ex("admin", "create_participants", {"participants": [participant("hub")]})
    env.ex("admin", "create_accounts", {"accounts": [
        account("hub-usd", "hub", limit=None), account("hub-eur", "hub", "EUR", limit=None),
        account("s1", "p1"), account("s2", "p2", limit=None), account("s3", "p3"),
        account("se1", "p1", "EUR", limit=None)]})
    assert env.transfer("admin", tr("fund-s1", "u1", "s1", 1000)) == "created"
    for pid, accounts in {"p1": {"USD": "s1", "EUR": "se1"}, "p2": {"USD": "s2"},
                          "p3": {"USD": "s3"}}.items():
        env.ex("admin", "set_participant", {"id": pid, "net_debit_cap": None,
                                            "suspended": None, "settlement_accounts": accounts})
    return env


def close(env, hub=None, caller="admin"):
    args = {} if hub is None else {"settle": {"hub_accounts": hub}}
    report, changed = env.ex(caller, "close_window", args)
    assert changed
    return report


# --- the bilateral matrix --------------------------------------------------------------

def test_matrix_of_the_open_and_the_closed_window():
    env = standard()
    env.statuses("p1", [tr("t1", "a1", "a2", 30), tr("t2", "a1", "a2", 12),
                        tr("t3", "a1", "a3", 5), tr("on-us", "a1", "b1", 99)])
    env.statuses("p2", [tr("t4", "a2", "a1", 7)])
    env.statuses("admin", [tr("eur", "e2", "e1", 70)])
    expected = [("p1", "p2", "USD", 42), ("p1", "p3", "USD", 5), ("p2", "p1", "EUR", 70),
                ("p2", "p1", "USD", 7)]
    assert matrix(env, 1) == expected
    assert env.result("admin", "get_window_matrix", {"window_id": 1})["state"] == "open"
    close(env)
    assert matrix(env, 1) == expected
    assert matrix(env, 2) == []
    env.statuses("p1", [tr("t5", "a1", "a2", 1)])
    assert matrix(env, 2) == [("p1", "p2", "USD", 1)]
    assert matrix(env, 1) == expected  # a closed window's matrix is fixed
    env.ledger.check_invariants()


def test_a_closed_matrix_read_late_is_not_touched_by_the_next_window():
    env = standard()
    env.statuses("p1", [tr("t1", "a1", "a2", 30)])
    close(env)  # the close hands the rows over; they are sorted only when first read
    env.statuses("p1", [tr("t2", "a1", "a2", 5), tr("t3", "a1", "a3", 1)])
    env.statuses("p1", [tr("ok", "a1", "a2", 10, linked=True), tr("bad", "a1", "a3", 5000)])
    assert matrix(env, 1) == [("p1", "p2", "USD", 30)]
    assert matrix(env, 2) == [("p1", "p2", "USD", 5), ("p1", "p3", "USD", 1)]
    env.ledger.check_invariants()


def test_matrix_rows_sum_to_the_positions():
    env = standard()
    env.statuses("p1", [tr("t1", "a1", "a2", 30), tr("t2", "a1", "a3", 5)])
    env.statuses("p2", [tr("t3", "a2", "a3", 8), tr("t4", "a2", "a1", 2)])
    report = close(env)
    rows = matrix(env, 1)
    for p in report["positions"]:
        assert p["debits"] == sum(a for payer, _, c, a in rows
                                  if payer == p["participant"] and c == p["currency"])
        assert p["credits"] == sum(a for _, payee, c, a in rows
                                   if payee == p["participant"] and c == p["currency"])


def test_a_participant_sees_only_its_own_matrix_rows():
    env = standard()
    env.statuses("p1", [tr("t1", "a1", "a2", 30), tr("t2", "a1", "a3", 5)])
    env.statuses("p2", [tr("t3", "a2", "a3", 8)])
    assert matrix(env, 1, "p3") == [("p1", "p3", "USD", 5), ("p2", "p3", "USD", 8)]
    assert matrix(env, 1, "p1") == [("p1", "p2", "USD", 30), ("p1", "p3", "USD", 5)]
    close(env)
    assert matrix(env, 1, "p2") == [("p1", "p2", "USD", 30), ("p2", "p3", "USD", 8)]


def test_matrix_of_unknown_windows():
    env = standard()
    assert env.error("p1", "get_window_matrix", {"window_id": 2}) == "window_not_found"
    assert env.error("admin", "get_window_matrix", {"window_id": 0}) == "window_not_found"
    assert Ledger().execute("admin", "list_windows", {}, 1).result == {"windows": []}


def test_a_rolled_back_chain_leaves_no_matrix_entry():
    env = standard()
    statuses = env.statuses("p1", [tr("ok", "a1", "a2", 10, linked=True),
                                   tr("bad", "a1", "a3", 5000)])
    assert statuses == ["linked_event_failed", "insufficient_funds"]
    assert matrix(env, 1) == []
    assert env.ledger.snapshot_state()["positions"] == [
        [pid, cur, 0, 0, 0, [], 0] for pid, cur in [("p1", "EUR"), ("p1", "USD"), ("p2", "EUR"),
                                                 ("p2", "USD"), ("p3", "USD")]]
    env.ledger.check_invariants()


def test_posts_enter_the_matrix_of_the_window_they_land_in():
    env = standard()
    env.statuses("p1", [tr("h", "a1", "a2", 100, pending=True)])
    close(env)
    env.statuses("p2", [tr("p", amount=60, post_pending_id="h")])
    assert matrix(env, 1) == []
    assert matrix(env, 2) == [("p1", "p2", "USD", 60)]


def test_matrix_survives_a_snapshot():
    env = standard()
    env.statuses("p1", [tr("t1", "a1", "a2", 30)])
    close(env)
    env.statuses("p1", [tr("t2", "a1", "a3", 4)])
    state = msgpack.unpackb(msgpack.packb(env.ledger.snapshot_state()), strict_map_key=False)
    restored = Ledger.from_snapshot_state(state)
    restored.check_invariants()
    for wid in (1, 2):
        assert restored.execute("admin", "get_window_matrix", {"window_id": wid}, 0) == \
            env.ledger.execute("admin", "get_window_matrix", {"window_id": wid}, 0)
    assert restored.snapshot_state() == env.ledger.snapshot_state()


def test_a_version_1_snapshot_loads_with_its_matrices_recomputed():
    env = standard()
    env.statuses("p1", [tr("t1", "a1", "a2", 30), tr("t2", "a1", "a3", 3)])
    close(env)
    env.statuses("p2", [tr("t3", "a2", "a3", 4)])
    state = env.ledger.snapshot_state()
    old = dict(version_2_state(env.ledger), version=1,
               participants=[row[:6] for row in state["participants"]],
               positions=[row[:5] for row in state["positions"]],
               windows=[row[:5] for row in state["windows"]])
    restored = Ledger.from_snapshot_state(old)
    restored.check_invariants()
    assert restored.snapshot_state() == state


def test_a_state_without_participant_counts_recomputes_them():
    """Earlier version 3 snapshots hold no per-participant transfer counts (positions' and
    closed windows' trailing fields): they are rebuilt from the transfers."""
    env = standard()
    env.statuses("p1", [tr("t1", "a1", "a2", 5), tr("t2", "a1", "a3", 6), tr("t3", "a1", "b1", 7)])
    close(env)
    env.statuses("p2", [tr("t4", "a2", "a3", 4), tr("t5", "a2", "a1", 3)])
    state = env.ledger.snapshot_state()
    old = dict(state, positions=[row[:6] for row in state["positions"]],
               windows=[row[:7] for row in state["windows"]])
    restored = Env(Ledger.from_snapshot_state(old))
    restored.ledger.check_invariants()
    assert restored.ledger.snapshot_state() == state
    counts = {(caller, wid): restored.result(caller, "get_window", {"window_id": wid})["transfers"]
              for caller in ("admin", "p1", "p2", "p3") for wid in (1, 2)}
    assert counts == {("admin", 1): 2, ("p1", 1): 2, ("p2", 1): 1, ("p3", 1): 1,
                      ("admin", 2): 2, ("p1", 2): 1, ("p2", 2): 2, ("p3", 2): 1}


# --- settlement accounts ---------------------------------------------------------------

def test_settlement_accounts_are_set_and_unset():
    env = settled_world()
    res, changed = env.ex("admin", "set_participant", {
        "id": "p1", "net_debit_cap": None, "suspended": None,
        "settlement_accounts": {"USD": "b1", "EUR": None}})
    assert changed and res["settlement_accounts"] == {"USD": "b1"}
    _, changed = env.ex("admin", "set_participant", {
        "id": "p1", "net_debit_cap": None, "suspended": None,
        "settlement_accounts": {"USD": "b1"}})
    assert not changed


@pytest.mark.parametrize("accounts, code", [
    ({"USD": "nope"}, "account_not_found"),
    ({"USD": "a2"}, "forbidden"),  # another participant's account
    ({"EUR": "a1"}, "currency_mismatch"),
    ({"USD": "s1", "EUR": "a1"}, "currency_mismatch"),  # all checked before any change
])
def test_settlement_account_refusals_change_nothing(accounts, code):
    env = settled_world()
    before = env.ledger.snapshot_state()
    assert env.error("admin", "set_participant", {
        "id": "p1", "net_debit_cap": {"USD": 5}, "suspended": True,
        "settlement_accounts": accounts}) == code
    assert env.ledger.snapshot_state() == before
    assert env.error("p1", "set_participant", {
        "id": "p1", "net_debit_cap": None, "suspended": None,
        "settlement_accounts": {"USD": "s1"}}) == "forbidden"


# --- settlement postings ---------------------------------------------------------------

def traffic(env):
    """p1 pays 300 net, p2 receives 250, p3 receives 50 (USD); p1 receives 70 EUR from p2."""
    env.statuses("p1", [tr("t1", "a1", "a2", 300), tr("t2", "a1", "a3", 50)])
    env.statuses("p2", [tr("t3", "a2", "a1", 50)])
    env.statuses("admin", [tr("t4", "e2", "e1", 70)])


def test_close_with_settlement_posts_every_net_in_one_step():
    env = settled_world()
    traffic(env)
    env.ex("admin", "set_participant", {"id": "p2", "net_debit_cap": None, "suspended": None,
                                        "settlement_accounts": {"EUR": "e2"}})
    before = {aid: env.balance(aid) for aid in ("s1", "s2", "s3", "se1", "e2", "hub-usd",
                                                "hub-eur")}
    report = close(env, HUB)
    assert [(i["participant"], i["currency"], i.get("pay"), i.get("receive"))
            for i in report["instructions"]] == [
        ("p1", "EUR", None, 70), ("p1", "USD", 300, None), ("p2", "EUR", 70, None),
        ("p2", "USD", None, 250), ("p3", "USD", None, 50)]
    ids = ["settle:1:p1:EUR", "settle:1:p1:USD", "settle:1:p2:EUR", "settle:1:p2:USD",
           "settle:1:p3:USD"]
    assert report["settlement_transfers"] == ids
    postings = {t["id"]: t for t in env.result("admin", "lookup_transfers",
                                               {"ids": ids})["transfers"]}
    assert {tid: (t["debit_account"], t["credit_account"], t["amount"], t["currency"])
            for tid, t in postings.items()} == {
        "settle:1:p1:EUR": ("hub-eur", "se1", 70, "EUR"),
        "settle:1:p1:USD": ("s1", "hub-usd", 300, "USD"),
        "settle:1:p2:EUR": ("e2", "hub-eur", 70, "EUR"),
        "settle:1:p2:USD": ("hub-usd", "s2", 250, "USD"),
        "settle:1:p3:USD": ("hub-usd", "s3", 50, "USD")}
    for t in postings.values():
        assert t["state"] == "posted" and t["reference"] == "settlement of window 1"
        assert t["timestamp"] > report["closed_at"]  # after the close, in the same step
        assert not t["pending"] and t["post_pending_id"] is None
    # payers pay in first, then the hub pays out: the hub accounts end where they started
    pay_in = [postings[i]["timestamp"] for i in ("settle:1:p1:USD", "settle:1:p2:EUR")]
    pay_out = [postings[i]["timestamp"] for i in ids if i not in
               ("settle:1:p1:USD", "settle:1:p2:EUR")]
    assert max(pay_in) < min(pay_out)
    after = {aid: env.balance(aid) for aid in before}
    assert {aid: after[aid] - before[aid] for aid in before} == {
        "s1": -300, "s2": 250, "s3": 50, "se1": 70, "e2": -70, "hub-usd": 0, "hub-eur": 0}
    # postings are exempt from positions: the next window starts empty
    nxt = env.result("admin", "get_window", {"window_id": 2})
    assert (nxt["transfers"], nxt["positions"], nxt["settlement_transfers"]) == (0, [], None)
    assert matrix(env, 2) == []
    assert env.result("admin", "get_window", {"window_id": 1}) == report
    env.ledger.check_invariants()


def test_participants_see_their_own_settlement_postings():
    env = settled_world()
    env.statuses("p1", [tr("t1", "a1", "a2", 300)])
    close(env, {"USD": "hub-usd"})
    seen = env.result("p2", "get_window", {"window_id": 1})
    assert seen["settlement_transfers"] == ["settle:1:p2:USD"]
    assert [t["id"] for t in env.result("p2", "get_account_transfers",
                                        {"account": "s2", "limit": 10})["transfers"]] == \
        ["settle:1:p2:USD"]
    assert env.result("p3", "lookup_transfers", {"ids": ["settle:1:p1:USD"]}) == \
        {"transfers": []}


def test_settlement_ignores_suspension_and_caps_but_not_overdraft():
    env = settled_world(caps={"p1": {"USD": 300}})
    env.statuses("p1", [tr("t1", "a1", "a2", 300)])
    for pid in ("p1", "p2"):
        env.ex("admin", "set_participant", {"id": pid, "net_debit_cap": None,
                                            "suspended": True})
    report = close(env, {"USD": "hub-usd"})
    assert report["settlement_transfers"] == ["settle:1:p1:USD", "settle:1:p2:USD"]
    assert env.balance("s1") == 700 and env.balance("s2") == 300


def test_a_window_without_instructions_settles_with_no_postings():
    env = settled_world()
    env.statuses("p1", [tr("t1", "a1", "a2", 40)])
    env.statuses("p2", [tr("t2", "a2", "a1", 40)])
    report = close(env, {"USD": "hub-usd"})
    assert report["instructions"] == [] and report["settlement_transfers"] == []
    plain = close(env)
    assert plain["settlement_transfers"] is None


@pytest.mark.parametrize("setup, hub, code", [
    (None, {"USD": "nope"}, "account_not_found"),  # unknown hub account, even if unused
    (None, {"USD": "hub-usd", "EUR": "nope"}, "account_not_found"),
    (None, {"USD": "hub-eur"}, "currency_mismatch"),
    (None, {"EUR": "hub-eur"}, "account_not_found"),  # no hub account for USD instructions
    ({"p3": None}, {"USD": "hub-usd"}, "account_not_found"),  # p3 has no settlement account
    ({"p1": "s1"}, {"USD": "s1"}, "same_account"),  # the hub account is p1's own
    ({"p1": "b1"}, {"USD": "hub-usd"}, "insufficient_funds"),  # b1 is empty, overdraft 0
])
def test_a_failing_settlement_refuses_the_close_and_changes_nothing(setup, hub, code):
    env = settled_world()
    env.statuses("p1", [tr("t1", "a1", "a2", 300), tr("t2", "a1", "a3", 50)])
    env.statuses("p2", [tr("t3", "a2", "a3", 20)])  # p3 receives: its posting comes last
    for pid, aid in (setup or {}).items():
        env.ex("admin", "set_participant", {"id": pid, "net_debit_cap": None,
                                            "suspended": None,
                                            "settlement_accounts": {"USD": aid}})
    before = env.ledger.snapshot_state()
    assert env.error("admin", "close_window", {"settle": {"hub_accounts": hub}}) == code
    assert env.ledger.snapshot_state() == before
    assert env.result("admin", "get_window", {"window_id": 1})["state"] == "open"
    report = close(env)  # the operator can still close without postings
    assert report["window_id"] == 1 and report["settlement_transfers"] is None


def test_a_posting_failing_late_undoes_the_earlier_ones():
    env = settled_world()
    env.ex("admin", "create_accounts", {"accounts": [account("s2z", "p2")]})  # empty, limit 0
    env.ex("admin", "set_participant", {"id": "p2", "net_debit_cap": None, "suspended": None,
                                        "settlement_accounts": {"USD": "s2z"}})
    env.statuses("p1", [tr("t1", "a1", "a3", 300)])
    env.statuses("p2", [tr("t2", "a2", "a3", 20)])
    # pay-ins in participant order: p1's 300 from s1 succeeds, then p2's 20 from s2z cannot
    before = env.ledger.snapshot_state()
    assert env.error("admin", "close_window", {"settle": {"hub_accounts": {"USD": "hub-usd"}}}) \
        == "insufficient_funds"
    assert env.ledger.snapshot_state() == before  # p1's posting undone, the clock unmoved
    assert env.result("admin", "lookup_transfers", {"ids": ["settle:1:p1:USD"]}) == \
        {"transfers": []}
    assert env.balance("s1") == 1000
    env.ledger.check_invariants()


def test_a_taken_posting_id_refuses_the_close():
    env = settled_world()
    assert env.transfer("p1", tr("settle:1:p1:USD", "a1", "b1", 1)) == "created"
    env.statuses("p1", [tr("t1", "a1", "a2", 300)])
    before = env.ledger.snapshot_state()
    assert env.error("admin", "close_window", {"settle": {"hub_accounts": {"USD": "hub-usd"}}}) \
        == "exists_with_different_fields"
    assert env.ledger.snapshot_state() == before


def test_close_with_settlement_is_admin_only():
    env = settled_world()
    assert env.error("p1", "close_window", {"settle": {"hub_accounts": {"USD": "hub-usd"}}}) \
        == "forbidden"


def test_replay_and_snapshot_keep_the_settlement():
    env = settled_world()
    traffic(env)
    env.ex("admin", "set_participant", {"id": "p2", "net_debit_cap": None, "suspended": None,
                                        "settlement_accounts": {"EUR": "e2"}})
    close(env, HUB)
    replayed = Ledger()
    for caller, op, args, now in env.calls:
        replayed.execute(caller, op, args, now)
    assert replayed.snapshot_state() == env.ledger.snapshot_state()
    restored = Ledger.from_snapshot_state(
        msgpack.unpackb(msgpack.packb(env.ledger.snapshot_state()), strict_map_key=False))
    restored.check_invariants()
    assert restored.execute("admin", "get_window", {"window_id": 1}, 0) == \
        env.ledger.execute("admin", "get_window", {"window_id": 1}, 0)


def test_settlement_ids_fit_in_64_characters():
    assert settlement_id(7, "bank-a", "USD") == "settle:7:bank-a:USD"
    long = "p" * 64
    tid = settlement_id(123456, long, "USD")
    assert len(tid) <= 64 and tid.startswith("settle:123456:") and tid.endswith(":USD")
    assert tid == settlement_id(123456, long, "USD") != settlement_id(123456, "q" * 64, "USD")


# --- reconciliation --------------------------------------------------------------------

def test_a_clean_ledger_reconciles():
    env = settled_world()
    traffic(env)
    close(env)
    env.statuses("p1", [tr("t9", "a1", "a2", 5)])
    close(env, {"USD": "hub-usd"})
    result = reconcile(env.ledger)
    assert result.ok and (result.windows, result.transfers) == (2, 5)
    assert render(result) == "reconciled: 2 windows, 5 transfers, no differences"


def test_a_doctored_report_row_is_a_difference():
    env = standard()
    env.statuses("p1", [tr("t1", "a1", "a2", 300), tr("t2", "a1", "a3", 50)])
    close(env)
    state = env.ledger.snapshot_state()
    state["windows"][0][4][0][2] += 1  # p1's USD debits in window 1's report
    doctored = Ledger.from_snapshot_state(state)
    result = reconcile(doctored)
    assert not result.ok
    found = {(d.window_id, d.what, d.key, d.reported, d.recomputed) for d in result.differences}
    assert (1, "position", "p1 USD debits", 351, 350) in found
    assert (1, "position", "p1 USD net", -351, -350) in found
    assert (1, "nets", "USD sum of nets", -1, 0) in found
    text = render(result)
    assert "p1 USD debits" in text and "NOT reconciled" in text
    with pytest.raises(AssertionError, match="windows differ"):
        doctored.check_invariants()


def test_doctored_matrix_count_and_settlement_are_differences():
    env = settled_world()
    env.statuses("p1", [tr("t1", "a1", "a2", 300)])
    close(env, {"USD": "hub-usd"})
    state = env.ledger.snapshot_state()
    window = state["windows"][0]
    window[3] += 1  # transfer count
    window[5][0][3] = 1  # p1 -> p2 matrix amount
    window[6][0][2] = "fund-s1"  # p1's posting replaced by another transfer
    found = {(d.what, d.key) for d in reconcile(Ledger.from_snapshot_state(state)).differences}
    assert ("transfers", "count") in found
    assert ("matrix", "p1->p2 USD") in found
    assert ("settlement", "p1 USD posting fund-s1") in found
    assert ("settlement", "settle:1:p1:USD") in found  # now a posting of no window


def test_an_open_window_is_not_reconciled_but_checked_by_the_invariants():
    env = standard()
    env.statuses("p1", [tr("t1", "a1", "a2", 300)])
    state = env.ledger.snapshot_state()
    state["positions"] = [row[:5] + [[]] for row in state["positions"]]  # lose the matrix
    doctored = Ledger.from_snapshot_state(state)
    assert reconcile(doctored).ok and reconcile(doctored).windows == 0
    with pytest.raises(AssertionError, match="matrix"):
        doctored.check_invariants()
