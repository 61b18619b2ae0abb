"""Pending transfers, posts, voids, expiry and linked chains."""

import pytest

from ledger.ledger_support import SECOND, standard, tr


def pending(env, tid="h", amount=400, debit="a1", credit="a2", timeout=0, caller="p1"):
    status = env.transfer(caller, tr(tid, debit, credit, amount, pending=True, timeout=timeout))
    assert status == "created"
    return env.get_transfer(tid)


def test_pending_reserves():
    env = standard()
    h = pending(env)
    assert h["state"] == "pending" and h["pending"] and h["timeout"] == 0
    a1, a2 = env.account("a1"), env.account("a2")
    assert (a1["debits_pending"], a1["balance"], a1["available"]) == (400, 1000, 600)
    assert (a2["credits_pending"], a2["balance"], a2["available"]) == (400, 1000, 1000)
    assert env.ledger.counts()["pending"] == 1
    env.ledger.check_invariants()


def test_full_post_with_derived_fields():
    env = standard()
    pending(env)
    assert env.transfer("p1", tr("p", post_pending_id="h")) == "created"
    post = env.get_transfer("p")
    assert (post["debit_account"], post["credit_account"], post["currency"]) == ("a1", "a2", "USD")
    assert (post["amount"], post["state"], post["post_pending_id"]) == (400, "posted", "h")
    assert env.get_transfer("h")["state"] == "posted"
    a1 = env.account("a1")
    assert (a1["debits_pending"], a1["balance"], a1["available"]) == (0, 600, 600)
    assert env.balance("a2") == 1400
    assert env.ledger.counts()["pending"] == 0
    env.ledger.check_invariants()


def test_partial_post_releases_the_whole_reservation():
    env = standard()
    pending(env)
    assert env.transfer("p2", tr("p", "a1", "a2", 150, currency="USD",
                                 post_pending_id="h")) == "created"  # payee side may post
    a1 = env.account("a1")
    assert (a1["debits_pending"], a1["balance"], a1["available"]) == (0, 850, 850)
    assert env.get_transfer("p")["amount"] == 150


def test_void():
    env = standard()
    pending(env)
    assert env.transfer("p1", tr("v", void_pending_id="h")) == "created"
    void = env.get_transfer("v")
    assert (void["state"], void["amount"], void["void_pending_id"]) == ("voided", 400, "h")
    assert env.get_transfer("h")["state"] == "voided"
    assert env.account("a1")["available"] == 1000 and env.balance("a2") == 1000
    env.ledger.check_invariants()


@pytest.mark.parametrize("first, second, status", [
    ("post", "post", "pending_already_posted"),
    ("post", "void", "pending_already_posted"),
    ("void", "post", "pending_already_voided"),
    ("void", "void", "pending_already_voided"),
])
def test_settling_twice(first, second, status):
    env = standard()
    pending(env)
    assert env.transfer("p1", tr("s1", **{f"{first}_pending_id": "h"})) == "created"
    assert env.transfer("p1", tr("s2", **{f"{second}_pending_id": "h"})) == status


@pytest.mark.parametrize("item, caller, status", [
    (tr("s", post_pending_id="nope"), "p1", "pending_not_found"),
    (tr("s", post_pending_id="fund1"), "p1", "pending_not_found"),  # not a pending one
    (tr("s", post_pending_id="h"), "p3", "pending_not_found"),  # not visible to p3
    (tr("s", void_pending_id="h"), "p3", "pending_not_found"),
    (tr("s", "b1", post_pending_id="h"), "p1", "bad_request"),
    (tr("s", None, "a3", post_pending_id="h"), "p1", "bad_request"),
    (tr("s", currency="EUR", void_pending_id="h"), "p1", "bad_request"),
    (tr("s", amount=300, void_pending_id="h"), "p1", "bad_request"),
    (tr("s", amount=401, post_pending_id="h"), "p1", "exceeds_pending_amount"),
    (tr("s", amount=0, post_pending_id="h"), "p1", "invalid_amount"),
])
def test_settle_failures(item, caller, status):
    env = standard()
    pending(env)
    assert env.transfer(caller, item) == status
    assert env.get_transfer("h")["state"] == "pending"
    assert env.transfer("admin", tr("s", post_pending_id="h")) == "created"  # id reusable


def test_void_with_the_full_amount_is_fine():
    env = standard()
    pending(env)
    assert env.transfer("p2", tr("v", amount=400, void_pending_id="h")) == "created"


def test_post_idempotency_and_default_amount():
    env = standard()
    pending(env)
    pending(env, "h2", 100)
    assert env.transfer("p1", tr("p", amount=150, post_pending_id="h")) == "created"
    assert env.transfer("p1", tr("p", "a1", "a2", 150, post_pending_id="h")) == "exists"
    # an omitted amount means the full pending amount, which differs from 150
    assert env.transfer("p1", tr("p", post_pending_id="h")) == "exists_with_different_fields"
    assert env.transfer("p1", tr("p2", post_pending_id="h2")) == "created"
    assert env.transfer("p1", tr("p2", amount=100, post_pending_id="h2")) == "exists"
    assert env.transfer("p1", tr("p2", "a1", "a2", post_pending_id="h2")) == "exists"
    assert env.transfer("p1", tr("p2", "a2", "a1", post_pending_id="h2")) \
        == "exists_with_different_fields"
    assert env.transfer("p1", tr("p2", void_pending_id="h2")) == "exists_with_different_fields"


def test_pending_idempotency_compares_timeout():
    env = standard()
    pending(env, timeout=5)
    assert env.transfer("p1", tr("h", "a1", "a2", 400, pending=True, timeout=5)) == "exists"
    assert env.transfer("p1", tr("h", "a1", "a2", 400, pending=True, timeout=6)) \
        == "exists_with_different_fields"


# -- expiry ---------------------------------------------------------------------------

def test_expiry_at_a_later_mutating_op():
    env = standard()
    h = pending(env, timeout=2)
    deadline = h["timestamp"] + 2 * SECOND
    assert env.ledger.next_expiry_ns() == deadline
    assert env.transfer("p1", tr("x", "a1", "a2", 601), now=deadline - 1) == "insufficient_funds"
    assert env.get_transfer("h")["state"] == "pending"
    assert env.transfer("p1", tr("x", "a1", "a2", 601), now=deadline) == "created"
    assert env.get_transfer("h")["state"] == "expired"
    assert env.ledger.next_expiry_ns() is None
    assert env.transfer("p1", tr("p", post_pending_id="h")) == "pending_expired"
    assert env.transfer("p1", tr("v", void_pending_id="h")) == "pending_expired"
    env.ledger.check_invariants()


def test_expire_pending_op():
    env = standard()
    h1 = pending(env, "h1", 100, timeout=3)
    h2 = pending(env, "h2", 100, timeout=1)
    pending(env, "h3", 100, timeout=0)  # never expires
    assert env.ledger.next_expiry_ns() == h2["timestamp"] + SECOND
    res, changed = env.ex("admin", "expire_pending", {}, now=h2["timestamp"] + SECOND)
    assert changed and res == {}
    assert [env.get_transfer(t)["state"] for t in ("h1", "h2", "h3")] \
        == ["pending", "expired", "pending"]
    _, changed = env.ex("admin", "expire_pending", {}, now=h2["timestamp"] + SECOND + 1)
    assert not changed
    _, changed = env.ex("admin", "expire_pending", {}, now=h1["timestamp"] + 10**6 * SECOND)
    assert changed
    assert env.account("a1")["debits_pending"] == 100
    assert env.ledger.next_expiry_ns() is None
    assert env.error("p1", "expire_pending", {}) == "forbidden"


def test_settled_pendings_leave_the_expiry_schedule():
    env = standard()
    h1 = pending(env, "h1", 100, timeout=1)
    h2 = pending(env, "h2", 100, timeout=2)
    env.transfer("p1", tr("p", post_pending_id="h1"))
    assert env.ledger.next_expiry_ns() == h2["timestamp"] + 2 * SECOND
    _, changed = env.ex("admin", "expire_pending", {}, now=h1["timestamp"] + SECOND)
    assert not changed
    assert env.get_transfer("h1")["state"] == "posted"


def test_expiry_before_a_failing_request_is_reported_as_a_change():
    env = standard()
    h = pending(env, timeout=1)
    now = h["timestamp"] + SECOND
    executed = env.executed("p1", "transfer", tr("x", "a1", "a2", 0), now=now)
    assert executed.error.code == "invalid_amount" and executed.changed
    executed = env.executed("p1", "transfer", tr("x", "a1", "a2", 0), now=now + 1)
    assert executed.error.code == "invalid_amount" and not executed.changed


# -- linked chains --------------------------------------------------------------------

def test_chain_commits_as_a_whole():
    env = standard()
    res = env.result("p1", "create_transfers", {"transfers": [
        tr("c1", "a1", "a2", 100, linked=True),
        tr("c2", "a1", "a3", 100, linked=True),
        tr("c3", "a1", "b1", 100),
        tr("solo", "a1", "a2", 1)]})["results"]
    assert [r["status"] for r in res] == ["created"] * 4
    assert env.balance("a1") == 699


def test_failing_chain_rolls_back_and_frees_timestamps():
    env = standard()
    before = env.ledger.snapshot_state()
    res = env.result("p1", "create_transfers", {"transfers": [
        tr("c1", "a1", "a2", 100, linked=True),
        tr("c2", "a1", "a3", 100, pending=True, linked=True),
        tr("c3", "a1", "a2", 900, linked=True),  # only 800 left
        tr("c4", "a1", "b1", 1)]})["results"]
    others = "linked chain not applied: transfers[2] (c3) failed with insufficient_funds"
    assert res == [
        {"status": "linked_event_failed", "timestamp": None, "message": others},
        {"status": "linked_event_failed", "timestamp": None, "message": others},
        # What c3 met: the chain's first two items applied, before the roll back.
        {"status": "insufficient_funds", "timestamp": None, "message":
         "debit account a1 has 800 available and no overdraft: amount 900 would leave -100"},
        {"status": "linked_event_failed", "timestamp": None, "message": others}]
    assert env.ledger.snapshot_state() == before
    for tid in ("c1", "c2", "c3", "c4"):
        assert env.get_transfer(tid) is None
    assert env.ledger.next_expiry_ns() is None
    assert env.statuses("p1", [tr("c1", "a1", "a2", 100)]) == ["created"]
    env.ledger.check_invariants()


def test_chains_around_other_items():
    env = standard()
    statuses = env.statuses("p1", [
        tr("x1", "a1", "a2", 1),
        tr("c1", "a1", "a2", 1, linked=True),
        tr("c2", "a1", "a2", 0),
        tr("x2", "a1", "a2", 1),
        tr("d1", "a1", "a2", 1, linked=True),
        tr("d2", "a1", "a2", 1)])
    assert statuses == ["created", "linked_event_failed", "invalid_amount", "created",
                        "created", "created"]
    assert env.balance("a1") == 996


def test_chain_open_at_the_end():
    env = standard()
    statuses = env.statuses("p1", [
        tr("x1", "a1", "a2", 1),
        tr("c1", "a1", "a2", 1, linked=True),
        tr("c2", "a1", "a2", 1, linked=True),
        tr("c3", "a1", "a2", 1, linked=True)])
    assert statuses == ["created", "linked_event_failed", "linked_event_failed",
                        "linked_event_chain_open"]
    assert env.balance("a1") == 999
    assert env.statuses("p1", [tr("c1", "a1", "a2", 1, linked=True)]) \
        == ["linked_event_chain_open"]


def test_chain_with_existing_member_and_duplicate_ids():
    env = standard()
    env.statuses("p1", [tr("old", "a1", "a2", 5)])
    statuses = env.statuses("p1", [
        tr("old", "a1", "a2", 5, linked=True),
        tr("new", "a1", "a2", 5, linked=True),
        tr("new", "a1", "a2", 5)])
    assert statuses == ["exists", "created", "exists"]
    statuses = env.statuses("p1", [
        tr("old", "a1", "a2", 5, linked=True),
        tr("n2", "a1", "a2", 5, linked=True),
        tr("n2", "a1", "a2", 6)])
    assert statuses == ["linked_event_failed", "linked_event_failed",
                        "exists_with_different_fields"]
    assert env.get_transfer("old") is not None and env.get_transfer("n2") is None
    assert env.balance("a1") == 990


def test_rolled_back_post_and_void_restore_the_pending():
    env = standard(caps={"p1": {"USD": 10_000}})
    pending(env, "h", 400, timeout=5)
    pending(env, "g", 100)
    before = env.ledger.snapshot_state()
    statuses = env.statuses("p1", [
        tr("p", amount=300, post_pending_id="h", linked=True),
        tr("v", void_pending_id="g", linked=True),
        tr("n", "a1", "a2", 10, pending=True, timeout=1, linked=True),
        tr("pn", post_pending_id="n", linked=True),
        tr("bad", "a1", "a1", 1)])
    assert statuses == ["linked_event_failed"] * 4 + ["same_account"]
    assert env.ledger.snapshot_state() == before
    env.ledger.check_invariants()
    assert env.ledger.next_expiry_ns() == env.get_transfer("h")["timestamp"] + 5 * SECOND


def test_rolled_back_pending_with_deadline_then_the_same_again():
    # the retry reuses the rolled back pending's timestamp and deadline
    env = standard()
    chain = [tr("h", "a1", "a2", 100, pending=True, timeout=1, linked=True),
             tr("bad", "a1", "a2", 0)]
    assert env.statuses("p1", chain, now=env.now) == ["linked_event_failed", "invalid_amount"]
    assert env.statuses("p1", [chain[0], tr("ok", "a1", "a2", 1)], now=env.now) \
        == ["created", "created"]
    h = env.get_transfer("h")
    assert env.ledger.next_expiry_ns() == h["timestamp"] + SECOND
    env.ex("admin", "expire_pending", {}, now=h["timestamp"] + SECOND)
    assert env.get_transfer("h")["state"] == "expired"
    env.ledger.check_invariants()


def test_settled_pendings_do_not_pile_up_in_the_expiry_schedule():
    env = standard()
    env.statuses("p1", [tr(f"h{i}", "a1", "a2", 10, pending=True, timeout=3600)
                        for i in range(10)])
    env.statuses("p1", [tr(f"p{i}", post_pending_id=f"h{i}") for i in range(6)])
    env.ledger.check_invariants()
    env.statuses("p1", [tr("x", "a1", "a2", 1)])  # a later request drops the stale entries
    assert len(env.ledger.book.heap) == 4
    env.ledger.check_invariants()
    h9 = env.get_transfer("h9")
    env.ex("admin", "expire_pending", {}, now=h9["timestamp"] + 3600 * SECOND)
    assert [env.get_transfer(f"h{i}")["state"] for i in (0, 5, 6, 9)] \
        == ["posted", "posted", "expired", "expired"]
    assert env.ledger.book.heap == [] and env.ledger.next_expiry_ns() is None
