"""Sessions and rights over real TCP: hello, who may debit what, who sees what, admin-only ops."""
from contextlib import contextmanager

import pytest

from payswitch.protocol import OPS, decode_body
from support.wire import WireClient, frame_header
from support.world import FUNDS, create_world

ACCOUNTS = ["a-funding", "a-1", "a-2", "b-1", "b-eur"]
ADMIN_ONLY = {
    "create_participants": {"participants": [{"id": "bank-x", "name": "Bank X"}]},
    "set_participant": {"id": "bank-b", "suspended": True},
    "close_window": {},
    "stats": {},
    "rotate_token": {"participant": "bank-b"},
}
# One well-formed request for every op that needs a session.
VALID_ARGS = {
    **ADMIN_ONLY,
    "create_accounts": {"accounts": [{"id": "z-1", "participant": "bank-a", "currency": "USD"}]},
    "lookup_accounts": {"ids": ["a-1"]},
    "create_transfers": {"transfers": [
        {"id": "z-t1", "debit_account": "a-1", "credit_account": "b-1", "amount": 5}]},
    "transfer": {"id": "z-t2", "debit_account": "a-1", "credit_account": "b-1", "amount": 5},
    "lookup_transfers": {"ids": ["fund-a-1"]},
    "get_account_transfers": {"account": "a-1"},
    "get_window": {"window_id": 1},
    "list_windows": {},
    "upload_batch_part": {"batch_id": "z-b", "seq": 0, "data": "YQ=="},
    "submit_batch": {"batch_id": "z-b", "format": "csv", "mode": "atomic",
                     "control_count": 0, "control_sum": 0},
    "get_batch": {"batch_id": "z-b"},
    "get_batch_results": {"batch_id": "z-b"},
}


@pytest.fixture(params=["json", "msgpack"])
def codec(request):
    return request.param


@pytest.fixture
def tokens(admin, codec):
    return create_world(admin, codec)


def ok(client, op, args=None, codec="json") -> dict:
    reply = client.request(op, args, codec)
    assert reply["ok"] is True, reply
    return reply["result"]


def fail(client, op, args=None, codec="json") -> str:
    reply = client.request(op, args, codec)
    assert reply["ok"] is False, reply
    return reply["error"]["code"]


def tx(tid, debit, credit, amount, **extra) -> dict:
    return {"id": tid, "debit_account": debit, "credit_account": credit, "amount": amount,
            **extra}


def balances(client, codec="json") -> dict[str, int]:
    found = ok(client, "lookup_accounts", {"ids": ACCOUNTS}, codec)["accounts"]
    return {a["id"]: a["balance"] for a in found}


def visible_ids(client, op, ids, codec) -> set[str]:
    key = "accounts" if op == "lookup_accounts" else "transfers"
    return {r["id"] for r in ok(client, op, {"ids": ids}, codec)[key]}


@contextmanager
def session(switch, participant, token, codec="json"):
    with WireClient(switch.host, switch.port) as client:
        assert ok(client, "hello", {"participant": participant, "token": token},
                  codec)["participant"] == participant
        yield client


def test_every_op_but_ping_and_hello_needs_a_session(switch, admin, codec, tokens):
    ledger_before = ok(admin, "stats")["ledger"]
    balances_before = balances(admin)
    with WireClient(switch.host, switch.port) as client:
        # every op the server knows (its table), well-formed where we know its arguments
        for op in sorted(set(OPS) - {"ping", "hello"}):
            reply = client.request(op, VALID_ARGS.get(op, {}), codec, request_id=f"r-{op}")
            assert (reply["ok"], reply["error"]["code"]) == (False, "unauthenticated"), reply
        # the session check comes before the argument check, and after the op name check
        assert fail(client, "transfer", {"bogus": True}, codec) == "unauthenticated"
        assert fail(client, "lookup_accounts", None, codec) == "unauthenticated"
        assert fail(client, "no_such_op", {}, codec) == "unknown_op"
        # decode and envelope checks come before the session check too
        client.send_raw(frame_header(3) + b'{"i')
        reply, reply_codec = decode_body(client.recv_body())
        assert (reply_codec, reply["id"], reply["error"]["code"]) == ("json", None, "bad_frame")
        client.send({"id": True, "op": "stats"}, codec)
        reply = client.recv()
        assert (reply["id"], reply["error"]["code"]) == (None, "bad_request")
        assert ok(client, "ping", {}, codec) == {}
        assert fail(client, "stats", {}, codec) == "unauthenticated"
    assert ok(admin, "stats")["ledger"] == ledger_before
    assert balances(admin) == balances_before
    assert ok(admin, "lookup_transfers", {"ids": ["z-t1", "z-t2"]})["transfers"] == []
    assert ok(admin, "lookup_accounts", {"ids": ["z-1"]})["accounts"] == []
    assert [w["state"] for w in ok(admin, "list_windows")["windows"]] == ["open"]


def test_failed_hello_is_unauthenticated_and_keeps_the_earlier_session(switch, codec, tokens):
    with WireClient(switch.host, switch.port) as client:
        # without a session, a failed hello leaves the connection without one
        assert fail(client, "hello", {"participant": "bank-a", "token": "wrong"}, codec) == \
            "unauthenticated"
        assert fail(client, "lookup_accounts", {"ids": ["a-1"]}, codec) == "unauthenticated"

        ok(client, "hello", {"participant": "bank-a", "token": tokens["bank-a"]}, codec)
        wrong = [{"participant": "bank-a", "token": tokens["bank-b"]},
                 {"participant": "bank-a", "token": tokens["bank-a"] + "x"},
                 {"participant": "nobody", "token": tokens["bank-a"]},
                 {"participant": "admin", "token": tokens["bank-a"]},
                 {"participant": "admin", "token": switch.admin_token + "x"}]
        for args in wrong:
            assert fail(client, "hello", args, codec) == "unauthenticated", args
            # still bank-a: sees a-1 but not b-1, and is no operator
            assert visible_ids(client, "lookup_accounts", ["a-1", "b-1"], codec) == {"a-1"}
            assert fail(client, "stats", {}, codec) == "forbidden"
        # a successful hello replaces the session
        ok(client, "hello", {"participant": "bank-b", "token": tokens["bank-b"]}, codec)
        assert visible_ids(client, "lookup_accounts", ["a-1", "b-1"], codec) == {"b-1"}


def test_a_participant_debits_only_its_own_accounts_but_credits_anyone(switch, admin, codec,
                                                                       tokens):
    with session(switch, "bank-a", tokens["bank-a"], codec) as bank_a:
        assert ok(bank_a, "transfer", tx("pay-b", "a-1", "b-1", 1000), codec)["status"] == \
            "created"
    with session(switch, "bank-b", tokens["bank-b"], codec) as bank_b:
        result = ok(bank_b, "create_transfers", {"transfers": [
            tx("steal-1", "a-1", "b-1", 10),
            tx("steal-2", "a-funding", "a-2", 10),
            tx("back-1", "b-1", "a-2", 300)]}, codec)["results"]
        assert [r["status"] for r in result] == ["forbidden", "forbidden", "created"]
        assert result[0]["timestamp"] is None and type(result[2]["timestamp"]) is int
        assert fail(bank_b, "transfer", tx("steal-3", "a-1", "b-1", 10), codec) == "forbidden"
        # the same for pending transfers
        assert fail(bank_b, "transfer", tx("steal-4", "a-1", "b-1", 10, pending=True),
                    codec) == "forbidden"
    assert balances(admin) == {"a-funding": -FUNDS, "a-1": FUNDS - 1000, "a-2": 300,
                               "b-1": 700, "b-eur": 0}
    assert ok(admin, "lookup_transfers", {"ids": ["steal-1", "steal-2", "steal-3",
                                                  "steal-4"]})["transfers"] == []


def test_lookups_silently_omit_what_the_caller_may_not_see(switch, admin, codec, tokens):
    ok(admin, "transfer", tx("a-to-b", "a-1", "b-1", 100))
    ok(admin, "transfer", tx("a-to-a", "a-1", "a-2", 100))
    with session(switch, "bank-b", tokens["bank-b"], codec) as bank_b:
        assert visible_ids(bank_b, "lookup_accounts", ACCOUNTS + ["nope"], codec) == \
            {"b-1", "b-eur"}
        assert visible_ids(bank_b, "lookup_transfers", ["fund-a-1", "a-to-b", "a-to-a"],
                           codec) == {"a-to-b"}
        for account in ("a-1", "a-funding", "nope"):
            assert fail(bank_b, "get_account_transfers", {"account": account}, codec) == \
                "account_not_found"
        own = ok(bank_b, "get_account_transfers", {"account": "b-1"}, codec)
        assert [t["id"] for t in own["transfers"]] == ["a-to-b"] and own["next"] is None
    with session(switch, "bank-a", tokens["bank-a"], codec) as bank_a:
        assert visible_ids(bank_a, "lookup_accounts", ACCOUNTS, codec) == \
            {"a-funding", "a-1", "a-2"}
        assert visible_ids(bank_a, "lookup_transfers", ["fund-a-1", "a-to-b", "a-to-a"],
                           codec) == {"fund-a-1", "a-to-b", "a-to-a"}
        assert fail(bank_a, "get_account_transfers", {"account": "b-1"}, codec) == \
            "account_not_found"


def test_admin_only_ops_are_forbidden_to_participants(switch, admin, codec, tokens):
    ledger_before = ok(admin, "stats")["ledger"]
    with session(switch, "bank-a", tokens["bank-a"], codec) as bank_a:
        for op, args in ADMIN_ONLY.items():
            reply = bank_a.request(op, args, codec, request_id=op)
            assert (reply["ok"], reply["error"]["code"]) == (False, "forbidden"), reply
        # accounts: only for itself
        result = ok(bank_a, "create_accounts", {"accounts": [
            {"id": "b-9", "participant": "bank-b", "currency": "USD"},
            {"id": "a-9", "participant": "bank-a", "currency": "USD"}]}, codec)
        assert [r["status"] for r in result["results"]] == ["forbidden", "created"]
    ledger_after = ok(admin, "stats")["ledger"]
    assert ledger_after == {**ledger_before, "accounts": ledger_before["accounts"] + 1}
    assert [w["state"] for w in ok(admin, "list_windows")["windows"]] == ["open"]
    assert ok(admin, "lookup_accounts", {"ids": ["b-9"]})["accounts"] == []
    # bank-b was not suspended and bank-x not created
    assert ok(admin, "transfer", tx("still-ok", "a-1", "b-1", 1))["status"] == "created"
    with WireClient(switch.host, switch.port) as client:
        assert fail(client, "hello", {"participant": "bank-x", "token": "t"}) == "unauthenticated"


def test_either_side_of_a_pending_transfer_may_post_or_void_it(switch, admin, codec, tokens):
    created = ok(admin, "create_participants",
                 {"participants": [{"id": "bank-c", "name": "Bank C"}]})["results"][0]
    with session(switch, "bank-a", tokens["bank-a"], codec) as bank_a:
        ok(bank_a, "transfer", tx("h-1", "a-1", "b-1", 500, pending=True), codec)
        ok(bank_a, "transfer", tx("h-2", "a-1", "b-1", 200, pending=True), codec)
        ok(bank_a, "transfer", tx("h-3", "a-1", "b-1", 50, pending=True), codec)
    with session(switch, "bank-c", created["token"], codec) as bank_c:
        # a third participant sees neither account: it cannot settle the transfer
        code = fail(bank_c, "transfer", {"id": "c-post", "post_pending_id": "h-3"}, codec)
        assert code in ("pending_not_found", "forbidden")
    with session(switch, "bank-b", tokens["bank-b"], codec) as bank_b:
        post = ok(bank_b, "transfer", {"id": "p-1", "post_pending_id": "h-1", "amount": 400},
                  codec)
        assert post["status"] == "created"
        assert ok(bank_b, "transfer", {"id": "v-2", "void_pending_id": "h-2"},
                  codec)["status"] == "created"
    with session(switch, "bank-a", tokens["bank-a"], codec) as bank_a:
        assert ok(bank_a, "transfer", {"id": "v-3", "void_pending_id": "h-3"},
                  codec)["status"] == "created"
    states = {t["id"]: t["state"] for t in ok(admin, "lookup_transfers", {
        "ids": ["h-1", "h-2", "h-3", "p-1", "v-2", "v-3", "c-post"]})["transfers"]}
    assert states == {"h-1": "posted", "h-2": "voided", "h-3": "voided", "p-1": "posted",
                      "v-2": "voided", "v-3": "voided"}
    assert balances(admin) == {"a-funding": -FUNDS, "a-1": FUNDS - 400, "a-2": 0, "b-1": 400,
                               "b-eur": 0}


def test_window_reports_show_a_participant_only_its_own_positions(switch, admin, codec, tokens):
    ok(admin, "transfer", tx("w-1", "a-1", "b-1", 700))
    ok(admin, "transfer", tx("w-2", "b-1", "a-2", 200))
    with session(switch, "bank-a", tokens["bank-a"], codec) as bank_a:
        report = ok(bank_a, "get_window", {"window_id": 1}, codec)
        assert report["positions"] == [{"participant": "bank-a", "currency": "USD",
                                        "debits": 700, "credits": 200, "net": -500}]
        assert report["instructions"] == [{"participant": "bank-a", "currency": "USD",
                                           "pay": 500}]
    closed = ok(admin, "close_window", {})
    assert len(closed["positions"]) == 2
    with session(switch, "bank-b", tokens["bank-b"], codec) as bank_b:
        report = ok(bank_b, "get_window", {"window_id": 1}, codec)
        assert (report["state"], report["closed_at"]) == ("closed", closed["closed_at"])
        assert report["positions"] == [{"participant": "bank-b", "currency": "USD",
                                        "debits": 200, "credits": 700, "net": 500}]
        assert report["instructions"] == [{"participant": "bank-b", "currency": "USD",
                                           "receive": 500}]
        windows = ok(bank_b, "list_windows", {}, codec)["windows"]
        assert [(w["window_id"], w["state"]) for w in windows] == [(1, "closed"), (2, "open")]


def test_a_copy_of_a_foreign_transfer_is_forbidden_not_exists(switch, admin, codec, tokens):
    with session(switch, "bank-b", tokens["bank-b"], codec) as bank_b:
        assert visible_ids(bank_b, "lookup_transfers", ["fund-a-1"], codec) == set()
        copy = tx("fund-a-1", "a-funding", "a-1", FUNDS)  # create_world's funding transfer
        reply = bank_b.request("transfer", copy, codec)
        assert reply["ok"] is False and reply["error"]["code"] == "forbidden", reply
        result = ok(bank_b, "create_transfers", {"transfers": [copy]}, codec)
        # The message names the account, never the transfer behind the id.
        assert result["results"] == [{"status": "forbidden", "timestamp": None, "message":
                                      "debit account a-funding is not one of bank-b's accounts: "
                                      "a participant may debit only its own accounts"}]


def padded_ping(request_id: str, body_bytes: int) -> bytes:
    """A valid JSON ping frame whose body is exactly `body_bytes` long (trailing spaces)."""
    body = f'{{"id":"{request_id}","op":"ping"}}'.encode()
    return frame_header(body_bytes) + body + b" " * (body_bytes - len(body))


def test_before_hello_large_frames_are_refused_unread_and_after_it_accepted(switch, codec):
    limit = 16 << 10  # max_unauthenticated_frame_bytes, the default
    with WireClient(switch.host, switch.port) as client:
        client.send_raw(padded_ping("small", limit))
        assert client.recv() == {"id": "small", "ok": True, "result": {}}
        client.send_raw(padded_ping("large", limit + 1))
        reply = client.recv()
        assert (reply["id"], reply["error"]["code"]) == (None, "unauthenticated"), reply
        assert str(limit) in reply["error"]["message"]
        assert ok(client, "ping", {}, codec) == {}  # the connection stays usable
        # a hello pipelined with a large frame: the frame is judged after the hello is handled
        hello = {"id": "h", "op": "hello",
                 "args": {"participant": "admin", "token": switch.admin_token}}
        client.send(hello, codec)
        client.send_raw(padded_ping("after-hello", 256 << 10))
        assert client.recv()["ok"] is True
        assert client.recv() == {"id": "after-hello", "ok": True, "result": {}}
