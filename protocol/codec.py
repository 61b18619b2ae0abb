"""Body codecs: strict JSON and MessagePack, chosen per frame by the first byte."""

import base64
import json
import math
import re
import threading
from typing import Any, Callable, Iterator, NoReturn

import msgpack

from .codes import BAD_FRAME, CREATED
from .errors import ProtocolError
from .framing import pack_header
from .values import MAX_ITEMS

__all__ = ["JSON", "MSGPACK", "codec_of", "decode_body", "encode_body", "encode_body_in_steps",
           "encode_msgpack_bodies", "encode_created_frames", "STEP_ITEMS"]

JSON = "json"
MSGPACK = "msgpack"

# A JSON body starts with "{", JSON whitespace (space, tab, LF, CR) or a UTF-8 byte-order mark
# (EF BB BF). None of these can begin a MessagePack map (they are the positive fixints 32, 9,
# 10, 13, the negative fixint -17 and "{" the fixint 123), so a body starting with one is JSON.
_JSON_FIRST_BYTES = frozenset(b"{ \t\n\r\xef")
_UTF8_BOM = "\ufeff"
# A \u escape into the surrogate range D800-DFFF; only then can a lone one hide.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# What may follow the object; a regex, since str.strip with a character set takes ~8 ms a MiB.
_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODE_ERRORS = (ValueError, TypeError, RecursionError, OverflowError, msgpack.UnpackException)


def _bad_frame(message: str) -> ProtocolError:
    return ProtocolError(BAD_FRAME, message)


def _json_object(pairs: list[Any]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _bad_frame("JSON object has a duplicate name")
    return obj


def _json_constant(name: str) -> NoReturn:
    raise _bad_frame(f"JSON does not allow {name}")


def _json_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _bad_frame(f"JSON number {text[:32]} is out of range")
    return value


_json_decoder = json.JSONDecoder(
    object_pairs_hook=_json_object, parse_constant=_json_constant, parse_float=_json_float
)
# Python's JSON decoder lets lone surrogates through; encoding them as UTF-8 fails.
_utf8_checker = json.JSONEncoder(ensure_ascii=False, check_circular=False)


def _msgpack_map(pairs: list[Any]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _bad_frame("MessagePack map has a duplicate key")
    for key in obj:
        if type(key) is not str:
            raise _bad_frame("MessagePack map keys must be str, not bin")
    return obj


def _msgpack_ext(code: int, data: bytes) -> NoReturn:
    raise _bad_frame(f"MessagePack ext type {code} is not allowed")


def decode_strict_json(body: bytes) -> Any:
    """Any strict RFC 8259 JSON value (docs/protocol.md "Codecs"), or raise `bad_frame`.

    Also used for JSON content that is not a frame body, such as batch files. Whitespace may
    come before the value and after it, and one UTF-8 byte-order mark may come first (RFC 8259
    section 8.1 lets a parser ignore it).
    """
    try:
        text = body.decode("utf-8")
        start = 1 if text.startswith(_UTF8_BOM) else 0
        if text[start:start + 1] != "{":
            start = _match_end(_JSON_WHITESPACE.match(text, start))
        obj, end = _json_decoder.raw_decode(text, start)
        if end != len(text) and not _JSON_WHITESPACE.fullmatch(text, end):
            raise _bad_frame("trailing bytes after the JSON object")
        if b"\\u" in body and _SURROGATE_ESCAPE.search(body):
            _utf8_checker.encode(obj).encode("utf-8")
    except _DECODE_ERRORS as exc:  # UnicodeError is a ValueError
        raise _bad_frame(f"invalid JSON: {_brief(exc)}") from None
    return obj


def _decode_msgpack(body: bytes) -> dict[str, Any]:
    try:
        # max_ext_len=0 also refuses the timestamp ext, which bypasses ext_hook. No valid
        # request has a map of more than MAX_ITEMS entries: refusing a larger one at its header
        # spares decoding (and building through the hook) up to a megabyte of keys.
        obj = msgpack.unpackb(
            body, raw=False, strict_map_key=True, object_pairs_hook=_msgpack_map,
            ext_hook=_msgpack_ext, max_ext_len=0, max_map_len=MAX_ITEMS,
        )
    except _DECODE_ERRORS as exc:
        raise _bad_frame(f"invalid MessagePack body: {_brief(exc)}") from None
    if type(obj) is not dict:
        raise _bad_frame("MessagePack body is not one map")
    return obj


def _match_end(match: re.Match[str] | None) -> int:
    if match is None:  # the pattern matches the empty string anywhere
        raise AssertionError("JSON whitespace did not match")
    return match.end()


def _brief(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:200]


def codec_of(body: bytes) -> str:
    """The codec a body is in, and its reply must be in, by its first byte (even when it does
    not decode)."""
    return JSON if body and body[0] in _JSON_FIRST_BYTES else MSGPACK


def decode_body(body: bytes) -> tuple[dict[str, Any], str]:
    """Decode one frame body into its map and codec, or raise `bad_frame`."""
    if not body:
        raise _bad_frame("empty body")
    if body[0] in _JSON_FIRST_BYTES:
        obj = decode_strict_json(bytes(body))
        if type(obj) is not dict:  # "{" always opens one; whitespace may lead to any value
            raise _bad_frame("JSON body is not one object")
        return obj, JSON
    return _decode_msgpack(body), MSGPACK


def _json_default(value: object) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


_json_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
)


def encode_body(obj: dict[str, Any], codec: str) -> bytes:
    """Encode a map in `codec`; in JSON, bytes become base64 strings."""
    if codec == JSON:
        return _json_encoder.encode(obj).encode("utf-8")
    if codec == MSGPACK:
        packed: bytes = _thread_packer()(obj)
        return packed
    raise ValueError(f"unknown codec {codec!r}")


def encode_msgpack_bodies(objs: list[dict[str, Any]]) -> list[bytes]:
    """encode_body(obj, MSGPACK) of each of `objs`, at the cost of one call."""
    pack = _thread_packer()
    return [pack(obj) for obj in objs]


def encode_created_frames(request_ids: list[Any], timestamps: list[int]) -> list[bytes]:
    """The frames of the MessagePack replies {"id": request id, "ok": true, "result": {"status":
    "created", "timestamp": timestamp}}, one per pair, each byte for byte what encode_frame of
    encode_body of its map gives: most of the replies a switch sends, filled into the one layout
    they share (the maps made and packed cost twice as much). One call for a whole group of
    transfers, whose replies go to many connections (a call per connection cost three times as
    much at one request each)."""
    pack = _thread_packer()
    return [b"%b%b%b%b%b" % (pack_header(_CREATED_BYTES + len(packed_id) + len(packed_timestamp)),
                             _CREATED_HEAD, packed_id, _CREATED_MIDDLE, packed_timestamp)
            for packed_id, packed_timestamp in zip(map(pack, request_ids), map(pack, timestamps),
                                                   strict=True)]


# A created reply's bytes around its request id and timestamp, as msgpack packs the maps
_CREATED_HEAD = b"\x83" + msgpack.packb("id")  # a map of three entries, then the first key
_CREATED_MIDDLE = (msgpack.packb("ok") + msgpack.packb(True) + msgpack.packb("result")
                   + b"\x82" + msgpack.packb("status") + msgpack.packb(CREATED)
                   + msgpack.packb("timestamp"))
_CREATED_BYTES = len(_CREATED_HEAD) + len(_CREATED_MIDDLE)


def _thread_packer() -> Callable[[Any], bytes]:
    try:
        pack: Callable[[Any], bytes] = _thread_packers.pack
    except AttributeError:
        pack = _thread_packers.pack = msgpack.Packer(use_bin_type=True).pack
    return pack


# One Packer per thread: a third of packb's cost is making a new one per call, and a Packer
# shared between threads could be interleaved (packing a dict subclass runs Python code).
_thread_packers = threading.local()


# A reply whose result holds a list longer than this is encoded in steps of this many items.
STEP_ITEMS = 128
_packer = msgpack.Packer(use_bin_type=True)


def encode_body_in_steps(reply: dict[str, Any], codec: str,
                         step_items: int = STEP_ITEMS) -> Iterator[bytes] | None:
    """None, or pieces (a generator of bytes) whose concatenation is encode_body(reply, codec)
    when reply["result"] holds a list of more than `step_items` items: that list is encoded
    `step_items` items per piece, so that a server can encode a large reply (8,190 accounts take
    ~15 ms in JSON) a step at a time, between other work."""
    if not 0 < step_items < 1 << 16:
        raise ValueError("step_items must be 1..65535")
    result = reply.get("result")
    if type(result) is not dict:
        return None
    for key, value in result.items():  # a loop, not next(genexpr): this runs for every reply
        if type(value) is list and len(value) > step_items:
            break
    else:
        return None
    if codec == JSON:
        items = _json_list_steps(result[key], step_items)
        return _json_map_steps(reply, "result", _json_map_steps(result, key, items))
    items = _msgpack_list_steps(result[key], step_items)
    return _msgpack_map_steps(reply, "result", _msgpack_map_steps(result, key, items))


def _json_map_steps(obj: dict[str, Any], hole: str,
                    hole_steps: Iterator[bytes]) -> Iterator[bytes]:
    encode = _json_encoder.encode
    yield b"{"
    for index, (key, value) in enumerate(obj.items()):
        head = ("," if index else "") + encode(key) + ":"
        if key == hole:
            yield head.encode("utf-8")
            yield from hole_steps
        else:
            yield (head + encode(value)).encode("utf-8")
    yield b"}"


def _json_list_steps(items: list[Any], step_items: int) -> Iterator[bytes]:
    encode = _json_encoder.encode
    yield b"["
    for start in range(0, len(items), step_items):
        part = encode(items[start:start + step_items])[1:-1]  # without its brackets
        yield ("," + part if start else part).encode("utf-8")
    yield b"]"


def _msgpack_map_steps(obj: dict[str, Any], hole: str,
                       hole_steps: Iterator[bytes]) -> Iterator[bytes]:
    pack = _packer.pack
    yield _packer.pack_map_header(len(obj))
    for key, value in obj.items():
        if key == hole:
            yield pack(key)
            yield from hole_steps
        else:
            yield pack(key) + pack(value)


def _msgpack_list_steps(items: list[Any], step_items: int) -> Iterator[bytes]:
    yield _packer.pack_array_header(len(items))
    for start in range(0, len(items), step_items):
        part = items[start:start + step_items]
        header_bytes = 1 if len(part) < 16 else 3  # fixarray, array 16 (step_items < 2^16)
        yield _packer.pack(part)[header_bytes:]
