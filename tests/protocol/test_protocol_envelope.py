import pytest

from payswitch.protocol import (
    JSON, MSGPACK, FrameDecoder, ProtocolError, codes, decode_body, encode_request, error_reply,
    ok_reply, parse_envelope,
)


def envelope_error(obj: dict) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_envelope(obj)
    assert info.value.code == codes.BAD_REQUEST
    return info.value


@pytest.mark.parametrize("request_id", [0, -(2**63), 2**64 - 1, "", "r-1", "x" * 256, "é" * 256])
def test_valid_ids(request_id):
    assert parse_envelope({"id": request_id, "op": "ping"}) == (request_id, "ping", {})


@pytest.mark.parametrize("request_id", [
    True, False, 1.0, 2**64, -(2**63) - 1, "x" * 257, None, [1], {"a": 1}, b"id",
])
def test_invalid_ids_answer_bad_request_with_null_id(request_id):
    assert envelope_error({"id": request_id, "op": "ping"}).request_id is None


def test_missing_id_is_bad_request_with_null_id():
    assert envelope_error({"op": "ping"}).request_id is None


@pytest.mark.parametrize("op", [None, 1, b"ping", ["ping"]])
def test_op_must_be_a_string_and_the_error_carries_the_id(op):
    obj = {"id": 7, "args": {}}
    if op is not None:
        obj["op"] = op
    assert envelope_error(obj).request_id == 7


@pytest.mark.parametrize("obj", [{"id": 1, "op": "ping"}, {"id": 1, "op": "ping", "args": None}])
def test_missing_or_null_args_mean_empty(obj):
    assert parse_envelope(obj) == (1, "ping", {})


@pytest.mark.parametrize("args", [[], "x", 0, True, b""])
def test_args_must_be_a_map(args):
    assert envelope_error({"id": "a", "op": "ping", "args": args}).request_id == "a"


def test_unknown_op_names_and_unknown_envelope_keys_pass_through():
    assert parse_envelope({"id": 1, "op": "no_such_op", "args": {"x": 1}, "extra": 2}) == (
        1, "no_such_op", {"x": 1})


def test_replies():
    assert ok_reply(3, {}) == {"id": 3, "ok": True, "result": {}}
    assert error_reply(None, "bad_frame", "why") == {
        "id": None, "ok": False, "error": {"code": "bad_frame", "message": "why"}}


@pytest.mark.parametrize("codec", [JSON, MSGPACK])
def test_encode_request_makes_one_whole_frame(codec):
    frame = encode_request(9, "hello", {"participant": "admin", "token": "t"}, codec)
    [body] = FrameDecoder(1 << 20).feed(frame)
    obj, used = decode_body(body)
    assert used == codec
    assert parse_envelope(obj) == (9, "hello", {"participant": "admin", "token": "t"})
