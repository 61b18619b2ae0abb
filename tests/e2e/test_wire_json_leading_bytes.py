"""A JSON body may start with JSON whitespace or a UTF-8 byte-order mark (neither can begin a
MessagePack map): bytes in, bytes out over a real socket, for small frames (decoded inline) and
frames over max_inline_decode_bytes (decoded by the decode worker)."""
import json

import pytest

from support.wire import WireClient, frame_header
from support.world import switch_with_world

LEADS = {"space": b" ", "tab": b"\t", "cr": b"\r", "lf": b"\n", "bom": b"\xef\xbb\xbf",
         "bom-whitespace": b"\xef\xbb\xbf \r\n\t"}
INLINE_DECODE_LIMIT = 16 << 10  # Config.max_inline_decode_bytes, the default the switch runs


def raw_reply(client: WireClient, body: bytes) -> bytes:
    client.send_raw(frame_header(len(body)) + body)
    return client.recv_body()


@pytest.fixture(scope="module")
def admin_socket(tmp_path_factory):
    with switch_with_world(tmp_path_factory.mktemp("json-leading-bytes") / "data") as switch, \
            WireClient(switch.host, switch.port) as client:
        client.hello("admin", switch.admin_token)
        yield client


def decode_worker_frames(client: WireClient) -> int:
    return client.call("stats")["decode_worker"]["frames"]


@pytest.mark.parametrize("lead", list(LEADS.values()), ids=list(LEADS))
def test_a_small_json_body_after_whitespace_or_a_bom_gets_a_json_reply(admin_socket, lead):
    body = lead + b'{"id":7,"op":"lookup_accounts","args":{"ids":["a-1","nope"]}}'
    reply = raw_reply(admin_socket, body)
    assert reply.startswith(b'{"id":7,"ok":true,"result":{"accounts":[{"id":"a-1",')
    assert [account["id"] for account in json.loads(reply)["result"]["accounts"]] == ["a-1"]


@pytest.mark.parametrize("lead", list(LEADS.values()), ids=list(LEADS))
def test_a_large_json_body_after_whitespace_or_a_bom_gets_a_json_reply(admin_socket, lead):
    ids = ["a-1"] + [f"absent-{n:06d}" for n in range(2000)]
    body = lead + json.dumps({"id": 8, "op": "lookup_accounts", "args": {"ids": ids}},
                             separators=(",", ":")).encode()
    assert len(body) > INLINE_DECODE_LIMIT
    before = decode_worker_frames(admin_socket)
    reply = raw_reply(admin_socket, body)
    assert reply.startswith(b'{"id":8,"ok":true,"result":{"accounts":[{"id":"a-1",')
    assert decode_worker_frames(admin_socket) == before + 1, "not decoded by the decode worker"


@pytest.mark.parametrize("size", ["small", "large"])
def test_whitespace_then_something_other_than_an_object_is_bad_frame_in_json(admin_socket, size):
    padding = b" " * (INLINE_DECODE_LIMIT + 10 if size == "large" else 3)
    reply = raw_reply(admin_socket, padding + b'[{"id":9,"op":"ping"}]')
    assert json.loads(reply) == {"id": None, "ok": False, "error": {
        "code": "bad_frame", "message": "JSON body is not one object"}}
    assert raw_reply(admin_socket, b' {"id":10,"op":"ping"}') == b'{"id":10,"ok":true,"result":{}}'
