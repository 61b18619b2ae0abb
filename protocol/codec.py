"""Body codecs: strict JSON and MessagePack, chosen per frame by the first byte."""

import base64
import json
import math
import re

import msgpack

from .codes import BAD_FRAME
from .errors import ProtocolError
from .values import MAX_ITEMS

__all__ = ["JSON", "MSGPACK", "decode_body", "encode_body"]

JSON = "json"
MSGPACK = "msgpack"

_JSON_FIRST_BYTE = 0x7B  # "{"
# A \u escape into the surrogate range D800-DFFF; only then can a lone one hide.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_JSON_WHITESPACE = " \t\n\r"
_DECODE_ERRORS = (ValueError, TypeError, RecursionError, OverflowError, msgpack.UnpackException)


def _bad_frame(message: str) -> ProtocolError:
    return ProtocolError(BAD_FRAME, message)


def _json_object(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _bad_frame("JSON object has a duplicate name")
    return obj


def _json_constant(name: str):
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


def _msgpack_map(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _bad_frame("MessagePack map has a duplicate key")
    for key in obj:
        if type(key) is not str:
            raise _bad_frame("MessagePack map keys must be str, not bin")
    return obj


def _msgpack_ext(code: int, data: bytes):
    raise _bad_frame(f"MessagePack ext type {code} is not allowed")


def decode_strict_json(body: bytes):
    """Any strict RFC 8259 JSON value (PROTOCOL.md "Framing"), or raise `bad_frame`.

    Also used for JSON content that is not a frame body, such as batch files.
    """
    try:
        text = body.decode("utf-8")
        obj, end = _json_decoder.raw_decode(text)
        if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
            raise _bad_frame("trailing bytes after the JSON object")
        if b"\\u" in body and _SURROGATE_ESCAPE.search(body):
            _utf8_checker.encode(obj).encode("utf-8")
    except _DECODE_ERRORS as exc:  # UnicodeError is a ValueError
        raise _bad_frame(f"invalid JSON: {_brief(exc)}") from None
    return obj


def _decode_msgpack(body: bytes) -> dict:
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


def _brief(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:200]


def decode_body(body: bytes) -> tuple[dict, str]:
    """Decode one frame body into its map and codec, or raise `bad_frame`."""
    if not body:
        raise _bad_frame("empty body")
    if body[0] == _JSON_FIRST_BYTE:
        # A body starting with "{" that decodes at all is one object.
        return decode_strict_json(bytes(body)), JSON
    return _decode_msgpack(body), MSGPACK


def _json_default(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


_json_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
)


def encode_body(obj: dict, codec: str) -> bytes:
    """Encode a map in `codec`; in JSON, bytes become base64 strings."""
    if codec == JSON:
        return _json_encoder.encode(obj).encode("utf-8")
    if codec == MSGPACK:
        return msgpack.packb(obj, use_bin_type=True)
    raise ValueError(f"unknown codec {codec!r}")
