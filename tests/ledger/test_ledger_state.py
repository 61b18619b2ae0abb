"""Deterministic replay, snapshots and the invariant checker."""

import msgpack
import pytest

from ledger.ledger_support import SECOND, Env, standard, tr
from switch.ledger import Ledger, LedgerError


def busy_history(env):
    """A history touching every kind of state: pendings with deadlines, windows, caps."""
    env.ex("admin", "set_participant", {"id": "p2", "net_debit_cap": {"USD": 5000},
                                        "suspended": None})
    env.statuses("p1", [tr("t1", "a1", "a2", 100, reference="r1"),
                        tr("h1", "a1", "a2", 200, pending=True, timeout=3),
                        tr("h2", "a1", "a3", 50, pending=True, timeout=1),
                        tr("h3", "a1", "a3", 10, pending=True)])
    env.statuses("p2", [tr("t2", "a2", "a1", 40, linked=True),
                        tr("p1", amount=150, post_pending_id="h1", linked=True),
                        tr("t3", "a2", "a3", 1)])
    env.ex("admin", "close_window", {})
    env.statuses("admin", [tr("eur", "e2", "e1", 70), tr("bad", "a1", "a2", 10**9)])


def replay(calls):
    ledger = Ledger()
    outcomes = []
    for caller, op, args, now in calls:
        try:
            outcomes.append(ledger.execute(caller, op, args, now))
        except LedgerError as err:
            outcomes.append(err.code)
    return ledger, outcomes


def test_same_calls_give_the_same_state_and_results():
    env = standard()
    busy_history(env)
    one, out1 = replay(env.calls)
    two, out2 = replay(env.calls)
    assert out1 == out2
    assert one.snapshot_state() == two.snapshot_state() == env.ledger.snapshot_state()


def continue_history(env):
    """Further calls whose results depend on restored order, expiry and windows."""
    h1 = env.get_transfer("h3")
    outcomes = [
        env.result("p1", "get_account_transfers", {"account": "a1", "after": None,
                                                   "limit": 100}),
        env.ledger.next_expiry_ns(),
        env.ex("admin", "expire_pending", {}, now=h1["timestamp"] + 10 * SECOND),
        env.result("p1", "create_transfers", {"transfers": [
            tr("n1", "a1", "a2", 5), tr("n2", "a1", "a2", 5, pending=True, timeout=2),
            tr("v3", void_pending_id="h3"), tr("t1", "a1", "a2", 100, reference="r1")]}),
        env.result("p1", "get_window", {"window_id": 2}),
        env.ex("admin", "close_window", {}),
        env.result("admin", "list_windows", {}),
        env.result("admin", "lookup_accounts", {"ids": list(env.ledger.accounts)}),
        env.ledger.next_expiry_ns(),
        env.ledger.counts(),
    ]
    env.ledger.check_invariants()
    return outcomes, env.ledger.snapshot_state()


def test_snapshot_round_trip_mid_history_then_continue_identically():
    env = standard()
    busy_history(env)
    state = env.ledger.snapshot_state()
    wire = msgpack.unpackb(msgpack.packb(state), strict_map_key=False)
    restored = Ledger.from_snapshot_state(wire)
    restored.check_invariants()
    assert restored.snapshot_state() == state
    assert restored.counts() == env.ledger.counts()
    twin = Env(restored)
    twin.now = env.now
    assert continue_history(twin) == continue_history(env)


def test_restored_clock_continues_after_the_last_timestamp():
    env = standard()
    last = env.ledger.snapshot_state()["last_ts"]
    restored = Env(Ledger.from_snapshot_state(env.ledger.snapshot_state()))
    res = restored.result("p1", "create_transfers", {"transfers": [tr("x", "a1", "a2", 1)]},
                          now=0)
    assert res["results"][0]["timestamp"] == last + 1


def test_snapshot_of_an_empty_ledger():
    state = Ledger().snapshot_state()
    assert Ledger.from_snapshot_state(state).snapshot_state() == state
    with pytest.raises(ValueError):
        Ledger.from_snapshot_state(dict(state, version=99))


@pytest.mark.parametrize("corrupt", [
    lambda L: setattr(L.accounts["a1"], "debits_posted", 1),
    lambda L: setattr(L.totals["USD"], "credits_pending", 8),
    lambda L: setattr(L.clearing.positions["p1", "USD"], "reserved", 0),
    lambda L: setattr(L.clearing.positions["p2", "USD"], "credits", 0),
    lambda L: setattr(L.clearing.window, "transfers", 0),
    lambda L: setattr(L.book, "pending_count", 0),
    lambda L: L.accounts["a1"].transfers.reverse(),
    lambda L: setattr(L.book.by_id["h"], "state", "voided"),
])
def test_invariants_detect_corruption(corrupt):
    env = standard()
    env.statuses("p1", [tr("t", "a1", "a2", 5), tr("h", "a1", "a2", 7, pending=True)])
    env.ledger.check_invariants()
    corrupt(env.ledger)
    with pytest.raises(AssertionError):
        env.ledger.check_invariants()
