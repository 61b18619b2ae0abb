import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from payswitch.protocol import (JSON, MSGPACK, FrameDecoder, ProtocolError, codec_of, codes,
                                decode_body, encode_body, encode_created_frames, encode_frame,
                                encode_msgpack_bodies, ok_reply)


def assert_bad_frame(body: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_body(body)
    assert info.value.code == codes.BAD_FRAME
    assert info.value.request_id is None
    return info.value


# --- codec choice ---

def test_first_byte_brace_means_json_anything_else_msgpack():
    assert decode_body(b'{"a":1}') == ({"a": 1}, JSON)
    assert decode_body(msgpack.packb({"a": 1})) == ({"a": 1}, MSGPACK)


@pytest.mark.parametrize("lead", [b" ", b"\t", b"\r", b"\n", b"\r\n \t", b"\xef\xbb\xbf",
                                  b"\xef\xbb\xbf \n"],
                         ids=["space", "tab", "cr", "lf", "mixed", "bom", "bom-whitespace"])
def test_leading_json_whitespace_or_a_bom_means_json(lead):
    body = lead + b'{"a":[1, 2]}'
    assert codec_of(body) == JSON
    assert decode_body(body) == ({"a": [1, 2]}, JSON)


@pytest.mark.parametrize("body", [b" [1]", b"\t12", b'\n"x"', b"\xef\xbb\xbf", b"   ",
                                  b"\xef\xbb\xbf\xef\xbb\xbf{}", b"\xef{}"])
def test_whitespace_or_bom_led_bodies_that_are_not_one_object_are_bad_frame_in_json(body):
    assert codec_of(body) == JSON
    assert_bad_frame(body)


def test_other_leading_bytes_stay_msgpack():
    for first in (b"\x0c", b"\x00", b"\x0b", b"[", b"\x80"):
        assert codec_of(first + b"{}") == MSGPACK


def test_empty_body_is_bad_frame():
    assert_bad_frame(b"")


# --- JSON strictness ---

@pytest.mark.parametrize("body", [
    b'{"a":1,"a":2}',                       # duplicate name
    b'{"a":{"b":1,"b":1}}',                 # duplicate name, nested
    b'{"a":NaN}',
    b'{"a":Infinity}',
    b'{"a":-Infinity}',
    b'{"a":1e400}',                         # overflows to infinity
    b'{"a":"\\ud800"}',                     # lone high surrogate
    b'{"a":"\\uDC00x"}',                    # lone low surrogate
    b'{"a":"\\ude00\\ud83d"}',              # pair in the wrong order
    b'{"\\ud800":1}',                       # lone surrogate in a name
    b'{"a":1} x',                           # trailing bytes
    b'{"a":1}{"b":2}',                      # two objects
    b'{"a":1',                              # truncated
    b'{"a":"\xff"}',                        # invalid UTF-8
    b'{"a":"\xed\xa0\x80"}',                # UTF-8-encoded surrogate
    b'{"a":"\xc0\xaf"}',                    # overlong UTF-8
    b'{"a":\'x\'}',                         # single quotes
    b'{"a":1,}',                            # trailing comma
    b'{a:1}',                               # unquoted name
    b'{"a":"tab\there"}',                   # raw control character
    b'{"a":01}',                            # leading zero
    b'{"a":' + b"1" * 5000 + b"}",          # integer too large to convert
    b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # deep nesting
    "{\"a\":1}".encode("utf-16-le"),        # not UTF-8
])
def test_json_strictness(body):
    assert_bad_frame(body)


def test_json_accepts_surrogate_pairs_and_trailing_whitespace():
    obj, codec = decode_body(b'{"a":"\\ud83d\\ude00","b":"\\u00e9"} \r\n\t')
    assert obj == {"a": "\U0001F600", "b": "\u00e9"} and codec == JSON


def test_json_escaped_backslash_before_u_is_not_a_surrogate():
    assert decode_body(b'{"a":"\\\\ud800"}')[0] == {"a": "\\ud800"}


def test_json_accepts_utf8_text_and_big_integers_within_limits():
    obj, _ = decode_body('{"name":"Zürich €","n":18446744073709551615}'.encode())
    assert obj == {"name": "Zürich €", "n": 2**64 - 1}


# --- MessagePack strictness ---

@pytest.mark.parametrize("body", [
    msgpack.packb([1, 2]),                                  # not a map
    msgpack.packb("x"),
    msgpack.packb({"a": 1}) + b"\xc0",                      # trailing bytes
    msgpack.packb({"a": 1}) + msgpack.packb({}),
    b"\x82\xa1a\x01",                                       # truncated
    msgpack.packb({b"a": 1}, use_bin_type=True),            # bin key
    msgpack.packb({"a": {b"k": 1}}, use_bin_type=True),     # nested bin key
    msgpack.packb({1: 1}),                                  # int key
    b"\x82\xa1a\x01\xa1a\x02",                              # duplicate key
    b"\x81\xa1a\xa1\xff",                                   # invalid UTF-8 string
    b"\x81\xa1a\xa3\xed\xa0\x80",                           # encoded surrogate
    msgpack.packb({"a": msgpack.ExtType(5, b"x")}),         # ext type
    msgpack.packb({"a": msgpack.Timestamp(1, 0)}),          # timestamp ext
    b"\x81\xa1a\xc7\x00\x05",                               # empty ext
    b"\x81\xa1a" + b"\x91" * 100_000 + b"\xc0",             # deep nesting
    b"\x81\xa1a\xdd\xff\xff\xff\xff",                       # array longer than the body
    b"\xc1",                                                # never-used byte
    b"\xef",                                                # UTF-8 BOM start: a fixint
])
def test_msgpack_strictness(body):
    assert_bad_frame(body)


def test_msgpack_bin_values_decode_as_bytes():
    body = msgpack.packb({"data": b"\x00\xff"}, use_bin_type=True)
    assert decode_body(body) == ({"data": b"\x00\xff"}, MSGPACK)


# --- round trips ---

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
maps = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


@given(maps)
def test_round_trip_json(obj):
    assert decode_body(encode_body(obj, JSON)) == (obj, JSON)


@given(maps)
def test_round_trip_msgpack(obj):
    assert decode_body(encode_body(obj, MSGPACK)) == (obj, MSGPACK)


def test_encode_json_is_compact_utf8_with_bytes_as_base64():
    body = encode_body({"a": "é", "data": b"\x00\x01\xff"}, JSON)
    assert body == '{"a":"é","data":"AAH/"}'.encode()


def test_encode_msgpack_writes_bytes_as_bin():
    assert encode_body({"d": b"\x01"}, MSGPACK) == b"\x81\xa1d\xc4\x01\x01"


def test_encode_json_refuses_nan():
    with pytest.raises(ValueError):
        encode_body({"a": float("nan")}, JSON)


def test_encode_unknown_codec():
    with pytest.raises(ValueError):
        encode_body({}, "xml")


def test_bad_frame_message_names_the_fault():
    assert "duplicate" in assert_bad_frame(b'{"a":1,"a":2}').message


# --- the replies of created transfers, filled into their layout ---

request_ids = st.one_of(st.integers(-2**63, 2**64 - 1), st.text(max_size=256))
timestamps = st.integers(0, 2**64 - 1)


@given(st.lists(st.tuples(request_ids, timestamps), max_size=20))
def test_created_frames_are_the_frames_of_the_packed_reply_maps(pairs):
    ids, stamps = [request_id for request_id, _ in pairs], [stamp for _, stamp in pairs]
    replies = [ok_reply(request_id, {"status": codes.CREATED, "timestamp": stamp})
               for request_id, stamp in pairs]
    assert encode_created_frames(ids, stamps) == [
        encode_frame(body) for body in encode_msgpack_bodies(replies)]


def test_created_frames_decode_as_the_replies_they_stand_for():
    frames = encode_created_frames([7, "req-8"], [1_764_000_000_000_000_001, 5])
    bodies = FrameDecoder(1024).feed(b"".join(frames))
    assert [decode_body(body) for body in bodies] == [
        ({"id": 7, "ok": True, "result": {"status": "created",
                                          "timestamp": 1_764_000_000_000_000_001}}, MSGPACK),
        ({"id": "req-8", "ok": True, "result": {"status": "created", "timestamp": 5}}, MSGPACK)]


def test_created_frames_refuse_columns_of_different_lengths():
    with pytest.raises(ValueError):
        encode_created_frames([1, 2], [5])
