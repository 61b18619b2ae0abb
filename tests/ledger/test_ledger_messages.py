"""Failed transfer items say which field, value and rule refused them; the single `transfer`
raises with the same words; succeeding items carry no message; replay gives the same words."""
import itertools

import pytest

from ledger.ledger_support import SECOND, Env, standard, tr
from payswitch.switch.ledger import Ledger, LedgerError
from payswitch.switch.ledger.explain import differences
from payswitch.switch.ledger.transfers import same_fields


def item_result(env, caller, item):
    return env.result(caller, "create_transfers", {"transfers": [item]})["results"][0]


def single_error(env, caller, item) -> tuple[str, str]:
    with pytest.raises(LedgerError) as info:
        env.ex(caller, "transfer", item)
    return info.value.code, info.value.message


CASES = [
    ("unknown accounts", "p1", tr("x1", "a1", "nope", 5),
     "account_not_found", "credit account nope does not exist"),
    ("both unknown", "admin", tr("x2", "no-1", "no-2", 5),
     "account_not_found", "debit account no-1 and credit account no-2 do not exist"),
    ("same account", "p1", tr("x3", "a1", "a1", 5),
     "same_account", "debit_account and credit_account are both a1"),
    ("accounts differ", "p1", tr("x4", "a1", "e2", 5),
     "currency_mismatch", "debit account a1 is in USD, credit account e2 in EUR"),
    ("currency sent", "p1", tr("x5", "a1", "a2", 5, currency="EUR"),
     "currency_mismatch", "currency EUR was sent, but accounts a1 and a2 are in USD"),
    ("not yours", "p2", tr("x6", "a1", "a2", 5),
     "forbidden", "debit account a1 is not one of p2's accounts: a participant may debit only "
                  "its own accounts"),
    ("funds", "p1", tr("x7", "a1", "a2", 1001),
     "insufficient_funds", "debit account a1 has 1000 available and no overdraft: amount 1001 "
                           "would leave -1"),
    ("amount", "p1", {**tr("x8", "a1", "a2", 0), "amount_sent": "1.5"},
     "invalid_amount", "amount 1.5 is not an integer in 1..9223372036854775807 (minor units)"),
    ("no pending", "p1", tr("x9", post_pending_id="nope"),
     "pending_not_found", "no pending transfer nope"),
    ("taken by another's", "p3", tr("fund1", "a3", "a1", 5),
     "exists_with_different_fields", "transfer id fund1 is already taken; choose another id"),
    ("taken and not yours", "p3", tr("fund2", "a1", "a3", 5),
     "forbidden", "debit account a1 is not one of p3's accounts: a participant may debit only "
                  "its own accounts"),
]


@pytest.mark.parametrize("caller, item, code, message",
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_failed_item_and_a_failed_transfer_say_the_same(caller, item, code, message):
    env = standard()
    assert item_result(env, caller, item) == {"status": code, "timestamp": None,
                                              "message": message}
    assert single_error(env, caller, item) == (code, message)


def test_succeeding_items_have_no_message():
    env = standard()
    results = env.result("p1", "create_transfers", {"transfers": [
        tr("s1", "a1", "a2", 5), tr("s1", "a1", "a2", 5)]})["results"]
    assert [set(r) for r in results] == [{"status", "timestamp"}] * 2


def test_two_phase_messages_name_the_pending_transfer():
    env = standard()
    env.statuses("p1", [tr("h1", "a1", "a2", 300, pending=True, timeout=1),
                        tr("h2", "a1", "a2", 200, pending=True)])
    assert item_result(env, "p1", tr("p-big", post_pending_id="h2", amount=201))["message"] == \
        "amount 201 exceeds the 200 pending in h2"
    assert item_result(env, "p1", tr("v-amt", void_pending_id="h2", amount=5))["message"] == \
        "a void releases the whole 200 pending in h2; amount 5 was sent (omit it)"
    assert item_result(env, "p1", tr("p-acc", "a1", "a3", post_pending_id="h2"))["message"] == \
        'credit_account "a3" differs from pending transfer h2\'s (a1 to a2 in USD); omit them or ' \
        "send those"
    env.statuses("p1", [tr("v-1", void_pending_id="h2")])
    assert item_result(env, "p1", tr("v-2", void_pending_id="h2"))["message"] == \
        "h2 is already voided"
    env.now += 2 * SECOND
    assert item_result(env, "p1", tr("p-late", post_pending_id="h1"))["message"] == \
        "h1 has expired (its timeout of 1 s passed)"


def test_suspension_and_caps_are_named():
    env = standard(caps={"p1": {"USD": 100}})
    assert item_result(env, "p1", tr("c1", "a1", "a2", 101))["message"] == \
        "p1's net debit position in USD would be 101 (with amount 101), above its net debit " \
        "cap of 100"
    env.ex("admin", "set_participant", {"id": "p2", "net_debit_cap": None, "suspended": True})
    # The payer learns the credit account's participant is suspended, not who it is.
    assert item_result(env, "p1", tr("c2", "a1", "a2", 5))["message"] == \
        "credit account a2: its participant is suspended"
    assert item_result(env, "admin", tr("c3", "a1", "a2", 5))["message"] == \
        "credit account a2: participant p2 is suspended"


def test_an_open_chain_and_a_single_linked_transfer_say_why():
    env = standard()
    results = env.result("p1", "create_transfers", {"transfers": [
        tr("o1", "a1", "a2", 5, linked=True), tr("o2", "a1", "a2", 5, linked=True)]})["results"]
    assert [r["message"] for r in results] == [
        "the last item has linked: true, so its linked chain is never closed"] * 2
    assert single_error(env, "p1", tr("o3", "a1", "a2", 5, linked=True)) == (
        "linked_event_chain_open",
        "linked: true needs a next item in the same create_transfers; a transfer alone cannot "
        "be linked")


def test_replay_gives_the_same_results_and_messages():
    env = standard()
    env.statuses("p1", [tr("r1", "a1", "a2", 10, reference="x")])
    items = [tr("r1", "a1", "a2", 11, reference="y"), tr("r2", "a1", "a2", 5000),
             tr("r3", "a1", "a1", 1)]
    live = env.result("p1", "create_transfers", {"transfers": items})
    replayed = Env(Ledger())
    results = [replayed.ledger.execute(*call) for call in env.calls]
    assert results[-1].result == live
    assert live["results"][0]["message"] == \
        'transfer r1 already exists with other fields: amount stored 10, sent 11; ' \
        'reference stored "x", sent "y"'


def test_differences_is_empty_exactly_when_same_fields_holds():
    """explain.differences words transfers.same_fields: they must never disagree."""
    env = standard()
    env.statuses("p1", [tr("d-h", "a1", "a2", 300, pending=True, timeout=60, reference="r"),
                        tr("d-p", post_pending_id="d-h", amount=100)])
    book = env.ledger.book
    variations = {"debit_account": [None, "a1", "b1"], "credit_account": [None, "a2", "a3"],
                  "amount": [None, 100, 300], "currency": [None, "USD", "EUR"],
                  "reference": [None, "r"], "pending": [False, True], "timeout": [0, 60],
                  "post_pending_id": [None, "d-h"], "void_pending_id": [None, "d-h"]}
    checked = 0
    for tid in ("d-h", "d-p"):
        stored = book.by_id[tid]
        for values in itertools.product(*variations.values()):
            item = {"id": tid, "linked": False, **dict(zip(variations, values))}
            assert same_fields(stored, item) == (not differences(stored, item)), item
            checked += 1
    assert checked > 1000


def test_failed_accounts_and_participants_say_why():
    env = standard()
    accounts = env.result("p2", "create_accounts", {"accounts": [
        {"id": "n1", "participant": "p1", "currency": "USD", "overdraft_limit": 0},
        {"id": "a2", "participant": "p2", "currency": "EUR", "overdraft_limit": None},
        {"id": "a1", "participant": "p2", "currency": "USD", "overdraft_limit": 0},
        {"id": "a2", "participant": "p2", "currency": "USD", "overdraft_limit": 0}]})["results"]
    assert accounts == [
        {"status": "forbidden", "message":
         "participant p1 is not p2: a participant may create accounts only for itself"},
        {"status": "account_exists", "message": 'account a2 already exists with other fields: '
         'currency stored "USD", sent "EUR"; overdraft_limit stored 0, sent null'},
        # p1's account: taken, not described.
        {"status": "account_exists", "message": "account id a1 is already taken; choose another id"},
        {"status": "exists"}]
    assert env.result("admin", "create_accounts", {"accounts": [
        {"id": "n2", "participant": "p9", "currency": "USD", "overdraft_limit": 0}]})[
        "results"] == [{"status": "participant_not_found", "message": "participant p9 does not exist"}]
    participants = env.result("admin", "create_participants", {"participants": [
        {"id": "p1", "name": "Other", "net_debit_cap": {"USD": 5}, "token_hash": "h"},
        {"id": "admin", "name": "Admin", "net_debit_cap": {}, "token_hash": "h"}]})["results"]
    assert participants == [
        {"status": "participant_exists", "message": 'participant p1 already exists with other '
         'fields: name stored "P1", sent "Other"; net_debit_cap stored {}, sent {USD: 5}'},
        {"status": "participant_exists", "message": "participant id admin is the operator's"}]


def test_an_invalid_amount_on_a_taken_id_is_named_as_sent():
    env = standard()
    env.statuses("p1", [tr("i1", "a1", "a2", 10)])
    assert item_result(env, "p1", {**tr("i1", "a1", "a2", 0), "amount_sent": '"10"'})[
        "message"] == 'transfer i1 already exists with other fields: amount stored 10, sent "10"'


def test_request_level_not_found_errors_name_what_was_asked():
    env = standard()
    for caller, op, args, message in [
            ("admin", "set_participant", {"id": "p9", "net_debit_cap": None, "suspended": True},
             "participant p9 does not exist"),
            ("admin", "get_account_transfers", {"account": "zz", "after": None, "limit": 5},
             "account zz does not exist"),
            # Another's account reads exactly like a missing one.
            ("p2", "get_account_transfers", {"account": "a1", "after": None, "limit": 5},
             "account a1 does not exist among your accounts"),
            ("p2", "get_account_transfers", {"account": "zz", "after": None, "limit": 5},
             "account zz does not exist among your accounts"),
            ("p1", "get_window", {"window_id": 7}, "window 7 does not exist (windows are 1..1)"),
            ("p1", "get_window_matrix", {"window_id": 2},
             "window 2 does not exist (windows are 1..1)")]:
        with pytest.raises(LedgerError) as info:
            env.ex(caller, op, args)
        assert info.value.message == message, (op, args)


def test_an_admin_only_op_names_itself_and_the_caller():
    env = standard()
    with pytest.raises(LedgerError) as info:
        env.ex("p1", "close_window", {})
    assert (info.value.code, info.value.message) == (
        "forbidden", "close_window is for the operator (admin) only, not p1")
