"""One-phase transfers, every item status, idempotency, lookups and the transfer op."""

import pytest

from ledger.ledger_support import NOW, standard, tr
from payswitch.switch.ledger import LedgerError


def test_one_phase_transfer_moves_money():
    env = standard()
    res, changed = env.ex("p1", "create_transfers",
                          {"transfers": [tr("t1", "a1", "a2", 300, reference="inv-1")]})
    assert changed
    assert res["results"][0]["status"] == "created"
    assert isinstance(res["results"][0]["timestamp"], int)
    assert env.account("a1")["balance"] == 700 and env.account("a1")["debits_posted"] == 300
    assert env.account("a2")["balance"] == 1300 and env.account("a2")["credits_posted"] == 1300
    assert env.get_transfer("t1") == {
        "id": "t1", "debit_account": "a1", "credit_account": "a2", "amount": 300,
        "currency": "USD", "reference": "inv-1", "pending": False, "timeout": 0,
        "post_pending_id": None, "void_pending_id": None, "state": "posted",
        "timestamp": res["results"][0]["timestamp"]}
    env.ledger.check_invariants()


@pytest.mark.parametrize("item, caller, status", [
    (tr("x", "a1", "a2", 0), "p1", "invalid_amount"),
    (tr("x", "nope", "a2", 5), "p1", "account_not_found"),
    (tr("x", "a1", "nope", 5), "p1", "account_not_found"),
    (tr("x", "a1", "a1", 5), "p1", "same_account"),
    (tr("x", "a1", "e2", 5), "p1", "currency_mismatch"),
    (tr("x", "a1", "a2", 5, currency="EUR"), "p1", "currency_mismatch"),
    (tr("x", "a2", "a1", 5), "p1", "forbidden"),
    (tr("x", "a1", "a2", 1001), "p1", "insufficient_funds"),
    (tr("x", "a1", "a2", 1001, pending=True), "p1", "insufficient_funds"),
])
def test_item_failures(item, caller, status):
    env = standard()
    before = env.ledger.snapshot_state()
    assert env.transfer(caller, item) == status
    assert env.ledger.snapshot_state() == before  # nothing stored, no timestamp consumed
    with pytest.raises(LedgerError) as err:
        env.ex(caller, "transfer", item)
    assert err.value.code == status


def test_check_order_amount_before_accounts():
    env = standard()
    assert env.transfer("p1", tr("x", "nope", "nope", 0)) == "invalid_amount"
    assert env.transfer("p3", tr("x", "a2", "a2", 5)) == "same_account"


def test_given_currency_equal_to_the_accounts_is_fine():
    env = standard()
    assert env.transfer("p1", tr("x", "a1", "a2", 5, currency="USD")) == "created"


def test_overdraft_limit_and_unlimited_accounts():
    env = standard()
    assert env.transfer("p1", tr("x1", "a1", "b1", 1000)) == "created"  # down to exactly 0
    assert env.transfer("p1", tr("x2", "a1", "b1", 1)) == "insufficient_funds"
    env.ex("admin", "create_accounts", {"accounts": [
        {"id": "od", "participant": "p1", "currency": "USD", "overdraft_limit": 50}]})
    assert env.transfer("p1", tr("x3", "od", "b1", 50)) == "created"
    assert env.transfer("p1", tr("x4", "od", "b1", 1)) == "insufficient_funds"
    assert env.account("od")["available"] == -50
    assert env.transfer("p1", tr("x5", "u1", "b1", 10**15)) == "created"


def test_pending_debits_count_against_available():
    env = standard()
    assert env.transfer("p1", tr("h", "a1", "a2", 900, pending=True)) == "created"
    assert env.transfer("p1", tr("x", "a1", "a2", 101)) == "insufficient_funds"
    assert env.transfer("p1", tr("y", "a1", "a2", 100)) == "created"


def test_suspended_participants_on_either_side():
    env = standard()
    env.ex("admin", "set_participant", {"id": "p2", "net_debit_cap": None, "suspended": True})
    assert env.transfer("p1", tr("x", "a1", "a2", 5)) == "participant_suspended"
    assert env.transfer("p2", tr("y", "a2", "a1", 5)) == "participant_suspended"
    assert env.transfer("p1", tr("z", "a1", "a3", 5)) == "created"
    env.ex("admin", "set_participant", {"id": "p2", "net_debit_cap": None, "suspended": False})
    assert env.transfer("p1", tr("x", "a1", "a2", 5)) == "created"


def test_admin_may_debit_any_account():
    env = standard()
    assert env.transfer("admin", tr("x", "a2", "a1", 5)) == "created"


def test_timestamps_take_max_of_clock_and_last_plus_one():
    env = standard()
    last = env.get_transfer("fund2")["timestamp"]
    res = env.result("p1", "create_transfers", {"transfers": [
        tr("x", "a1", "a2", 1), tr("y", "a1", "a2", 1)]}, now=NOW)  # clock behind
    assert [r["timestamp"] for r in res["results"]] == [last + 1, last + 2]
    res = env.result("p1", "create_transfers", {"transfers": [tr("z", "a1", "a2", 1)]},
                     now=last + 10**9)
    assert res["results"][0]["timestamp"] == last + 10**9


# -- idempotency ----------------------------------------------------------------------

def test_exists_answers_with_the_original_timestamp():
    env = standard()
    item = tr("t1", "a1", "a2", 300, reference="r")
    first = env.result("p1", "create_transfers", {"transfers": [item]})["results"][0]
    res, changed = env.ex("p1", "create_transfers",
                          {"transfers": [dict(item, linked=False)]})
    assert res["results"][0] == {"status": "exists", "timestamp": first["timestamp"]}
    assert not changed
    assert env.balance("a1") == 700  # paid once
    res, changed = env.ex("p1", "transfer", item)
    assert res == {"status": "exists", "timestamp": first["timestamp"]} and not changed


@pytest.mark.parametrize("change", [
    {"debit_account": "b1"}, {"credit_account": "a3"}, {"amount": 301},
    {"currency": "EUR"}, {"reference": "other"}, {"reference": None},
    {"pending": True}, {"post_pending_id": "t0"}, {"void_pending_id": "t0"},
    {"amount": 0},
])
def test_exists_with_different_fields(change):
    env = standard()
    item = tr("t1", "a1", "a2", 300, reference="r")
    assert env.transfer("p1", item) == "created"
    assert env.transfer("p1", dict(item, **change)) == "exists_with_different_fields"
    assert env.error("p1", "transfer", dict(item, **change)) == "exists_with_different_fields"


def test_omitted_currency_compares_equal():
    env = standard()
    assert env.transfer("p1", tr("t1", "a1", "a2", 5, currency="USD")) == "created"
    assert env.transfer("p1", tr("t1", "a1", "a2", 5)) == "exists"
    assert env.transfer("p1", tr("t2", "a1", "a2", 5)) == "created"
    assert env.transfer("p1", tr("t2", "a1", "a2", 5, currency="USD")) == "exists"


def test_linked_is_not_compared():
    env = standard()
    assert env.statuses("p1", [tr("t1", "a1", "a2", 5, linked=True),
                               tr("t2", "a1", "a2", 5)]) == ["created", "created"]
    assert env.transfer("p1", tr("t1", "a1", "a2", 5)) == "exists"


def test_failed_ids_are_evaluated_afresh():
    env = standard()
    assert env.transfer("p1", tr("t1", "a1", "a2", 5000)) == "insufficient_funds"
    assert env.get_transfer("t1") is None
    assert env.transfer("p1", tr("t1", "a1", "a2", 500)) == "created"


def test_exists_is_checked_before_the_other_rules():
    env = standard()
    item = tr("t1", "a1", "a2", 1000)
    assert env.transfer("p1", item) == "created"  # a1 is now empty
    assert env.transfer("p1", item) == "exists"
    env.ex("admin", "set_participant", {"id": "p1", "net_debit_cap": None, "suspended": True})
    assert env.transfer("p1", item) == "exists"


# -- transfer op ------------------------------------------------------------------------

def test_transfer_op_single_item():
    env = standard()
    res, changed = env.ex("p1", "transfer", tr("t1", "a1", "a2", 5))
    assert res["status"] == "created" and changed
    assert env.error("p1", "transfer", tr("t2", "a1", "a2", 5, linked=True)) \
        == "linked_event_chain_open"
    assert env.get_transfer("t2") is None


# -- lookups ----------------------------------------------------------------------------

def test_lookup_transfers_visibility():
    env = standard()
    env.statuses("admin", [tr("t12", "a1", "a2", 1), tr("t23", "a2", "a3", 1),
                           tr("t11", "a1", "b1", 1)])
    ids = {"ids": ["t12", "t23", "t11", "nope"]}
    seen = lambda caller: [t["id"] for t in env.result(caller, "lookup_transfers", ids)
                           ["transfers"]]
    assert seen("p1") == ["t12", "t11"]
    assert seen("p2") == ["t12", "t23"]
    assert seen("p3") == ["t23"]
    assert seen("admin") == ["t12", "t23", "t11"]


def test_get_account_transfers_pages_oldest_first():
    env = standard()
    env.statuses("p1", [tr(f"t{i}", "a1", "a2" if i % 2 else "b1", 1) for i in range(7)])
    env.statuses("p2", [tr("back", "a2", "a1", 1)])

    def page(caller, after, limit):
        res = env.result(caller, "get_account_transfers",
                         {"account": "a1", "after": after, "limit": limit})
        assert res["next_cursor"] == (None if res["next"] is None else str(res["next"]))
        return [t["id"] for t in res["transfers"]], res["next"]

    ids, nxt = page("p1", None, 3)
    assert ids == ["fund1", "t0", "t1"]
    ids2, nxt2 = page("p1", nxt, 3)
    assert ids2 == ["t2", "t3", "t4"]
    ids3, nxt3 = page("p1", nxt2, 3)
    assert ids3 == ["t5", "t6", "back"] and nxt3 is None
    assert page("admin", None, 100) == (ids + ids2 + ids3, None)
    last = env.get_transfer("back")["timestamp"]
    assert page("p1", last, 10) == ([], None)
    assert page("p1", nxt2, 4) == (ids3, None)  # exactly the rest: nothing follows
    assert page("p1", 0, 1)[0] == ["fund1"]


def test_get_account_transfers_unknown_or_foreign_account():
    env = standard()
    args = {"account": "a2", "after": None, "limit": 10}
    assert env.error("p1", "get_account_transfers", args) == "account_not_found"
    assert env.error("admin", "get_account_transfers", dict(args, account="x")) \
        == "account_not_found"
    assert len(env.result("p2", "get_account_transfers", args)["transfers"]) == 1
