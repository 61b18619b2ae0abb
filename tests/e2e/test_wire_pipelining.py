"""Pipelining and framing over real TCP: order, ids and codecs of many requests written at
once, keep-alives, and frames that arrive in pieces."""
import random
import socket
import time

import pytest

from payswitch.protocol import decode_body, encode_body, encode_frame
from support.wire import WireClient, frame_header
from support.world import FUNDS, create_world

KEEP_ALIVE = frame_header(0)
REQUESTS = 1000


def frame(message: dict, codec: str) -> bytes:
    return encode_frame(encode_body(message, codec))


def body_codec(body: bytes) -> str:
    return "json" if body[:1] == b"{" else "msgpack"


def nothing_more_arrives(client: WireClient, wait_s: float = 0.3) -> bool:
    if client.bodies:
        return False
    client.sock.settimeout(wait_s)
    try:
        data = client.sock.recv(1 << 16)
    except socket.timeout:
        return True
    finally:
        client.sock.settimeout(20.0)
    return False if data else True


def tx(tid, debit, credit, amount, **extra) -> dict:
    return {"id": tid, "debit_account": debit, "credit_account": credit, "amount": amount,
            **extra}


def build_requests(rng: random.Random):
    """(request id, codec, message, kind) for a mix of reads, writes and refusals."""
    requests = []
    for n in range(REQUESTS):
        request_id = n if n % 2 else f"req-{n}"
        if n == 1:
            request_id = 2**64 - 1
        elif n == 3:
            request_id = -(2**63)
        codec = rng.choice(("json", "msgpack"))
        kind = n % 6
        if kind == 0:
            op, args = "ping", {}
        elif kind == 1:
            op, args = "transfer", tx(f"pl-{n}", "a-1", "b-1", 1)
        elif kind == 2:
            op, args = "lookup_accounts", {"ids": ["b-1"]}
        elif kind == 3:
            op, args = f"no_such_op_{n}", {}
        elif kind == 4:
            op, args = "transfer", {**tx(f"bad-{n}", "a-1", "b-1", 1), "ammount": 1}
        else:
            op, args = "create_transfers", {"transfers": [
                tx(f"pm-{n}", "a-1", "b-1", 1), tx(f"pf-{n}", "a-2", "b-1", 1)]}
        requests.append((request_id, codec, {"id": request_id, "op": op, "args": args}, kind))
    return requests


def test_a_thousand_pipelined_requests_come_back_in_order(admin):
    create_world(admin)
    rng = random.Random(20261122)
    requests = build_requests(rng)
    stream = bytearray()
    for index, (_, codec, message, _) in enumerate(requests):
        stream += frame(message, codec)
        if index % 7 == 3:
            stream += KEEP_ALIVE * (1 + index % 3)
    admin.send_raw(bytes(stream))

    moved = 0  # money moved to b-1 by the requests answered so far
    last_timestamp = 0
    for request_id, codec, message, kind in requests:
        body = admin.recv_body()
        reply, reply_codec = decode_body(body)
        where = (message, reply)
        assert body_codec(body) == reply_codec == codec, where
        assert reply["id"] == request_id and type(reply["id"]) is type(request_id), where
        if kind == 0:
            assert reply == {"id": request_id, "ok": True, "result": {}}, where
        elif kind == 1:
            assert reply["ok"] and reply["result"]["status"] == "created", where
            assert reply["result"]["timestamp"] > last_timestamp, where
            last_timestamp = reply["result"]["timestamp"]
            moved += 1
        elif kind == 2:
            # executed in order: sees exactly the transfers written before it
            assert reply["ok"] and reply["result"]["accounts"][0]["balance"] == moved, where
        elif kind == 3:
            assert not reply["ok"] and reply["error"]["code"] == "unknown_op", where
        elif kind == 4:
            assert not reply["ok"] and reply["error"]["code"] == "bad_request", where
        else:
            results = reply["result"]["results"]
            assert [r["status"] for r in results] == ["created", "insufficient_funds"], where
            assert results[0]["timestamp"] > last_timestamp, where
            last_timestamp = results[0]["timestamp"]
            moved += 1

    # keep-alives were never answered: the next reply is the next request's
    admin.send_raw(KEEP_ALIVE + frame({"id": "after", "op": "ping"}, "msgpack") + KEEP_ALIVE)
    assert admin.recv() == {"id": "after", "ok": True, "result": {}}
    assert nothing_more_arrives(admin)
    found = admin.call("lookup_accounts", {"ids": ["a-1", "b-1"]})["accounts"]
    assert {a["id"]: a["balance"] for a in found} == {"a-1": FUNDS - moved, "b-1": moved}
    assert moved == sum(1 for *_, kind in requests if kind in (1, 5))


def test_keep_alives_alone_are_never_answered(switch):
    with WireClient(switch.host, switch.port) as client:
        client.send_raw(KEEP_ALIVE * 200)
        assert nothing_more_arrives(client)
        client.send_raw(KEEP_ALIVE * 5 + frame({"id": 1, "op": "ping"}, "json")
                        + KEEP_ALIVE * 5)
        assert client.recv() == {"id": 1, "ok": True, "result": {}}
        assert nothing_more_arrives(client)


def send_byte_by_byte(client: WireClient, data: bytes) -> None:
    for index in range(len(data)):
        client.send_raw(data[index:index + 1])
        time.sleep(0.001)


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_a_frame_written_byte_by_byte_is_answered(switch, codec):
    with WireClient(switch.host, switch.port) as client:
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        hello = frame({"id": "h", "op": "hello",
                       "args": {"participant": "admin", "token": switch.admin_token}}, codec)
        send_byte_by_byte(client, hello[:-1])
        assert nothing_more_arrives(client, 0.2), "answered before the frame was complete"
        client.send_raw(hello[-1:])
        reply, reply_codec = decode_body(client.recv_body())
        assert reply_codec == codec
        assert (reply["id"], reply["ok"], reply["result"]["participant"]) == \
            ("h", True, "admin")

        # a write-op frame in pieces, with a keep-alive and a whole ping around it
        create = frame({"id": 2, "op": "create_participants", "args": {
            "participants": [{"id": "bank-z", "name": "Bank Z"}]}}, codec)
        send_byte_by_byte(client, KEEP_ALIVE + create[:7])
        client.send_raw(create[7:-3])
        send_byte_by_byte(client, create[-3:] + frame({"id": 3, "op": "ping"}, codec)[:2])
        client.send_raw(frame({"id": 3, "op": "ping"}, codec)[2:])
        first = client.recv()
        assert (first["id"], first["ok"], first["result"]["results"][0]["status"]) == \
            (2, True, "created")
        assert client.recv() == {"id": 3, "ok": True, "result": {}}
        assert nothing_more_arrives(client)


def test_frame_too_large_comes_after_every_earlier_reply(switch, admin):
    """Earlier requests (writes waiting for the fsync included) are answered first, in order;
    nothing after the oversized header is read or answered."""
    create_world(admin)
    writes = [frame({"id": n, "op": "transfer", "args": tx(f"big-{n}", "a-1", "b-1", 1)},
                    "msgpack" if n % 2 else "json") for n in range(20)]
    admin.send_raw(b"".join(writes) + frame({"id": "read", "op": "ping"}, "msgpack")
                   + frame_header(0x00200000)
                   + frame({"id": "never", "op": "transfer",
                            "args": tx("never", "a-1", "b-1", 1)}, "json"))
    for n in range(20):
        body = admin.recv_body()
        reply, codec = decode_body(body)
        assert (reply["id"], codec, reply["result"]["status"]) == \
            (n, "msgpack" if n % 2 else "json", "created")
    assert decode_body(admin.recv_body()) == ({"id": "read", "ok": True, "result": {}},
                                              "msgpack")
    body = admin.recv_body()
    assert body_codec(body) == "json"
    reply = decode_body(body)[0]
    assert (reply["id"], reply["ok"], reply["error"]["code"]) == (None, False, "frame_too_large")
    assert admin.is_closed_by_server()
    with WireClient(switch.host, switch.port) as checker:
        checker.hello("admin", switch.admin_token)
        found = checker.call("lookup_transfers", {"ids": ["big-0", "big-19", "never"]})
        assert sorted(t["id"] for t in found["transfers"]) == ["big-0", "big-19"]
        assert checker.call("lookup_accounts", {"ids": ["b-1"]})["accounts"][0]["balance"] == 20


def test_requests_sent_before_a_half_close_are_all_answered(switch):
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        create_world(admin)
    with WireClient(switch.host, switch.port) as client:
        client.send_raw(
            frame({"id": 1, "op": "hello",
                   "args": {"participant": "admin", "token": switch.admin_token}}, "json")
            + frame({"id": 2, "op": "transfer", "args": tx("half", "a-1", "b-1", 1)}, "json")
            + frame({"id": 3, "op": "ping"}, "msgpack"))
        client.sock.shutdown(socket.SHUT_WR)
        replies = []
        try:
            while len(replies) < 3:
                replies.append(client.recv())
        except ConnectionError:
            pass
    with WireClient(switch.host, switch.port) as checker:
        checker.hello("admin", switch.admin_token)
        committed = checker.call("lookup_transfers", {"ids": ["half"]})["transfers"]
    assert [t["id"] for t in committed] == ["half"]  # executed either way
    assert [r["id"] for r in replies] == [1, 2, 3], replies
    assert replies[1]["result"] == {"status": "created",
                                    "timestamp": committed[0]["timestamp"]}
