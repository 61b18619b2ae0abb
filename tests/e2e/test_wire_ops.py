"""Every operation of the wire contract, end to end over TCP against a real switch process,
in both codecs: exact statuses, exact balances, ids echoed, replies in the request's codec."""
import time
from contextlib import contextmanager

import pytest

from payswitch.protocol import decode_body
from support.wire import WireClient
from support.world import FUNDS, assert_debits_equal_credits, create_world

ACCOUNTS = ["a-funding", "a-1", "a-2", "b-1", "b-eur"]
ACCOUNT_FIELDS = {"id", "participant", "currency", "overdraft_limit", "debits_posted",
                  "credits_posted", "debits_pending", "credits_pending", "balance", "available"}
TRANSFER_FIELDS = {"id", "debit_account", "credit_account", "amount", "currency", "reference",
                   "pending", "timeout", "post_pending_id", "void_pending_id", "state",
                   "timestamp"}
BAD_AMOUNTS = [1.5, 1.0, True, False, "100", 0, -1, 2**63]


@pytest.fixture(params=["json", "msgpack"])
def codec(request):
    return request.param


@pytest.fixture
def tokens(admin, codec):
    return create_world(admin, codec)


# --- helpers: every reply is checked for its id and its codec ---------------------------

def ok(client, op, args=None, codec="json") -> dict:
    reply = client.request(op, args, codec)
    assert reply["ok"] is True, reply
    assert set(reply) == {"id", "ok", "result"}, reply
    return reply["result"]


def fail(client, op, args=None, codec="json") -> str:
    reply = client.request(op, args, codec)
    assert reply["ok"] is False, reply
    assert set(reply) == {"id", "ok", "error"}, reply
    assert isinstance(reply["error"]["message"], str)
    return reply["error"]["code"]


def statuses(result) -> list[str]:
    return [r["status"] for r in result["results"]]


def tx(tid, debit, credit, amount, **extra) -> dict:
    return {"id": tid, "debit_account": debit, "credit_account": credit, "amount": amount,
            **extra}


def accounts_by_id(client, ids, codec="json") -> dict[str, dict]:
    found = ok(client, "lookup_accounts", {"ids": list(ids)}, codec)["accounts"]
    return {a["id"]: a for a in found}


def transfers_by_id(client, ids, codec="json") -> dict[str, dict]:
    return {t["id"]: t
            for t in ok(client, "lookup_transfers", {"ids": list(ids)}, codec)["transfers"]}


def balances(client, codec="json") -> dict[str, int]:
    return {i: a["balance"] for i, a in accounts_by_id(client, ACCOUNTS, codec).items()}


def start_balances(**changes) -> dict[str, int]:
    world = {"a-funding": -FUNDS, "a-1": FUNDS, "a-2": 0, "b-1": 0, "b-eur": 0}
    for key, delta in changes.items():
        world[key.replace("_", "-")] += delta
    return world


@contextmanager
def session(switch, participant, token, codec="json"):
    with WireClient(switch.host, switch.port) as client:
        result = ok(client, "hello", {"participant": participant, "token": token}, codec)
        assert result["participant"] == participant
        yield client


# --- ping, hello ------------------------------------------------------------------------

def test_ping_and_hello_answer_in_the_codec_of_the_request(switch, codec):
    with WireClient(switch.host, switch.port) as client:
        assert client.request("ping", {}, codec, request_id="p-1") == \
            {"id": "p-1", "ok": True, "result": {}}
        assert client.request("ping", None, codec, request_id=-7) == \
            {"id": -7, "ok": True, "result": {}}
        hello = ok(client, "hello", {"participant": "admin", "token": switch.admin_token}, codec)
        assert hello["participant"] == "admin"
        assert isinstance(hello["server"], str) and hello["server"]
        assert hello["max_frame_bytes"] == 1 << 20
        assert ok(client, "ping", {}, codec) == {}


# --- participants -----------------------------------------------------------------------

def test_create_participants_returns_each_token_once(switch, admin, codec):
    first = ok(admin, "create_participants", {"participants": [
        {"id": "bank-c", "name": "Bank C", "net_debit_cap": {"USD": 5000}},
        {"id": "bank-d", "name": "Bank D"}]}, codec)
    assert statuses(first) == ["created", "created"]
    token_c, token_d = (r["token"] for r in first["results"])
    assert isinstance(token_c, str) and token_c and token_c != token_d

    again = ok(admin, "create_participants", {"participants": [
        {"id": "bank-c", "name": "Bank C", "net_debit_cap": {"USD": 5000}},
        {"id": "bank-d", "name": "Bank D", "net_debit_cap": None}]}, codec)
    assert statuses(again) == ["exists", "exists"]
    assert all(r.get("token") is None for r in again["results"]), again

    different = ok(admin, "create_participants", {"participants": [
        {"id": "bank-c", "name": "Bank C renamed", "net_debit_cap": {"USD": 5000}},
        {"id": "bank-c", "name": "Bank C", "net_debit_cap": {"USD": 6000}},
        {"id": "bank-d", "name": "Bank D", "net_debit_cap": {"EUR": 1}},
        {"id": "admin", "name": "Operator"}]}, codec)
    assert statuses(different) == ["participant_exists"] * 4
    assert all(r.get("token") is None for r in different["results"])

    with session(switch, "bank-c", token_c, codec):
        pass  # the token of the first reply still opens a session
    with session(switch, "bank-d", token_d, codec):
        pass
    with WireClient(switch.host, switch.port) as client:
        assert fail(client, "hello", {"participant": "bank-c", "token": token_d}, codec) == \
            "unauthenticated"


def test_set_participant_suspends_and_resumes_transfers(admin, codec, tokens):
    ok(admin, "set_participant", {"id": "bank-a", "suspended": True}, codec)
    # the suspended participant's debits, on-us and interbank, in both forms
    assert fail(admin, "transfer", tx("s-1", "a-1", "b-1", 10), codec) == "participant_suspended"
    assert fail(admin, "transfer", tx("s-2", "a-1", "a-2", 10), codec) == "participant_suspended"
    result = ok(admin, "create_transfers", {"transfers": [tx("s-3", "a-1", "b-1", 10)]}, codec)
    assert result["results"] == [{"status": "participant_suspended", "timestamp": None,
                                  "message": "debit account a-1: participant bank-a is suspended"}]
    ok(admin, "set_participant", {"id": "bank-a", "suspended": False}, codec)

    # a suspended participant is not credited either
    ok(admin, "set_participant", {"id": "bank-b", "suspended": True}, codec)
    assert fail(admin, "transfer", tx("s-4", "a-1", "b-1", 10), codec) == "participant_suspended"
    assert balances(admin, codec) == start_balances()
    assert transfers_by_id(admin, ["s-1", "s-2", "s-3", "s-4"], codec) == {}

    ok(admin, "set_participant", {"id": "bank-b", "suspended": False}, codec)
    assert ok(admin, "transfer", tx("s-4", "a-1", "b-1", 10), codec)["status"] == "created"
    assert ok(admin, "transfer", tx("s-1", "a-1", "a-2", 10), codec)["status"] == "created"
    assert balances(admin, codec) == start_balances(a_1=-20, a_2=10, b_1=10)
    assert fail(admin, "set_participant", {"id": "bank-zz", "suspended": True}, codec) == \
        "participant_not_found"


# --- accounts ---------------------------------------------------------------------------

def test_create_accounts_statuses_and_overdraft_limit(admin, codec, tokens):
    result = ok(admin, "create_accounts", {"accounts": [
        {"id": "a-3", "participant": "bank-a", "currency": "USD"},
        {"id": "b-2", "participant": "bank-b", "currency": "EUR", "overdraft_limit": 100},
        {"id": "a-1", "participant": "bank-a", "currency": "USD", "overdraft_limit": 0},
        {"id": "a-1", "participant": "bank-a", "currency": "EUR"},
        {"id": "a-1", "participant": "bank-b", "currency": "USD"},
        {"id": "a-funding", "participant": "bank-a", "currency": "USD"},
        {"id": "x-1", "participant": "nobody", "currency": "USD"}]}, codec)
    assert statuses(result) == ["created", "created", "exists", "account_exists",
                                "account_exists", "account_exists", "participant_not_found"]
    found = accounts_by_id(admin, ["a-3", "b-2", "x-1", "a-funding"], codec)
    assert set(found) == {"a-3", "b-2", "a-funding"}
    assert found["a-3"]["overdraft_limit"] == 0 and found["a-3"]["participant"] == "bank-a"
    assert found["b-2"]["overdraft_limit"] == 100 and found["b-2"]["currency"] == "EUR"
    assert found["a-funding"]["overdraft_limit"] is None

    # the overdraft limit is honoured exactly: b-2 may go down to -100
    assert ok(admin, "transfer", tx("od-1", "b-2", "b-eur", 100), codec)["status"] == "created"
    assert fail(admin, "transfer", tx("od-2", "b-2", "b-eur", 1), codec) == "insufficient_funds"
    assert accounts_by_id(admin, ["b-2"], codec)["b-2"]["balance"] == -100


# --- transfers --------------------------------------------------------------------------

def test_transfers_created_then_exists_with_the_original_timestamps(admin, codec, tokens):
    funding = transfers_by_id(admin, ["fund-a-1"], codec)["fund-a-1"]["timestamp"]
    items = [tx("t-1", "a-1", "b-1", 100, currency="USD", reference="invoice 42"),
             tx("t-2", "a-1", "a-2", 250),
             tx("t-3", "a-1", "b-1", 1)]
    first = ok(admin, "create_transfers", {"transfers": items}, codec)["results"]
    assert [r["status"] for r in first] == ["created"] * 3
    stamps = [r["timestamp"] for r in first]
    assert all(type(s) is int for s in stamps)
    assert funding < stamps[0] < stamps[1] < stamps[2]

    single = ok(admin, "transfer", tx("t-4", "b-1", "a-2", 40), codec)
    assert single["status"] == "created" and single["timestamp"] > stamps[2]

    # identical resends, in either form; omitted derived currency and `linked` do not count
    again = ok(admin, "create_transfers", {"transfers": items}, codec)["results"]
    assert again == [{"status": "exists", "timestamp": s} for s in stamps]
    assert ok(admin, "transfer", items[0], codec) == {"status": "exists", "timestamp": stamps[0]}
    assert ok(admin, "transfer", tx("t-2", "a-1", "a-2", 250, currency="USD"), codec) == \
        {"status": "exists", "timestamp": stamps[1]}
    chained = ok(admin, "create_transfers", {"transfers": [
        dict(items[2], linked=True), tx("t-4", "b-1", "a-2", 40)]}, codec)["results"]
    assert chained == [{"status": "exists", "timestamp": stamps[2]},
                       {"status": "exists", "timestamp": single["timestamp"]}]

    # the same id with any compared field changed
    changed = [tx("t-1", "a-1", "b-1", 101, currency="USD", reference="invoice 42"),
               tx("t-1", "a-1", "b-1", 100, currency="USD", reference="invoice 43"),
               tx("t-1", "a-1", "b-1", 100, currency="USD"),
               tx("t-1", "a-1", "a-2", 100, currency="USD", reference="invoice 42"),
               tx("t-2", "a-1", "a-2", 250, pending=True)]
    result = ok(admin, "create_transfers", {"transfers": changed}, codec)["results"]
    differ = "transfer {} already exists with other fields: {}"
    assert result == [{"status": "exists_with_different_fields", "timestamp": None,
                       "message": differ.format(tid, fields)} for tid, fields in [
        ("t-1", "amount stored 100, sent 101"),
        ("t-1", 'reference stored "invoice 42", sent "invoice 43"'),
        ("t-1", 'reference stored "invoice 42", sent null'),
        ("t-1", 'credit_account stored "b-1", sent "a-2"'),
        ("t-2", "pending stored false, sent true")]]
    assert fail(admin, "transfer", changed[0], codec) == "exists_with_different_fields"

    assert balances(admin, codec) == start_balances(a_1=-351, a_2=290, b_1=61)
    assert_debits_equal_credits(admin, ACCOUNTS)


def test_rule_failures_are_item_statuses_and_change_nothing(admin, codec, tokens):
    items = [tx("f-1", "a-2", "b-1", 1),               # a-2 holds nothing
             tx("f-2", "a-1", "nope", 5),
             tx("f-3", "nope", "b-1", 5),
             tx("f-4", "a-1", "a-1", 5),
             tx("f-5", "a-1", "b-eur", 5),              # USD to EUR
             tx("f-6", "a-1", "b-1", 5, currency="EUR"),
             tx("f-7", "a-1", "b-1", FUNDS + 1)]
    items += [tx(f"amount-{n}", "a-1", "b-1", amount) for n, amount in enumerate(BAD_AMOUNTS)]
    items.append(tx("ok-1", "a-1", "b-1", 7))
    result = ok(admin, "create_transfers", {"transfers": items}, codec)["results"]
    expected = ["insufficient_funds", "account_not_found", "account_not_found", "same_account",
                "currency_mismatch", "currency_mismatch", "insufficient_funds"]
    expected += ["invalid_amount"] * len(BAD_AMOUNTS) + ["created"]
    assert [r["status"] for r in result] == expected
    assert all(r["timestamp"] is None for r in result[:-1])
    assert type(result[-1]["timestamp"]) is int
    assert set(transfers_by_id(admin, [i["id"] for i in items], codec)) == {"ok-1"}
    assert balances(admin, codec) == start_balances(a_1=-7, b_1=7)

    # a failed transfer is not stored: its id is evaluated afresh
    ok(admin, "transfer", tx("fund-a-2", "a-funding", "a-2", 3), codec)
    assert ok(admin, "transfer", tx("f-1", "a-2", "b-1", 1), codec)["status"] == "created"


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=repr)
def test_single_transfer_with_an_invalid_amount_is_an_invalid_amount_error(admin, codec, tokens,
                                                                           amount):
    reply = admin.request("transfer", tx("bad-amount", "a-1", "b-1", amount), codec, request_id=77)
    assert reply["ok"] is False and reply["id"] == 77
    assert reply["error"]["code"] == "invalid_amount"
    assert transfers_by_id(admin, ["bad-amount"], codec) == {}


def test_single_transfer_rule_failures_are_error_codes(admin, codec, tokens):
    cases = [(tx("e-1", "a-2", "b-1", 1), "insufficient_funds"),
             (tx("e-2", "a-1", "zz", 1), "account_not_found"),
             (tx("e-3", "b-1", "b-1", 1), "same_account"),
             (tx("e-4", "a-1", "b-eur", 1), "currency_mismatch"),
             (tx("e-5", "a-1", "b-1", 1, linked=True), "linked_event_chain_open")]
    for item, code in cases:
        assert fail(admin, "transfer", item, codec) == code, item
    assert balances(admin, codec) == start_balances()


# --- two-phase --------------------------------------------------------------------------

def test_pending_reserves_then_partial_post_moves_money(admin, codec, tokens):
    hold = ok(admin, "transfer", tx("hold-1", "a-1", "b-1", 500, pending=True, timeout=3600),
              codec)
    assert hold["status"] == "created"
    found = accounts_by_id(admin, ["a-1", "b-1"], codec)
    assert {k: found["a-1"][k] for k in ("debits_posted", "credits_posted", "debits_pending",
                                         "credits_pending", "balance", "available")} == \
        {"debits_posted": 0, "credits_posted": FUNDS, "debits_pending": 500,
         "credits_pending": 0, "balance": FUNDS, "available": FUNDS - 500}
    assert (found["b-1"]["credits_pending"], found["b-1"]["balance"],
            found["b-1"]["available"]) == (500, 0, 0)
    assert transfers_by_id(admin, ["hold-1"], codec)["hold-1"]["state"] == "pending"

    post = ok(admin, "transfer", {"id": "post-1", "post_pending_id": "hold-1", "amount": 300},
              codec)
    assert post["status"] == "created" and post["timestamp"] > hold["timestamp"]
    found = accounts_by_id(admin, ["a-1", "b-1"], codec)
    assert (found["a-1"]["debits_posted"], found["a-1"]["debits_pending"],
            found["a-1"]["balance"], found["a-1"]["available"]) == (300, 0, FUNDS - 300,
                                                                    FUNDS - 300)
    assert (found["b-1"]["credits_posted"], found["b-1"]["credits_pending"],
            found["b-1"]["balance"]) == (300, 0, 300)
    records = transfers_by_id(admin, ["hold-1", "post-1"], codec)
    assert records["hold-1"]["state"] == "posted"
    assert records["hold-1"]["amount"] == 500
    assert records["post-1"] == {
        "id": "post-1", "debit_account": "a-1", "credit_account": "b-1", "amount": 300,
        "currency": "USD", "reference": None, "pending": False, "timeout": 0,
        "post_pending_id": "hold-1", "void_pending_id": None, "state": "posted",
        "timestamp": post["timestamp"]}

    # settled: no second post or void; resending the post itself is idempotent
    assert fail(admin, "transfer", {"id": "void-1", "void_pending_id": "hold-1"}, codec) == \
        "pending_already_posted"
    assert fail(admin, "transfer", {"id": "post-2", "post_pending_id": "hold-1"}, codec) == \
        "pending_already_posted"
    assert ok(admin, "transfer", {"id": "post-1", "post_pending_id": "hold-1", "amount": 300},
              codec) == {"status": "exists", "timestamp": post["timestamp"]}
    assert ok(admin, "transfer", {"id": "post-1", "post_pending_id": "hold-1", "amount": 300,
                                  "debit_account": "a-1", "credit_account": "b-1",
                                  "currency": "USD"}, codec)["status"] == "exists"
    assert fail(admin, "transfer", {"id": "post-1", "post_pending_id": "hold-1", "amount": 200},
                codec) == "exists_with_different_fields"
    assert balances(admin, codec) == start_balances(a_1=-300, b_1=300)
    assert_debits_equal_credits(admin, ACCOUNTS)


def test_void_releases_and_bad_posts_are_refused(admin, codec, tokens):
    ok(admin, "transfer", tx("hold-2", "a-1", "b-1", 200, pending=True), codec)
    assert fail(admin, "transfer", {"id": "post-2", "post_pending_id": "hold-2", "amount": 201},
                codec) == "exceeds_pending_amount"
    assert fail(admin, "transfer", {"id": "post-3", "post_pending_id": "hold-2",
                                    "debit_account": "a-2"}, codec) == "bad_request"
    assert fail(admin, "transfer", {"id": "post-4", "post_pending_id": "no-such-hold"},
                codec) == "pending_not_found"
    assert fail(admin, "transfer", {"id": "post-5", "post_pending_id": "fund-a-1"},
                codec) == "pending_not_found"  # a one-phase transfer is not pending
    void = ok(admin, "transfer", {"id": "void-2", "void_pending_id": "hold-2"}, codec)
    assert void["status"] == "created"
    records = transfers_by_id(admin, ["hold-2", "void-2", "post-2", "post-3"], codec)
    assert set(records) == {"hold-2", "void-2"}
    assert records["hold-2"]["state"] == "voided"
    assert {k: records["void-2"][k] for k in ("debit_account", "credit_account", "amount",
                                              "currency", "void_pending_id",
                                              "post_pending_id", "state")} == \
        {"debit_account": "a-1", "credit_account": "b-1", "amount": 200, "currency": "USD",
         "void_pending_id": "hold-2", "post_pending_id": None, "state": "voided"}
    assert fail(admin, "transfer", {"id": "post-6", "post_pending_id": "hold-2"}, codec) == \
        "pending_already_voided"
    assert fail(admin, "transfer", {"id": "void-3", "void_pending_id": "hold-2"}, codec) == \
        "pending_already_voided"

    # a reservation counts against the funds: hold all of a-1, then nothing more fits
    ok(admin, "transfer", tx("hold-3", "a-1", "b-1", FUNDS, pending=True), codec)
    assert fail(admin, "transfer", tx("x-1", "a-1", "a-2", 1), codec) == "insufficient_funds"
    ok(admin, "transfer", {"id": "void-4", "void_pending_id": "hold-3"}, codec)
    assert ok(admin, "transfer", tx("x-1", "a-1", "a-2", 1), codec)["status"] == "created"
    found = accounts_by_id(admin, ["a-1", "b-1"], codec)
    assert (found["a-1"]["debits_pending"], found["b-1"]["credits_pending"]) == (0, 0)
    assert balances(admin, codec) == start_balances(a_1=-1, a_2=1)
    assert_debits_equal_credits(admin, ACCOUNTS)


def test_pending_with_a_timeout_expires_and_releases(admin):
    create_world(admin)
    ok(admin, "transfer", tx("exp-json", "a-1", "b-1", 700, pending=True, timeout=1), "json")
    ok(admin, "transfer", tx("exp-mp", "a-1", "a-2", 50, pending=True, timeout=1), "msgpack")
    ok(admin, "transfer", tx("keep", "a-1", "b-1", 5, pending=True, timeout=0), "json")
    created = time.monotonic()
    assert accounts_by_id(admin, ["a-1"])["a-1"]["debits_pending"] == 755
    time.sleep(max(0.0, 1.5 - (time.monotonic() - created)))
    for codec in ("json", "msgpack"):
        records = transfers_by_id(admin, ["exp-json", "exp-mp", "keep"], codec)
        assert {i: r["state"] for i, r in records.items()} == \
            {"exp-json": "expired", "exp-mp": "expired", "keep": "pending"}
        found = accounts_by_id(admin, ["a-1", "a-2", "b-1"], codec)
        assert (found["a-1"]["debits_pending"], found["a-1"]["available"]) == (5, FUNDS - 5)
        assert (found["b-1"]["credits_pending"], found["a-2"]["credits_pending"]) == (5, 0)
    assert fail(admin, "transfer", {"id": "late-post", "post_pending_id": "exp-json"}) == \
        "pending_expired"
    assert fail(admin, "transfer", {"id": "late-void", "void_pending_id": "exp-mp"},
                "msgpack") == "pending_expired"
    assert balances(admin) == start_balances()
    assert_debits_equal_credits(admin, ACCOUNTS)


# --- linked chains ----------------------------------------------------------------------

def test_linked_chains_are_all_or_nothing(admin, codec, tokens):
    result = ok(admin, "create_transfers", {"transfers": [
        tx("c-1", "a-1", "a-2", 100, linked=True),
        tx("c-2", "a-2", "b-1", 100000, linked=True),   # a-2 only gets 100
        tx("c-3", "a-1", "b-1", 1),                      # closes the chain
        tx("solo", "a-1", "b-1", 2),                     # independent
        tx("d-1", "a-1", "a-2", 10, linked=True),
        tx("d-2", "a-2", "b-1", 10, linked=True)]}, codec)["results"]
    assert [r["status"] for r in result] == [
        "linked_event_failed", "insufficient_funds", "linked_event_failed", "created",
        "linked_event_failed", "linked_event_chain_open"]
    assert [r["timestamp"] is None for r in result] == [True, True, True, False, True, True]
    assert set(transfers_by_id(admin, ["c-1", "c-2", "c-3", "solo", "d-1", "d-2"], codec)) == \
        {"solo"}
    assert balances(admin, codec) == start_balances(a_1=-2, b_1=2)

    chain = ok(admin, "create_transfers", {"transfers": [
        tx("c-1", "a-1", "a-2", 100, linked=True),
        tx("c-2", "a-2", "b-1", 100, linked=True),
        tx("c-3", "a-1", "b-1", 1)]}, codec)["results"]
    assert [r["status"] for r in chain] == ["created"] * 3
    assert chain[0]["timestamp"] < chain[1]["timestamp"] < chain[2]["timestamp"]
    assert balances(admin, codec) == start_balances(a_1=-103, b_1=103)
    assert_debits_equal_credits(admin, ACCOUNTS)


# --- lookups ----------------------------------------------------------------------------

def test_lookup_accounts_gives_every_field_and_omits_unknown_ids(admin, codec, tokens):
    found = ok(admin, "lookup_accounts", {"ids": ["a-1", "nope", "a-funding", "b-eur"]},
               codec)["accounts"]
    assert sorted(a["id"] for a in found) == ["a-1", "a-funding", "b-eur"]
    by_id = {a["id"]: a for a in found}
    assert all(ACCOUNT_FIELDS <= set(a) for a in found), found
    assert {k: by_id["a-1"][k] for k in ACCOUNT_FIELDS} == {
        "id": "a-1", "participant": "bank-a", "currency": "USD", "overdraft_limit": 0,
        "debits_posted": 0, "credits_posted": FUNDS, "debits_pending": 0, "credits_pending": 0,
        "balance": FUNDS, "available": FUNDS}
    assert {k: by_id["a-funding"][k] for k in ACCOUNT_FIELDS} == {
        "id": "a-funding", "participant": "bank-a", "currency": "USD", "overdraft_limit": None,
        "debits_posted": FUNDS, "credits_posted": 0, "debits_pending": 0,
        "credits_pending": 0, "balance": -FUNDS, "available": -FUNDS}
    assert (by_id["b-eur"]["participant"], by_id["b-eur"]["currency"]) == ("bank-b", "EUR")
    assert ok(admin, "lookup_accounts", {"ids": []}, codec) == {"accounts": []}
    assert ok(admin, "lookup_accounts", {"ids": ["nope"]}, codec) == {"accounts": []}


def test_lookup_transfers_gives_every_field_with_nulls_and_omits_unknown_ids(admin, codec,
                                                                            tokens):
    made = ok(admin, "transfer", tx("lt-1", "a-1", "b-1", 123, reference="invoice 7"), codec)
    found = ok(admin, "lookup_transfers", {"ids": ["lt-1", "nope", "fund-a-1"]},
               codec)["transfers"]
    by_id = {t["id"]: t for t in found}
    assert sorted(by_id) == ["fund-a-1", "lt-1"]
    assert by_id["lt-1"] == {
        "id": "lt-1", "debit_account": "a-1", "credit_account": "b-1", "amount": 123,
        "currency": "USD", "reference": "invoice 7", "pending": False, "timeout": 0,
        "post_pending_id": None, "void_pending_id": None, "state": "posted",
        "timestamp": made["timestamp"]}
    assert set(by_id["fund-a-1"]) >= TRANSFER_FIELDS
    assert by_id["fund-a-1"]["reference"] is None
    assert by_id["fund-a-1"]["amount"] == FUNDS
    assert ok(admin, "lookup_transfers", {"ids": []}, codec) == {"transfers": []}


def test_get_account_transfers_pages_oldest_first(admin, codec, tokens):
    ok(admin, "transfer", tx("g-1", "a-1", "a-2", 10), codec)
    ok(admin, "transfer", tx("g-2", "a-1", "a-2", 20, pending=True), codec)
    ok(admin, "transfer", tx("other", "a-1", "b-1", 1), codec)  # does not touch a-2
    ok(admin, "transfer", {"id": "g-3", "post_pending_id": "g-2", "amount": 15}, codec)
    ok(admin, "transfer", tx("g-4", "a-2", "b-1", 5), codec)
    ok(admin, "transfer", tx("g-5", "a-1", "a-2", 7, pending=True), codec)
    ok(admin, "transfer", {"id": "g-6", "void_pending_id": "g-5"}, codec)
    expected = ["g-1", "g-2", "g-3", "g-4", "g-5", "g-6"]

    everything = ok(admin, "get_account_transfers", {"account": "a-2"}, codec)
    assert [t["id"] for t in everything["transfers"]] == expected
    assert everything["next"] is None
    stamps = [t["timestamp"] for t in everything["transfers"]]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert all(TRANSFER_FIELDS <= set(t) for t in everything["transfers"])

    page = ok(admin, "get_account_transfers", {"account": "a-2", "limit": 4}, codec)
    assert [t["id"] for t in page["transfers"]] == expected[:4]
    assert page["next"] == stamps[3] and page["next_cursor"] == str(stamps[3])
    page = ok(admin, "get_account_transfers",
              {"account": "a-2", "limit": 4, "after": page["next"]}, codec)
    assert [t["id"] for t in page["transfers"]] == expected[4:]
    assert page["next"] is None
    exact = ok(admin, "get_account_transfers", {"account": "a-2", "limit": 6}, codec)
    assert len(exact["transfers"]) == 6 and exact["next"] is None
    middle = ok(admin, "get_account_transfers",
                {"account": "a-2", "after": stamps[1], "limit": 1}, codec)
    assert [t["id"] for t in middle["transfers"]] == ["g-3"] and middle["next"] == stamps[2]
    assert ok(admin, "get_account_transfers", {"account": "a-2", "after": stamps[-1]},
              codec) == {"transfers": [], "next": None, "next_cursor": None}
    assert fail(admin, "get_account_transfers", {"account": "no-such-account"}, codec) == \
        "account_not_found"


# --- settlement windows and caps --------------------------------------------------------

def test_close_window_reports_positions_and_instructions(admin, codec, tokens):
    ok(admin, "transfer", tx("w-1", "a-1", "b-1", 1000), codec)
    ok(admin, "transfer", tx("w-2", "a-1", "a-2", 500), codec)     # on-us: no position
    ok(admin, "transfer", tx("w-3", "b-1", "a-2", 200), codec)
    ok(admin, "transfer", tx("w-4", "a-1", "b-1", 300, pending=True), codec)  # reserves only
    ok(admin, "transfer", {"id": "w-5", "post_pending_id": "w-4", "amount": 100}, codec)
    positions = [
        {"participant": "bank-a", "currency": "USD", "debits": 1100, "credits": 200, "net": -900},
        {"participant": "bank-b", "currency": "USD", "debits": 200, "credits": 1100, "net": 900}]
    instructions = [{"participant": "bank-a", "currency": "USD", "pay": 900},
                    {"participant": "bank-b", "currency": "USD", "receive": 900}]

    so_far = ok(admin, "get_window", {"window_id": 1}, codec)
    assert (so_far["state"], so_far["closed_at"], so_far["transfers"]) == ("open", None, 3)
    assert sorted(so_far["positions"], key=str) == positions

    report = ok(admin, "close_window", {}, codec)
    assert (report["window_id"], report["state"], report["transfers"]) == (1, "closed", 3)
    assert report["opened_at"] < report["closed_at"]
    assert sorted(report["positions"], key=lambda p: p["participant"]) == positions
    assert sorted(report["instructions"], key=lambda p: p["participant"]) == instructions
    assert sum(p["net"] for p in report["positions"]) == 0
    assert ok(admin, "get_window", {"window_id": 1}, codec) == report

    listing = ok(admin, "list_windows", {}, codec)["windows"]
    assert [(w["window_id"], w["state"]) for w in listing] == [(1, "closed"), (2, "open")]
    assert listing[0] == {k: report[k] for k in ("window_id", "state", "opened_at", "closed_at")}
    assert listing[1]["closed_at"] is None and listing[1]["opened_at"] >= report["closed_at"]
    fresh = ok(admin, "get_window", {"window_id": 2}, codec)
    assert (fresh["state"], fresh["positions"], fresh["instructions"], fresh["transfers"]) == \
        ("open", [], [], 0)
    assert fail(admin, "get_window", {"window_id": 3}, codec) == "window_not_found"

    # a participant that nets to zero has a position but no instruction
    ok(admin, "transfer", tx("w-6", "a-1", "b-1", 50), codec)
    ok(admin, "transfer", tx("w-7", "b-1", "a-1", 50), codec)
    balanced = ok(admin, "close_window", {}, codec)
    assert balanced["window_id"] == 2 and balanced["transfers"] == 2
    assert sorted((p["participant"], p["net"]) for p in balanced["positions"]) == \
        [("bank-a", 0), ("bank-b", 0)]
    assert balanced["instructions"] == []
    empty = ok(admin, "close_window", {}, codec)
    assert (empty["window_id"], empty["positions"], empty["instructions"], empty["transfers"]) \
        == (3, [], [], 0)
    assert [w["window_id"] for w in ok(admin, "list_windows", {}, codec)["windows"]] == \
        [1, 2, 3, 4]


def test_net_debit_cap_limits_interbank_debits_only(admin, codec, tokens):
    ok(admin, "set_participant", {"id": "bank-a", "net_debit_cap": {"USD": 1000}}, codec)
    assert ok(admin, "transfer", tx("n-1", "a-1", "b-1", 600), codec)["status"] == "created"
    assert fail(admin, "transfer", tx("n-2", "a-1", "b-1", 401), codec) == \
        "net_debit_cap_exceeded"
    result = ok(admin, "create_transfers", {"transfers": [tx("n-2", "a-1", "b-1", 401)]}, codec)
    assert result["results"] == [{"status": "net_debit_cap_exceeded", "timestamp": None,
                                  "message": "bank-a's net debit position in USD would be 1001 "
                                             "(with amount 401), above its net debit cap of 1000"}]
    assert ok(admin, "transfer", tx("n-3", "a-1", "a-2", 5000), codec)["status"] == "created"
    # an outgoing pending reservation counts too, until it is released
    assert ok(admin, "transfer", tx("n-h", "a-1", "b-1", 400, pending=True),
              codec)["status"] == "created"
    assert fail(admin, "transfer", tx("n-4", "a-1", "b-1", 1), codec) == "net_debit_cap_exceeded"
    assert fail(admin, "transfer", tx("n-6", "a-1", "b-1", 1, pending=True), codec) == \
        "net_debit_cap_exceeded"
    ok(admin, "transfer", {"id": "n-v", "void_pending_id": "n-h"}, codec)
    assert ok(admin, "transfer", tx("n-4", "a-1", "b-1", 400), codec)["status"] == "created"
    assert fail(admin, "transfer", tx("n-5", "a-1", "b-1", 1), codec) == "net_debit_cap_exceeded"
    # credits received lower the net debit position
    ok(admin, "transfer", tx("n-7", "b-1", "a-2", 300), codec)
    assert ok(admin, "transfer", tx("n-8", "a-1", "b-1", 300), codec)["status"] == "created"
    assert fail(admin, "transfer", tx("n-9", "a-1", "b-1", 1), codec) == "net_debit_cap_exceeded"
    # a new window starts from zero
    ok(admin, "close_window", {}, codec)
    assert ok(admin, "transfer", tx("n-10", "a-1", "b-1", 1000), codec)["status"] == "created"
    assert fail(admin, "transfer", tx("n-11", "a-1", "b-1", 1), codec) == "net_debit_cap_exceeded"
    # removing the cap makes the currency unlimited
    ok(admin, "set_participant", {"id": "bank-a", "net_debit_cap": {"USD": None}}, codec)
    assert ok(admin, "transfer", tx("n-11", "a-1", "b-1", 50000), codec)["status"] == "created"
    assert balances(admin, codec) == start_balances(
        a_1=-(600 + 5000 + 400 + 300 + 1000 + 50000), a_2=5300,
        b_1=600 + 400 - 300 + 300 + 1000 + 50000)
    assert_debits_equal_credits(admin, ACCOUNTS)


def test_net_debit_cap_given_at_creation(admin, codec, tokens):
    ok(admin, "create_participants", {"participants": [
        {"id": "bank-c", "name": "Bank C", "net_debit_cap": {"USD": 0}}]}, codec)
    ok(admin, "create_accounts", {"accounts": [
        {"id": "c-1", "participant": "bank-c", "currency": "USD", "overdraft_limit": None},
        {"id": "c-2", "participant": "bank-c", "currency": "USD"}]}, codec)
    assert fail(admin, "transfer", tx("cc-1", "c-1", "b-1", 1), codec) == \
        "net_debit_cap_exceeded"
    assert ok(admin, "transfer", tx("cc-2", "c-1", "c-2", 99), codec)["status"] == "created"
    assert accounts_by_id(admin, ["c-1", "c-2", "b-1"], codec)["b-1"]["balance"] == 0


# --- stats ------------------------------------------------------------------------------

def test_stats_counts_the_ledger(admin, codec, tokens):
    stats = ok(admin, "stats", {}, codec)
    counts = {"participants": 2, "accounts": 5, "transfers": 1, "pending": 0, "windows": 1}
    assert {k: stats["ledger"][k] for k in counts} == counts
    ok(admin, "transfer", tx("st-1", "a-1", "b-1", 1, pending=True), codec)
    stats = ok(admin, "stats", None, codec)
    assert (stats["ledger"]["transfers"], stats["ledger"]["pending"]) == (2, 1)


def test_stats_has_the_switch_cpu_its_children_included(admin, codec):
    first = ok(admin, "stats", None, codec)["process"]
    assert first["own_cpu_s"] > 0 and first["children_cpu_s"] >= 0
    assert first["cpu_s"] == pytest.approx(first["own_cpu_s"] + first["children_cpu_s"])
    ok(admin, "lookup_accounts", {"ids": ["a-1"] * 8190}, codec)  # some work in between
    later = ok(admin, "stats", None, codec)["process"]
    assert later["own_cpu_s"] >= first["own_cpu_s"]


def test_replies_may_be_larger_than_max_frame_bytes(admin):
    create_world(admin)
    ids = [f"big-{n}" for n in range(8190)]
    items = [tx(i, "a-1", "b-1", 1, reference="r" * 40) for i in ids]
    result = ok(admin, "create_transfers", {"transfers": items}, "msgpack")
    assert statuses(result) == ["created"] * 8190
    for codec in ("json", "msgpack"):
        admin.send({"id": "all", "op": "lookup_transfers", "args": {"ids": ids}}, codec)
        body = admin.recv_body()
        assert len(body) > 1 << 20
        reply, reply_codec = decode_body(body)
        assert reply_codec == codec
        assert [t["id"] for t in reply["result"]["transfers"]] == ids
    assert accounts_by_id(admin, ["b-1"])["b-1"]["balance"] == 8190


def test_a_fresh_switch_lists_its_open_window(admin):
    windows = ok(admin, "list_windows", {})["windows"]
    assert [(w["window_id"], w["state"], w["closed_at"]) for w in windows] == \
        [(1, "open", None)]
    assert ok(admin, "get_window", {"window_id": 1})["state"] == "open"
