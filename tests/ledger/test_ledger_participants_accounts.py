"""Participants, accounts, their lookups and op dispatch."""

import pytest

from ledger.ledger_support import NOW, Env, account, participant, standard
from payswitch.switch.ledger import Ledger, LedgerError


def create_participants(env, *items, caller="admin"):
    res, _ = env.ex(caller, "create_participants", {"participants": list(items)})
    return [r["status"] for r in res["results"]]


def create_accounts(env, *items, caller="admin"):
    res, _ = env.ex(caller, "create_accounts", {"accounts": list(items)})
    return [r["status"] for r in res["results"]]


def test_create_participants_statuses():
    env = Env()
    assert create_participants(env, participant("p1", caps={"USD": 5})) == ["created"]
    assert create_participants(
        env,
        participant("p1", caps={"USD": 5}),  # identical
        participant("p1", name="Other", caps={"USD": 5}),
        participant("p1", caps={"USD": 6}),
        participant("p1"),
        participant("admin"),
    ) == ["exists", "participant_exists", "participant_exists", "participant_exists",
          "participant_exists"]
    assert env.ledger.participant_token_hash("p1") == "hash-p1"
    assert env.ledger.participant_token_hash("nobody") is None
    assert env.ledger.participant_token_hash("admin") is None


def test_create_participants_duplicate_in_one_request_and_missing_caps():
    env = Env()
    item = {"id": "p1", "name": "P1", "net_debit_cap": None, "token_hash": "h"}
    assert create_participants(env, item, dict(item)) == ["created", "exists"]


def test_create_participants_is_admin_only():
    env = Env()
    with pytest.raises(LedgerError) as err:
        env.ex("p1", "create_participants", {"participants": [participant("p1")]})
    assert err.value.code == "forbidden"
    assert env.ledger.counts()["participants"] == 0


def test_changed_only_when_something_was_created():
    env = Env()
    _, changed = env.ex("admin", "create_participants", {"participants": [participant("p1")]})
    assert changed
    _, changed = env.ex("admin", "create_participants", {"participants": [participant("p1")]})
    assert not changed


def test_set_participant_caps_and_suspension():
    env = Env()
    create_participants(env, participant("p1", caps={"USD": 5, "EUR": 7}))
    res, changed = env.ex("admin", "set_participant",
                          {"id": "p1", "net_debit_cap": {"USD": 9, "EUR": None, "GBP": 1},
                           "suspended": None})
    assert changed
    assert res == {"id": "p1", "name": "P1", "net_debit_cap": {"USD": 9, "GBP": 1},
                   "suspended": False, "settlement_accounts": {}}
    res, changed = env.ex("admin", "set_participant",
                          {"id": "p1", "net_debit_cap": None, "suspended": True})
    assert changed and res["suspended"] and res["net_debit_cap"] == {"USD": 9, "GBP": 1}
    res, changed = env.ex("admin", "set_participant",
                          {"id": "p1", "net_debit_cap": {"USD": 9}, "suspended": True})
    assert not changed


def test_set_participant_errors():
    env = Env()
    create_participants(env, participant("p1"))
    assert env.error("admin", "set_participant",
                     {"id": "nope", "net_debit_cap": None, "suspended": True}) \
        == "participant_not_found"
    assert env.error("p1", "set_participant",
                     {"id": "p1", "net_debit_cap": None, "suspended": False}) == "forbidden"


def test_create_accounts_statuses_and_rights():
    env = Env()
    create_participants(env, participant("p1"), participant("p2"))
    assert create_accounts(env, account("a1", "p1"), account("a2", "p2", limit=None),
                           caller="p1") == ["created", "forbidden"]
    assert create_accounts(env, account("a2", "p2", limit=None)) == ["created"]
    assert create_accounts(
        env,
        account("a1", "p1"),
        account("a1", "p1", limit=5),
        account("a1", "p1", currency="EUR"),
        account("a1", "p2"),
        account("x", "ghost"),
        caller="admin",
    ) == ["exists", "account_exists", "account_exists", "account_exists",
          "participant_not_found"]
    assert create_accounts(env, account("a2", "p1"), caller="p1") == ["account_exists"]


def test_lookup_accounts_record_and_visibility():
    env = standard()
    rec = env.result("p1", "lookup_accounts", {"ids": ["a1", "a2", "nope", "u1"]})["accounts"]
    assert [r["id"] for r in rec] == ["a1", "u1"]  # a2 belongs to p2: silently absent
    a1 = rec[0]
    assert a1 == {"id": "a1", "participant": "p1", "currency": "USD", "overdraft_limit": 0,
                  "debits_posted": 0, "credits_posted": 1000, "debits_pending": 0,
                  "credits_pending": 0, "balance": 1000, "available": 1000,
                  "timestamp": a1["timestamp"]}
    assert rec[1]["overdraft_limit"] is None and rec[1]["balance"] == -1000
    everything = env.result("admin", "lookup_accounts", {"ids": ["a1", "a2", "a3"]})
    assert [r["id"] for r in everything["accounts"]] == ["a1", "a2", "a3"]


def test_timestamps_strictly_increase_across_events():
    env = Env()
    env.ex("admin", "create_participants",
           {"participants": [participant("p1"), participant("p2")]}, now=NOW)
    res, _ = env.ex("admin", "create_accounts",
                    {"accounts": [account("a1", "p1"), account("a2", "p2")]}, now=NOW - 50)
    got = env.result("admin", "lookup_accounts", {"ids": ["a1", "a2"]})["accounts"]
    # participants took NOW and NOW+1; a clock reading behind the last event still advances
    assert [a["timestamp"] for a in got] == [NOW + 2, NOW + 3]


def test_unknown_ops_are_not_the_ledgers():
    env = Env()
    for op in ("hello", "ping", "stats", "submit_batch", "get_batch", "nonsense"):
        assert env.error("admin", op, {}) == "unknown_op"


def test_read_only_ops_change_nothing():
    env = standard()
    before = env.ledger.snapshot_state()
    for op, args in [("lookup_accounts", {"ids": ["a1"]}), ("lookup_transfers", {"ids": ["x"]}),
                     ("get_account_transfers", {"account": "a1", "after": None, "limit": 5}),
                     ("list_windows", {}), ("get_window", {"window_id": 1})]:
        _, changed = env.ex("admin", op, args)
        assert not changed
    assert env.ledger.snapshot_state() == before


def test_counts():
    env = standard()
    assert env.ledger.counts() == {"participants": 3, "accounts": 8, "transfers": 2,
                                   "pending": 0, "windows": 1}
    assert Ledger().counts() == {"participants": 0, "accounts": 0, "transfers": 0,
                                 "pending": 0, "windows": 0}
