"""Malformed input over real TCP: every kind of bad body, envelope and argument gets its exact
code and id, the connection survives while framing is intact, and nothing changes."""
import random

import msgpack
import pytest

from payswitch.protocol import codes, decode_body, encode_body, encode_frame
from support.wire import WireClient, frame_header
from support.world import (FUNDS, assert_debits_equal_credits, create_world,
                           switch_with_world)

MAX_FRAME_BYTES = 1 << 20
ACCOUNTS = ["a-funding", "a-1", "a-2", "b-1", "b-eur"]
WORLD_BALANCES = {"a-funding": -FUNDS, "a-1": FUNDS, "a-2": 0, "b-1": 0, "b-eur": 0}
ALLOWED_FOR_GARBAGE = {codes.BAD_FRAME, codes.BAD_REQUEST, codes.UNKNOWN_OP}


def mp(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def tx(tid="t-bad", debit="a-1", credit="b-1", amount=5, **extra) -> dict:
    return {"id": tid, "debit_account": debit, "credit_account": credit, "amount": amount,
            **extra}


PING_JSON = b'{"id":1,"op":"ping","args":{}}'
DEEP = 100_000

# Bodies that do not decode to one map: bad_frame, id null, in the codec of their first byte.
BAD_FRAMES = {
    "json-truncated": b'{"id":1,"op":"ping"',
    "json-unquoted-value": b'{"id":1,"op":ping}',
    "json-unquoted-key": b'{id:1,"op":"ping"}',
    "json-trailing-comma": b'{"id":1,"op":"ping",}',
    "json-single-quotes": b"{'id':1,'op':'ping'}",
    "json-not-utf8-ff": b'{"id":1,"op":"ping","x":"\xff"}',
    "json-latin1": b'{"id":1,"op":"ping","x":"caf\xe9"}',
    "json-overlong-utf8": b'{"id":1,"op":"ping","x":"\xc0\xaf"}',
    "json-utf8-encoded-surrogate": b'{"id":1,"op":"ping","x":"\xed\xa0\x80"}',
    "json-utf16": '{"id":1,"op":"ping"}'.encode("utf-16-le"),
    "json-nan": b'{"id":1,"op":"ping","x":NaN}',
    "json-infinity": b'{"id":1,"op":"ping","x":Infinity}',
    "json-minus-infinity": b'{"id":-Infinity,"op":"ping"}',
    "json-1e400": b'{"id":1,"op":"ping","x":1e400}',
    "json-duplicate-key": b'{"id":1,"id":2,"op":"ping"}',
    "json-duplicate-nested-key": b'{"id":1,"op":"ping","args":{},"x":{"a":1,"a":1}}',
    "json-duplicate-key-in-args": b'{"id":1,"op":"lookup_accounts","args":{"ids":[],"ids":[]}}',
    "json-lone-high-surrogate": b'{"id":1,"op":"ping","x":"\\ud800"}',
    "json-lone-low-surrogate": b'{"id":1,"op":"ping","x":"\\uDC00"}',
    "json-reversed-surrogates": b'{"id":1,"op":"ping","x":"\\udc00\\ud800"}',
    "json-lone-surrogate-in-key": b'{"id":1,"op":"ping","\\ud83d":1}',
    "json-lone-surrogate-in-id": b'{"id":"\\ud800","op":"ping"}',
    "json-trailing-garbage": PING_JSON + b"x",
    "json-trailing-object": PING_JSON + b"{}",
    "json-trailing-nul": PING_JSON + b"\x00",
    "json-trailing-form-feed": PING_JSON + b"\x0c",
    "json-raw-control-char": b'{"id":1,"op":"ping","x":"a\x01b"}',
    "json-raw-newline-in-string": b'{"id":1,"op":"ping","x":"a\nb"}',
    "json-invalid-escape": b'{"id":1,"op":"ping","x":"\\x41"}',
    "json-truncated-escape": b'{"id":1,"op":"ping","x":"\\u12"}',
    "json-huge-integer": b'{"id":1,"op":"ping","x":1' + b"0" * 5000 + b"}",
    "json-deeply-nested-objects": b'{"id":1,"op":"ping","x":' + b'{"a":' * DEEP + b"1"
                                  + b"}" * DEEP + b"}",
    "json-deeply-nested-arrays": b'{"id":1,"op":"ping","x":' + b"[" * DEEP + b"]" * DEEP + b"}",
    "json-array-body": b'[{"id":1,"op":"ping"}]',
    "json-string-body": b'"ping"',
    "json-number-body": b"12",
    "json-leading-space-then-array": b" " + b'[{"id":1,"op":"ping"}]',
    "json-utf8-bom-twice": b"\xef\xbb\xbf" * 2 + PING_JSON,
    "json-utf8-bom-only": b"\xef\xbb\xbf",
    "json-leading-form-feed": b"\x0c" + PING_JSON,  # not JSON whitespace: a MessagePack fixint
    "msgpack-array": mp([1, "ping"]),
    "msgpack-string": mp("ping"),
    "msgpack-int": mp(5),
    "msgpack-nil": mp(None),
    "msgpack-bin-body": mp(PING_JSON),
    "msgpack-bin-keys": mp({b"id": 1, b"op": b"ping"}),
    "msgpack-bin-key-in-args": mp({"id": 1, "op": "ping", "args": {b"x": 1}}),
    "msgpack-int-key": mp({"id": 1, "op": "ping", 5: 1}),
    "msgpack-truncated": mp({"id": 1, "op": "ping", "args": {}})[:-3],
    "msgpack-truncated-header": b"\x83\xa2id",
    "msgpack-trailing-bytes": mp({"id": 1, "op": "ping"}) + b"\xc0",
    "msgpack-two-maps": mp({"id": 1, "op": "ping"}) * 2,
    "msgpack-duplicate-key": b"\x83\xa2id\x01\xa2op\xa4ping\xa2id\x02",
    "msgpack-invalid-utf8": b"\x82\xa2id\x01\xa2op\xa2\xff\xfe",
    "msgpack-ext": mp({"id": 1, "op": "ping", "x": msgpack.ExtType(1, b"abc")}),
    "msgpack-timestamp-ext": mp({"id": 1, "op": "ping", "x": msgpack.Timestamp(1, 0)}),
    "msgpack-reserved-byte": b"\xc1",
    "msgpack-length-beyond-body": b"\x81\xa2id\xdb\xff\xff\xff\xff",
    "msgpack-deeply-nested": b"\x82\xa2id\x01\xa1x" + b"\x91" * DEEP + b"\xc0",
}

# Envelopes whose id is missing or not an allowed id: bad_request, id null.
BAD_IDS = {
    "missing": {"op": "ping"},
    "null": {"id": None, "op": "ping"},
    "true": {"id": True, "op": "ping"},
    "false": {"id": False, "op": "ping"},
    "float": {"id": 1.5, "op": "ping"},
    "integral-float": {"id": 1.0, "op": "ping"},
    "too-large": {"id": 2**64, "op": "ping"},
    "too-small": {"id": -(2**63) - 1, "op": "ping"},
    "string-257": {"id": "x" * 257, "op": "ping"},
    "list": {"id": [1], "op": "ping"},
    "map": {"id": {"n": 1}, "op": "ping"},
    "bad-id-and-unknown-op": {"id": 0.5, "op": "no_such_op"},
}
JSON_ONLY_IDS = {"too-large", "too-small"}  # MessagePack cannot carry these integers
GOOD_IDS = [0, 2**64 - 1, -(2**63), "", "x" * 256, "é" * 256, "😀" * 256, "ping"]

# Well-framed requests whose arguments are malformed: bad_request with the request's id.
BAD_ARGS = {
    "ping-unknown-key": ("ping", {"x": 1}),
    "stats-unknown-key": ("stats", {"verbose": True}),
    "list-windows-unknown-key": ("list_windows", {"x": 1}),
    "close-window-unknown-key": ("close_window", {"now": 1}),
    "hello-missing-token": ("hello", {"participant": "admin"}),
    "hello-empty-token": ("hello", {"participant": "admin", "token": ""}),
    "hello-malformed-participant": ("hello", {"participant": "bad id!", "token": "t"}),
    "hello-token-not-string": ("hello", {"participant": "admin", "token": 5}),
    "lookup-missing-ids": ("lookup_accounts", {}),
    "lookup-ids-string": ("lookup_accounts", {"ids": "a-1"}),
    "lookup-ids-int": ("lookup_accounts", {"ids": [1]}),
    "lookup-ids-malformed": ("lookup_accounts", {"ids": ["bad id!"]}),
    "lookup-ids-too-long-id": ("lookup_transfers", {"ids": ["x" * 65]}),
    "lookup-ids-null": ("lookup_transfers", {"ids": [None]}),
    "lookup-too-many-ids": ("lookup_accounts", {"ids": ["a-1"] * 8191}),
    "transfer-misspelt-field": ("transfer", {**tx(), "ammount": 5}),
    "transfer-id-too-long": ("transfer", tx(tid="x" * 65)),
    "transfer-id-bad-chars": ("transfer", tx(tid="t/1")),
    "transfer-id-empty": ("transfer", tx(tid="")),
    "transfer-id-int": ("transfer", tx(tid=5)),
    "transfer-missing-id": ("transfer", {"debit_account": "a-1", "credit_account": "b-1",
                                         "amount": 5}),
    "transfer-missing-credit": ("transfer", {"id": "t", "debit_account": "a-1", "amount": 5}),
    "transfer-missing-amount": ("transfer", {"id": "t", "debit_account": "a-1",
                                             "credit_account": "b-1"}),
    "transfer-lowercase-currency": ("transfer", tx(currency="usd")),
    "transfer-short-currency": ("transfer", tx(currency="US")),
    "transfer-currency-int": ("transfer", tx(currency=840)),
    "transfer-pending-string": ("transfer", tx(pending="yes")),
    "transfer-timeout-without-pending": ("transfer", tx(timeout=5)),
    "transfer-negative-timeout": ("transfer", tx(pending=True, timeout=-1)),
    "transfer-timeout-too-large": ("transfer", tx(pending=True, timeout=2**32)),
    "transfer-timeout-float": ("transfer", tx(pending=True, timeout=1.5)),
    "transfer-reference-too-long": ("transfer", tx(reference="x" * 257)),
    "transfer-reference-int": ("transfer", tx(reference=5)),
    "transfer-linked-string": ("transfer", tx(linked="true")),
    "transfer-post-and-void": ("transfer", {"id": "t", "post_pending_id": "h",
                                            "void_pending_id": "h"}),
    "transfer-pending-post": ("transfer", {"id": "t", "post_pending_id": "h",
                                           "pending": True}),
    "transfers-empty": ("create_transfers", {"transfers": []}),
    "transfers-8191-items": ("create_transfers", {"transfers": [tx(f"many-{n}")
                                                                for n in range(8191)]}),
    "transfers-map": ("create_transfers", {"transfers": {}}),
    "transfers-item-int": ("create_transfers", {"transfers": [5]}),
    "transfers-unknown-key": ("create_transfers", {"transfers": [tx()], "atomic": True}),
    "accounts-negative-overdraft": ("create_accounts", {"accounts": [
        {"id": "q-1", "participant": "bank-a", "currency": "USD", "overdraft_limit": -1}]}),
    "accounts-float-overdraft": ("create_accounts", {"accounts": [
        {"id": "q-1", "participant": "bank-a", "currency": "USD", "overdraft_limit": 1.5}]}),
    "accounts-overdraft-too-large": ("create_accounts", {"accounts": [
        {"id": "q-1", "participant": "bank-a", "currency": "USD", "overdraft_limit": 2**63}]}),
    "accounts-bool-overdraft": ("create_accounts", {"accounts": [
        {"id": "q-1", "participant": "bank-a", "currency": "USD", "overdraft_limit": True}]}),
    "accounts-bad-currency": ("create_accounts", {"accounts": [
        {"id": "q-1", "participant": "bank-a", "currency": "EURO"}]}),
    "participants-empty-name": ("create_participants", {"participants": [
        {"id": "q-p", "name": ""}]}),
    "participants-negative-cap": ("create_participants", {"participants": [
        {"id": "q-p", "name": "Q", "net_debit_cap": {"USD": -1}}]}),
    "participants-float-cap": ("create_participants", {"participants": [
        {"id": "q-p", "name": "Q", "net_debit_cap": {"USD": 1.5}}]}),
    "participants-lowercase-cap-currency": ("create_participants", {"participants": [
        {"id": "q-p", "name": "Q", "net_debit_cap": {"usd": 1}}]}),
    "set-participant-suspended-string": ("set_participant", {"id": "bank-a",
                                                             "suspended": "no"}),
    "set-participant-cap-string": ("set_participant", {"id": "bank-a",
                                                       "net_debit_cap": {"USD": "1"}}),
    "account-transfers-limit-0": ("get_account_transfers", {"account": "a-1", "limit": 0}),
    "account-transfers-limit-8191": ("get_account_transfers", {"account": "a-1",
                                                               "limit": 8191}),
    "account-transfers-after-negative": ("get_account_transfers", {"account": "a-1",
                                                                   "after": -1}),
    "account-transfers-after-not-digits": ("get_account_transfers", {"account": "a-1",
                                                                     "after": "1e3"}),
    "get-window-0": ("get_window", {"window_id": 0}),
    "get-window-string": ("get_window", {"window_id": "1"}),
    "get-window-missing": ("get_window", {}),
}
# MessagePack bin where a string is expected.
BAD_ARGS_MSGPACK_ONLY = {
    "bin-transfer-id": ("transfer", tx(tid=b"t-bin")),
    "bin-account": ("get_account_transfers", {"account": b"a-1"}),
    "bin-reference": ("transfer", tx(reference=b"ref")),
}


def body_codec(body: bytes) -> str:
    """JSON starts with "{", JSON whitespace or a UTF-8 byte-order mark (docs/protocol.md)."""
    return "json" if body[:1] in (b"{", b" ", b"\t", b"\n", b"\r", b"\xef") else "msgpack"


def send_body(client: WireClient, body: bytes) -> tuple[dict, str]:
    client.send_raw(frame_header(len(body)) + body)
    reply_body = client.recv_body()
    reply, reply_codec = decode_body(reply_body)
    return reply, reply_codec


def assert_error(reply: dict, code: str, request_id) -> None:
    assert reply["ok"] is False, reply
    assert reply["error"]["code"] == code, reply
    assert reply["id"] == request_id and type(reply["id"]) is type(request_id), reply
    assert isinstance(reply["error"]["message"], str)


def assert_alive(client: WireClient) -> None:
    for codec in ("json", "msgpack"):
        client.send({"id": "alive", "op": "ping"}, codec)
        reply, reply_codec = decode_body(client.recv_body())
        assert (reply, reply_codec) == ({"id": "alive", "ok": True, "result": {}}, codec)


def ledger_state(client: WireClient, transfer_ids=()) -> dict:
    return {
        "balances": {a["id"]: a["balance"] for a in client.call(
            "lookup_accounts", {"ids": ACCOUNTS})["accounts"]},
        "counts": client.call("stats")["ledger"],
        "transfers": client.call("lookup_transfers", {"ids": list(transfer_ids)})["transfers"],
        "windows": client.call("list_windows")["windows"],
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One switch for the per-case tests, none of which may change its state."""
    with switch_with_world(tmp_path_factory.mktemp("wire-bad-input") / "data") as process:
        yield process


@pytest.fixture
def client(server):
    with WireClient(server.host, server.port) as connected:
        connected.hello("admin", server.admin_token)
        yield connected


# --- per case ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(BAD_FRAMES))
def test_undecodable_body_is_bad_frame_and_the_connection_stays_open(client, name):
    body = BAD_FRAMES[name]
    reply, reply_codec = send_body(client, body)
    assert reply_codec == body_codec(body), "reply not in the codec of the frame"
    assert_error(reply, "bad_frame", None)
    assert_alive(client)


@pytest.mark.parametrize("body", [
    b'{"id":1,"op":"ping","x":"\\ud83d\\ude00"}',          # a correctly paired surrogate
    b'{"id":1,"op":"ping","x":"\\\\ud800"}',                # an escaped backslash, no escape
    PING_JSON + b" \t\r\n",                                  # trailing JSON whitespace
    b" \t\r\n" + PING_JSON,                                  # leading JSON whitespace
    b"\xef\xbb\xbf" + PING_JSON,                              # a UTF-8 byte-order mark
    b'{"id":1,"op":"ping","x":' + b"[" * 500 + b"]" * 500 + b"}",
    b"\x82\xa2id\x01\xa2op\xa4ping",
    b"\x83\xa2id\x01\xa2op\xa4ping\xa1x" + b"\x91" * 500 + b"\xc0",
    mp({"id": 1, "op": "ping", "args": None}),
], ids=["paired-surrogate", "escaped-backslash", "trailing-whitespace", "leading-whitespace",
        "utf8-bom", "json-500-deep",
        "msgpack-plain", "msgpack-500-deep", "msgpack-args-nil"])
def test_strict_but_valid_bodies_are_accepted(client, body):
    reply, reply_codec = send_body(client, body)
    assert reply_codec == body_codec(body)
    assert reply == {"id": 1, "ok": True, "result": {}}


@pytest.mark.parametrize("name,codec", [
    (name, codec) for codec in ("json", "msgpack") for name in BAD_IDS
    if not (codec == "msgpack" and name in JSON_ONLY_IDS)])
def test_missing_or_invalid_id_is_bad_request_with_id_null(client, name, codec):
    client.send(BAD_IDS[name], codec)
    reply, reply_codec = decode_body(client.recv_body())
    assert reply_codec == codec
    assert_error(reply, "bad_request", None)
    assert_alive(client)


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_ids_at_the_edges_are_echoed_exactly(client, codec):
    for request_id in GOOD_IDS:
        client.send({"id": request_id, "op": "ping"}, codec)
        reply, reply_codec = decode_body(client.recv_body())
        assert reply_codec == codec
        assert reply == {"id": request_id, "ok": True, "result": {}}
        assert type(reply["id"]) is type(request_id)


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_envelope_faults_after_a_good_id_echo_the_id(client, codec):
    cases = [({"id": 5, "op": "no_such_op"}, "unknown_op"),
             ({"id": "x", "op": "PING"}, "unknown_op"),
             ({"id": 6, "op": ""}, "unknown_op"),
             ({"id": 7, "op": 5}, "bad_request"),
             ({"id": 8}, "bad_request"),
             ({"id": 9, "op": None}, "bad_request"),
             ({"id": 10, "op": "ping", "args": []}, "bad_request"),
             ({"id": 11, "op": "ping", "args": "x"}, "bad_request"),
             ({"id": 12, "op": "no_such_op", "args": 5}, "bad_request"),  # envelope first
             ({"id": 13, "op": "ping", "future_field": 1}, None)]         # ignored key
    for message, code in cases:
        client.send(message, codec)
        reply, reply_codec = decode_body(client.recv_body())
        assert reply_codec == codec
        if code is None:
            assert reply == {"id": message["id"], "ok": True, "result": {}}
        else:
            assert_error(reply, code, message["id"])
    if codec == "msgpack":
        client.send_raw(encode_frame(mp({"id": 14, "op": b"ping"})))  # bin, not str
        assert_error(client.recv(), "bad_request", 14)


@pytest.mark.parametrize("codec", ["json", "msgpack"])
@pytest.mark.parametrize("name", list(BAD_ARGS))
def test_malformed_arguments_are_bad_request_with_the_id(client, name, codec):
    op, args = BAD_ARGS[name]
    client.send({"id": f"id-{name}", "op": op, "args": args}, codec)
    reply, reply_codec = decode_body(client.recv_body())
    assert reply_codec == codec
    assert_error(reply, "bad_request", f"id-{name}")


@pytest.mark.parametrize("name", list(BAD_ARGS_MSGPACK_ONLY))
def test_bin_where_a_string_is_expected_is_bad_request(client, name):
    op, args = BAD_ARGS_MSGPACK_ONLY[name]
    client.send_raw(encode_frame(mp({"id": 3, "op": op, "args": args})))
    assert_error(client.recv(), "bad_request", 3)


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_one_malformed_item_fails_the_whole_request_and_applies_nothing(server, client, codec):
    requests = [
        ("create_transfers", {"transfers": [tx("whole-1"), tx("whole-2", amount=7),
                                            tx("bad id!")]}),
        ("create_transfers", {"transfers": [tx("whole-1"), {**tx("whole-3"), "ammount": 1}]}),
        ("create_accounts", {"accounts": [
            {"id": "whole-a", "participant": "bank-a", "currency": "USD"},
            {"id": "whole-b", "participant": "bank-a", "currency": "usd"}]}),
        ("create_participants", {"participants": [{"id": "whole-p", "name": "P"},
                                                  {"id": "whole-q"}]}),
    ]
    for op, args in requests:
        client.send({"id": op, "op": op, "args": args}, codec)
        reply, _ = decode_body(client.recv_body())
        assert_error(reply, "bad_request", op)
    assert client.call("lookup_transfers", {"ids": ["whole-1", "whole-2", "whole-3"]}) == \
        {"transfers": []}
    assert client.call("lookup_accounts", {"ids": ["whole-a", "whole-b"]}) == {"accounts": []}
    with WireClient(server.host, server.port) as other:
        assert_error(other.request("hello", {"participant": "whole-p", "token": "x"}, request_id=1),
                     "unauthenticated", 1)
    assert ledger_state(client)["balances"] == WORLD_BALANCES


# --- frame size -------------------------------------------------------------------------

def exactly_max_frame(codec: str) -> bytes:
    if codec == "json":
        body = b'{"id":"max","op":"ping"}'
        return body + b" " * (MAX_FRAME_BYTES - len(body))
    overhead = len(mp({"id": "max", "op": "ping", "pad": "x" * 100_000})) - 100_000
    return mp({"id": "max", "op": "ping", "pad": "x" * (MAX_FRAME_BYTES - overhead)})


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_a_frame_of_exactly_max_frame_bytes_is_accepted(client, codec):
    body = exactly_max_frame(codec)
    assert len(body) == MAX_FRAME_BYTES and body_codec(body) == codec
    reply, reply_codec = send_body(client, body)
    assert (reply, reply_codec) == ({"id": "max", "ok": True, "result": {}}, codec)
    assert_alive(client)


@pytest.mark.parametrize("length", [0x00200000, MAX_FRAME_BYTES + 1, 0xFFFFFFFF])
def test_a_header_over_max_frame_bytes_is_refused_in_json_and_closes(server, length):
    with WireClient(server.host, server.port) as observer, \
            WireClient(server.host, server.port) as client:
        # an earlier request in MessagePack is answered first, in MessagePack
        client.send_raw(encode_frame(mp({"id": 1, "op": "ping"})) + frame_header(length))
        first, first_codec = decode_body(client.recv_body())
        assert (first, first_codec) == ({"id": 1, "ok": True, "result": {}}, "msgpack")
        body = client.recv_body()
        assert body_codec(body) == "json"
        assert_error(decode_body(body)[0], "frame_too_large", None)
        assert client.is_closed_by_server()
        assert_alive(observer)


# --- mutation fuzz ----------------------------------------------------------------------

def mutate(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(5)
        at = rng.randrange(len(data)) if data else 0
        if choice == 0 and data:
            data[at] = rng.randrange(256)
        elif choice == 1 and data:
            del data[at]
        elif choice == 2:
            data.insert(at, rng.randrange(256))
        elif choice == 3:
            del data[at:]
        else:
            data[at:at] = data[at:at + rng.randint(1, 8)]
    return bytes(data) or b"\x00"


def test_mutated_read_requests_never_break_the_server(client):
    rng = random.Random(7)
    seeds = [({"id": 1, "op": "ping", "args": {}}),
             ({"id": "s", "op": "lookup_accounts", "args": {"ids": ["a-1", "b-1"]}}),
             ({"id": 3, "op": "lookup_transfers", "args": {"ids": ["fund-a-1"]}}),
             ({"id": 4, "op": "get_window", "args": {"window_id": 1}}),
             ({"id": 5, "op": "get_account_transfers", "args": {"account": "a-1",
                                                                "limit": 10}})]
    bodies = [mutate(rng, encode_body(seed, codec))
              for _ in range(150) for seed in seeds for codec in ("json", "msgpack")]
    client.send_raw(b"".join(frame_header(len(b)) + b for b in bodies))
    seen = set()
    for body in bodies:
        reply_body = client.recv_body()
        reply, reply_codec = decode_body(reply_body)
        assert reply_codec == body_codec(body), (body, reply)
        if not reply["ok"]:
            code = reply["error"]["code"]
            assert code in codes.ALL and code != codes.INTERNAL, (body, reply)
            seen.add(code)
    assert {"bad_frame", "bad_request"} <= seen
    assert_alive(client)
    state = ledger_state(client)
    assert state["balances"] == WORLD_BALANCES
    assert_debits_equal_credits(client, ACCOUNTS)


# --- the whole barrage, watched by a second client ---------------------------------------

def test_the_whole_barrage_changes_nothing_and_disturbs_no_one(switch, admin):
    tokens = create_world(admin)
    touched = ["t-bad", "t", "many-0", "many-8190", "whole-1", "whole-2", "whole-3", "t-bin"]
    before = ledger_state(admin, touched)
    with WireClient(switch.host, switch.port) as observer:
        observer.hello("bank-b", tokens["bank-b"], "msgpack")
        observed = 0

        def observe():
            nonlocal observed
            observed += 1
            observer.send({"id": observed, "op": "ping"}, "msgpack" if observed % 2 else "json")
            assert observer.recv() == {"id": observed, "ok": True, "result": {}}

        for name, body in BAD_FRAMES.items():
            reply, _ = send_body(admin, body)
            assert_error(reply, "bad_frame", None)
            observe()
        for codec in ("json", "msgpack"):
            for name, message in BAD_IDS.items():
                if codec == "msgpack" and name in JSON_ONLY_IDS:
                    continue
                admin.send(message, codec)
                assert_error(admin.recv(), "bad_request", None)
                observe()
            for name, (op, args) in BAD_ARGS.items():
                admin.send({"id": name, "op": op, "args": args}, codec)
                assert_error(admin.recv(), "bad_request", name)
                observe()
            admin.send({"id": 99, "op": "no_such_op", "args": {}}, codec)
            assert_error(admin.recv(), "unknown_op", 99)
            observe()
            admin.send({"id": "whole", "op": "create_transfers", "args": {
                "transfers": [tx("whole-1"), tx("whole-2"), {**tx("whole-3"), "ammount": 1}]}},
                codec)
            assert_error(admin.recv(), "bad_request", "whole")
            observe()
        for name, (op, args) in BAD_ARGS_MSGPACK_ONLY.items():
            admin.send_raw(encode_frame(mp({"id": name, "op": op, "args": args})))
            assert_error(admin.recv(), "bad_request", name)
            observe()
        reply, _ = send_body(admin, exactly_max_frame("msgpack"))
        assert reply == {"id": "max", "ok": True, "result": {}}
        observe()

        admin.send_raw(frame_header(0x00200000))
        assert_error(admin.recv(), "frame_too_large", None)
        assert admin.is_closed_by_server()
        observe()

    with WireClient(switch.host, switch.port) as checker:
        checker.hello("admin", switch.admin_token)
        after = ledger_state(checker, touched)
        assert after == before
        assert after["transfers"] == []
        assert after["balances"] == WORLD_BALANCES
        assert_debits_equal_credits(checker, ACCOUNTS)
