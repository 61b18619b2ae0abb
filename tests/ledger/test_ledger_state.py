"""Deterministic replay, snapshots and the invariant checker."""

import msgpack
import pytest

from ledger.ledger_support import SECOND, Env, busy_history, standard, tr, version_2_state
from payswitch.switch.ledger import Ledger
from payswitch.switch.ledger.records import (
    EXPIRED, PENDING, PENDING_KIND, POST, POSTED, REGULAR, SETTLEMENT, VOID, VOIDED,
)


def replay(calls):
    ledger = Ledger()
    outcomes = []
    for caller, op, args, now in calls:
        executed = ledger.execute(caller, op, args, now)
        outcomes.append(executed if executed.error is None
                        else (executed.error.code, executed.changed))
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


def wire(state):
    """The state as a snapshot file gives it back."""
    return msgpack.unpackb(msgpack.packb(state, use_bin_type=True), strict_map_key=False)


@pytest.mark.parametrize("layout", ["columns (version 3)", "rows (version 2)"])
def test_snapshot_round_trip_mid_history_then_continue_identically(layout):
    env = standard()
    busy_history(env)
    state = env.ledger.snapshot_state()
    saved = state if layout.startswith("columns") else version_2_state(env.ledger)
    restored = Ledger.from_snapshot_state(wire(saved))
    restored.check_invariants()
    assert restored.snapshot_state() == state
    assert restored.counts() == env.ledger.counts()
    for aid, account in env.ledger.accounts.items():
        assert [t.id for t in restored.accounts[aid].transfers] == \
            [t.id for t in account.transfers]
    assert sorted((d, ts, t.id) for d, ts, _, t in restored.book.heap) == \
        sorted((d, ts, t.id) for d, ts, _, t in env.ledger.book.heap if t.state == PENDING)
    twin = Env(restored)
    twin.now = env.now
    assert continue_history(twin) == continue_history(env)


def test_the_snapshot_stores_transfers_column_by_column():
    env = standard()
    busy_history(env)
    columns = env.ledger.snapshot_state()["transfers"]
    ids = columns["ids"]
    assert ids == list(env.ledger.book.by_id)
    assert {len(column) for name, column in columns.items() if name != "targets"} == {len(ids)}
    accounts = list(env.ledger.accounts)
    h1 = ids.index("h1")
    assert [accounts[columns["debits"][h1]], accounts[columns["credits"][h1]]] == ["a1", "a2"]
    assert [[ids[n], ids[target]] for n, target in columns["targets"]] == [["p1", "h1"]]


@pytest.mark.parametrize("version_2", [False, True])
def test_loaded_transfers_share_one_string_per_kind_and_state(version_2):
    """Each transfer would otherwise hold its own copies (about 120 bytes more per transfer)."""
    env = standard()
    busy_history(env)
    saved = version_2_state(env.ledger) if version_2 else env.ledger.snapshot_state()
    restored = Ledger.from_snapshot_state(wire(saved))
    names = (REGULAR, PENDING_KIND, POST, VOID, SETTLEMENT, PENDING, POSTED, VOIDED, EXPIRED)
    for t in restored.book.by_id.values():
        assert any(t.kind is name for name in names) and any(t.state is name for name in names)


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
    with pytest.raises(ValueError, match="version 99; this switch reads versions 1, 2, 3"):
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
