"""A seeded generator of hostile frames, an oracle that predicts the switch's exact answer to each,
and a driver that throws them at a live switch over several connections.

Every kind of hostile input the hardening issue lists is generated: random bytes; mutations of
valid requests of every op in both codecs; truncated bodies; lengths at, near and past
max_frame_bytes; deeply nested and huge (or lying-about-their-size) containers; huge integers;
invalid UTF-8; NaN/Infinity; duplicate keys; hostile values in every position of the envelope and
of each op's arguments. Stream-level hostility (an oversized length, a frame cut off by a
half-close or by a reset) runs on throwaway connections.

The oracle decodes each body with the same sans-IO `protocol` package the server uses and
predicts the reply: the exact error code and id for anything refused before execution
(`bad_frame`, `bad_request`, `unknown_op`, `unauthenticated`), `{}` for a ping, any documented
reply for a read. Frames that could change state (a well-formed mutating request on an
authenticated connection) or that would be a failed `hello` (answered late on purpose) are never
sent, so "the ledger did not change" is exact: not one WAL record may be written.
"""
import random
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass, field

import msgpack

from payswitch.protocol import OPS, ProtocolError, codes, decode_body, parse_envelope, validate_args
from support.wire import WireClient
from payswitch.switch.config import Config

SEND_NOTHING = object()
UNAUTHENTICATED_FRAME_BYTES = Config().max_unauthenticated_frame_bytes  # the switch's default

# --- a tiny encoder that can also write what encoders refuse to ---------------------------


class Raw:
    """A pre-encoded fragment: `json` text or `mp` bytes, spliced in as is."""
    __slots__ = ("json", "mp")

    def __init__(self, json: bytes | None = None, mp: bytes | None = None):
        self.json, self.mp = json, mp


class Pairs(list):
    """A map written from a list of (key, value) pairs: duplicate keys allowed."""


def enc_json(value) -> bytes:
    out = bytearray()
    _json(value, out)
    return bytes(out)


def _json(value, out: bytearray) -> None:
    if isinstance(value, Raw):
        out += value.json if value.json is not None else b"null"
    elif isinstance(value, (dict, Pairs)):
        items = value if isinstance(value, Pairs) else list(value.items())
        out += b"{"
        for index, (key, item) in enumerate(items):
            if index:
                out += b","
            _json(key, out)
            out += b":"
            _json(item, out)
        out += b"}"
    elif isinstance(value, (list, tuple)):
        out += b"["
        for index, item in enumerate(value):
            if index:
                out += b","
            _json(item, out)
        out += b"]"
    elif value is None:
        out += b"null"
    elif value is True:
        out += b"true"
    elif value is False:
        out += b"false"
    elif isinstance(value, int):
        out += str(value).encode()
    elif isinstance(value, float):
        out += repr(value).encode()  # nan/inf come out as words JSON does not have
    elif isinstance(value, bytes):
        out += b'"' + value.hex().encode() + b'"'
    else:
        out += _json_string(str(value))


def _json_string(text: str) -> bytes:
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out).encode("utf-8", "surrogatepass")


def enc_mp(value) -> bytes:
    out = bytearray()
    _mp(value, out)
    return bytes(out)


def _mp(value, out: bytearray) -> None:
    if isinstance(value, Raw):
        out += value.mp if value.mp is not None else b"\xc0"
    elif isinstance(value, (dict, Pairs)):
        items = value if isinstance(value, Pairs) else list(value.items())
        count = len(items)
        out += bytes([0x80 | count]) if count < 16 else \
            (b"\xde" + struct.pack(">H", count) if count < 1 << 16 else
             b"\xdf" + struct.pack(">I", count))
        for key, item in items:
            _mp(key, out)
            _mp(item, out)
    elif isinstance(value, (list, tuple)):
        count = len(value)
        out += bytes([0x90 | count]) if count < 16 else \
            (b"\xdc" + struct.pack(">H", count) if count < 1 << 16 else
             b"\xdd" + struct.pack(">I", count))
        for item in value:
            _mp(item, out)
    elif isinstance(value, int) and not isinstance(value, bool) and \
            not -(2**63) <= value < 2**64:
        out += b"\xc0"  # MessagePack has no such integer
    elif isinstance(value, str):
        out += msgpack.packb(value.encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
                             use_bin_type=True)
    else:
        out += msgpack.packb(value, use_bin_type=True)


_BIG: dict = {}


def big(value_key: tuple) -> Raw:
    """Large values, encoded once and spliced in as Raw (the fuzzer must outrun the switch)."""
    raw = _BIG.get(value_key)
    if raw is None:
        kind, size = value_key
        value = {"ints": lambda: [n % 300 for n in range(size)],
                 "ids": lambda: ["a-1"] * size,
                 "map": lambda: {f"k{n}": n for n in range(size)},
                 "string": lambda: "x" * size,
                 "zeros": lambda: b"\x00" * size}[kind]()
        import json as _json
        text = _json.dumps(value.hex() if isinstance(value, bytes) else value,
                           separators=(",", ":")).encode()
        raw = _BIG[value_key] = Raw(json=text, mp=msgpack.packb(value, use_bin_type=True))
    return raw


def encode(value, codec: str) -> bytes:
    body = enc_json(value) if codec == "json" else enc_mp(value)
    if codec == "json" and body[:1] != b"{":
        body = b" " + body  # a JSON non-object: whitespace first routes it as JSON
    return body


# --- seeds: one valid request for every op --------------------------------------------------

def tx(tid="fz-1", debit="a-1", credit="b-1", amount=5, **extra) -> dict:
    return {"id": tid, "debit_account": debit, "credit_account": credit, "amount": amount,
            **extra}


SEED_ARGS = {
    "ping": {},
    "hello": {"participant": "bank-a", "token": "not-the-token"},
    "stats": {},
    "create_participants": {"participants": [{"id": "fz-p", "name": "Fuzz",
                                              "net_debit_cap": {"USD": 100}}]},
    "set_participant": {"id": "bank-a", "net_debit_cap": {"USD": 5}, "suspended": True},
    "create_accounts": {"accounts": [{"id": "fz-a", "participant": "bank-a",
                                      "currency": "USD", "overdraft_limit": None}]},
    "lookup_accounts": {"ids": ["a-1", "b-1", "nope"]},
    "create_transfers": {"transfers": [tx(), tx("fz-2", pending=True, timeout=5, linked=True),
                                       {"id": "fz-3", "post_pending_id": "fz-2", "amount": 1}]},
    "transfer": tx(currency="USD", reference="fuzz"),
    "lookup_transfers": {"ids": ["fund-a-1", "nope"]},
    "get_account_transfers": {"account": "a-1", "after": 0, "limit": 10},
    "close_window": {},
    "get_window": {"window_id": 1},
    "get_window_matrix": {"window_id": 1},
    "list_windows": {},
    "upload_batch_part": {"batch_id": "fz-b", "seq": 0, "data": "aWQsZGVi"},
    "submit_batch": {"batch_id": "fz-b", "format": "json", "mode": "atomic",
                     "items": [tx()], "control_count": 1, "control_sum": 5},
    "get_batch": {"batch_id": "fz-b"},
    "get_batch_results": {"batch_id": "fz-b", "offset": 0, "limit": 10},
}

INTERESTING_BYTES = b"\x00\x01\x7f\x80\xc0\xc1\xc2\xc3\xd9\xdb\xdc\xdd\xde\xdf\xff\"\\{}[]:,0-."
INTERESTING_INTS = [0, -1, 1, 2**7, 2**8, 2**15, 2**16, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
                    2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64,
                    10**30, -(10**30)]
MAX_DEPTHS = [2, 10, 100, 999, 1000, 1023, 1024, 1025, 5000, 100_000]


def seed_args(op: str) -> dict:
    args = SEED_ARGS.get(op)
    return {} if args is None else msgpack.unpackb(msgpack.packb(args))  # a deep copy


# --- the generator ---------------------------------------------------------------------------

@dataclass
class Generator:
    rng: random.Random
    max_frame_bytes: int = 1 << 20
    kinds: Counter = field(default_factory=Counter)

    KINDS = (("random_bytes", 8), ("mutation", 30), ("truncated", 6), ("hostile_args", 20),
             ("hostile_envelope", 8), ("deep_nesting", 5), ("huge_container", 0.5),
             ("huge_integer", 5), ("non_utf8", 5), ("nan_infinity", 4), ("duplicate_keys", 5),
             ("near_limit", 0.05))

    def __post_init__(self):
        self._names = [name for name, _ in self.KINDS]
        self._weights = [weight for _, weight in self.KINDS]

    def body(self) -> tuple[str, bytes]:
        kind = self.rng.choices(self._names, self._weights)[0]
        body = getattr(self, "_" + kind)()
        if not body:
            body = b"\x00"
        return kind, body[:self.max_frame_bytes]

    # building blocks

    def codec(self) -> str:
        return self.rng.choice(("json", "msgpack"))

    def op(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.85:
            return rng.choice(list(OPS) + list(SEED_ARGS))
        if roll < 0.95:
            name = rng.choice(list(OPS))
            return name.upper() if rng.random() < 0.5 else name + rng.choice(("_", " ", "\0", "x"))
        return self.hostile_string()

    def request_id(self):
        rng = self.rng
        return rng.choice([rng.randrange(-(2**63), 2**64), rng.choice(INTERESTING_INTS),
                           "r-" + str(rng.randrange(10**6)), "", "x" * 256])

    def request(self, op: str | None = None) -> dict:
        op = op or self.op()
        return {"id": self.request_id(), "op": op, "args": seed_args(op)}

    def hostile_string(self) -> str:
        rng = self.rng
        return rng.choice([
            "", " ", "x" * rng.choice((64, 65, 256, 257, 10_000)), "a-1\0", "é" * 65,
            "😀" * 70, "\u202e" + "1-a", "\ufeffa-1", "a-1 ", "\ud800", "\udfff\ud800",
            "../../etc/passwd", "%s%n%x", "'; DROP TABLE accounts; --", "${jndi:ldap://x}",
            "\r\nlog-injection: yes", "a" * 64, "A" * 65, "usd", "US", "USDX", "nan",
        ])

    def hostile_value(self, depth: int = 0):
        rng = self.rng
        roll = rng.randrange(16)
        if roll == 0:
            return rng.choice(INTERESTING_INTS)
        if roll == 1:
            return Raw(json=rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999",
                                        b"1" + b"0" * rng.choice((20, 400, 4300, 4301, 6000)),
                                        b"-0", b"1.0", b"1e2", b"0.1"]),
                       mp=rng.choice([b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",  # NaN
                                      b"\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00",  # Infinity
                                      b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",  # 2^64-1
                                      b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",  # -2^63
                                      b"\xca\x3f\x80\x00\x00"]))  # float32 1.0
        if roll == 2:
            return self.hostile_string()
        if roll == 3:
            return rng.choice([None, True, False, 0.0, -0.0, 1.5, 1e308, b"\x00\xff", b""])
        if roll == 4:
            return self.nested(rng.choice(MAX_DEPTHS[:6]))
        if roll == 5:
            return big(("ints", rng.choice((0, 1, 10, 100, 100, 8191))))
        if roll == 6:
            return big(("map", rng.choice((0, 1, 10, 100, 100, 9000))))
        if roll == 7:
            return Raw(json=b'"\xff\xfe"', mp=b"\xa2\xff\xfe")  # invalid UTF-8
        if roll == 8:
            return Pairs([("id", 1), ("id", 2)])
        if roll == 9:
            return Raw(json=b'"\\ud800"', mp=b"\xa3\xed\xa0\x80")  # lone surrogate
        if roll == 10:
            return Raw(json=b"[", mp=rng.choice([b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff",
                                                 b"\xdb\xff\xff\xff\xff", b"\xc6\xff\xff\xff\xff",
                                                 b"\xd4\x01\x00", b"\xc1"]))  # lies
        if roll == 11 and depth < 2:
            return [self.hostile_value(depth + 1) for _ in range(rng.randrange(1, 4))]
        if roll == 12 and depth < 2:
            return {self.hostile_string() or "k": self.hostile_value(depth + 1)}
        if roll == 13:
            return tx(self.hostile_string(), amount=self.rng.choice(INTERESTING_INTS))
        if roll == 14:
            return big(("zeros", rng.choice((1, 100, 1000, 65_536))))
        return rng.choice(["a-1", "b-1", "bank-a", "USD", "fund-a-1", 1, -1, {}, []])

    def nested(self, depth: int):
        inner = Raw(json=b"1", mp=b"\x01")
        if self.rng.random() < 0.5:
            return Raw(json=b"[" * depth + b"1" + b"]" * depth,
                       mp=b"\x91" * depth + b"\x01")
        return Raw(json=b'{"a":' * depth + b"1" + b"}" * depth,
                   mp=b"\x81\xa1a" * depth + b"\x01") if depth else inner

    # kinds

    def _random_bytes(self) -> bytes:
        rng = self.rng
        size = rng.choice((1, 2, 3, 5, 8, 16, 64, 256, rng.randrange(1, 4096)))
        data = bytearray(rng.randbytes(size))
        if rng.random() < 0.5:
            data[0] = 0x7B  # "{": the JSON path
        return bytes(data)

    def _mutation(self) -> bytes:
        rng = self.rng
        data = bytearray(encode(self.request(rng.choice(list(OPS))), self.codec()))
        for _ in range(rng.randint(1, 4)):
            choice = rng.randrange(7)
            at = rng.randrange(len(data)) if data else 0
            if choice == 0 and data:
                data[at] = rng.randrange(256)
            elif choice == 1 and data:
                data[at] ^= 1 << rng.randrange(8)
            elif choice == 2 and data:
                del data[at:at + rng.randint(1, 4)]
            elif choice == 3:
                data[at:at] = bytes([rng.choice(INTERESTING_BYTES)])
            elif choice == 4:
                data[at:at] = data[at:at + rng.randint(1, 16)]  # duplicate a slice
            elif choice == 5 and data:
                data[at] = rng.choice(INTERESTING_BYTES)
            else:
                other = encode(self.request(), self.codec())
                start = rng.randrange(len(other))
                data[at:at + rng.randint(0, 8)] = other[start:start + rng.randint(1, 16)]
        return bytes(data)

    def _truncated(self) -> bytes:
        body = encode(self.request(), self.codec())
        return body[:self.rng.randrange(1, len(body))] if len(body) > 1 else body

    def _hostile_args(self) -> bytes:
        rng = self.rng
        request = self.request(rng.choice(list(OPS)))
        args = request["args"]
        target = args
        # descend into an item list now and then, to reach per-item validation
        for key in ("transfers", "accounts", "participants"):
            if key in args and rng.random() < 0.6:
                target = args[key][0]
        roll = rng.random()
        if target and roll < 0.7:
            target[rng.choice(list(target))] = self.hostile_value()
        elif roll < 0.85:
            target[self.hostile_string() or "extra"] = self.hostile_value()
        elif target:
            del target[rng.choice(list(target))]
        if rng.random() < 0.1:
            request["args"] = self.hostile_value()
        return encode(request, self.codec())

    def _hostile_envelope(self) -> bytes:
        rng = self.rng
        request = self.request()
        for key in rng.sample(["id", "op", "args", "extra"], rng.randint(1, 2)):
            if rng.random() < 0.2:
                request.pop(key, None)
            else:
                request[key] = self.hostile_value()
        if rng.random() < 0.2:
            return encode(self.hostile_value(), self.codec())  # not a map at all
        return encode(request, self.codec())

    def _deep_nesting(self) -> bytes:
        rng = self.rng
        request = self.request()
        where = rng.choice(["args", "id", "extra", "item"])
        value = self.nested(rng.choice(MAX_DEPTHS))
        if where == "item" and request["args"]:
            request["args"][rng.choice(list(request["args"]))] = value
        else:
            request[where] = value
        return encode(request, self.codec())

    def _huge_container(self) -> bytes:
        rng = self.rng
        request = self.request(rng.choice(["lookup_accounts", "lookup_transfers",
                                           "create_transfers", "submit_batch"]))
        roll = rng.randrange(4)
        if roll == 0:  # a list far past MAX_ITEMS
            key = next(iter(request["args"]), "ids")
            request["args"][key] = big(("ids", rng.choice((8190, 8191, 50_000))))
        elif roll == 1:  # many keys
            request["args"] = big(("map", rng.choice((100, 20_000))))
        elif roll == 2:  # a container announcing more elements than the body holds
            request["args"] = Raw(json=b"[" + b"0," * 1000,
                                  mp=rng.choice([b"\xdd\xff\xff\xff\xff\x00",
                                                 b"\xdf\x7f\xff\xff\xff\xa1a\x00",
                                                 b"\xdb\xff\xff\xff\xf0abc",
                                                 b"\xc6\x7f\xff\xff\xffxyz"]))
        else:  # one very long string
            request["args"] = {"ids": [big(("string", rng.choice((1000, 100_000, 500_000))))]}
        return encode(request, self.codec())

    def _huge_integer(self) -> bytes:
        rng = self.rng
        request = self.request(rng.choice(["transfer", "get_window", "get_account_transfers",
                                           "get_batch_results", "ping"]))
        value = Raw(json=rng.choice([b"1" + b"0" * rng.choice((19, 20, 38, 300, 4299, 4300,
                                                                 4301, 50_000)),
                                     b"-" + b"9" * rng.choice((19, 4300, 20_000)),
                                     b"18446744073709551616", b"-9223372036854775809"]),
                    mp=rng.choice([b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
                                   b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
                                   b"\xcf\x80\x00\x00\x00\x00\x00\x00\x00"]))
        if rng.random() < 0.3:
            request["id"] = value
        elif request["args"]:
            request["args"][rng.choice(list(request["args"]))] = value
        else:
            request["args"]["n"] = value
        return encode(request, self.codec())

    def _non_utf8(self) -> bytes:
        rng = self.rng
        bad = rng.choice([b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe9",
                          b"\xf4\x90\x80\x80", b"\x80", b"\xf0\x9f\x98"])
        request = self.request()
        if rng.random() < 0.5:
            body = enc_json(request)
            at = rng.randrange(1, len(body))
            return body[:at] + bad + body[at:]
        request[rng.choice(["op", "id", "x"])] = Raw(json=b'"' + bad + b'"',
                                                     mp=bytes([0xA0 | len(bad)]) + bad)
        return encode(request, self.codec())

    def _nan_infinity(self) -> bytes:
        rng = self.rng
        request = self.request(rng.choice(["transfer", "get_window", "ping", "lookup_accounts"]))
        word = Raw(json=rng.choice([b"NaN", b"Infinity", b"-Infinity", b"nan", b"inf", b"1e400",
                                    b"-1e400", b"1E+999"]))
        if rng.random() < 0.3:
            request["id"] = word
        else:
            key = rng.choice(list(request["args"]) or ["n"])
            request["args"][key] = word
        return enc_json(request)

    def _duplicate_keys(self) -> bytes:
        rng = self.rng
        request = self.request()
        pairs = Pairs(request.items())
        if rng.random() < 0.5 or not request["args"]:
            key = rng.choice(["id", "op", "args"])
            pairs.append((key, request[key]))
        else:
            args = Pairs(request["args"].items())
            args.append(rng.choice(args))
            pairs = Pairs((k, args if k == "args" else v) for k, v in pairs)
        return encode(pairs, self.codec())

    def _near_limit(self) -> bytes:
        rng = self.rng
        size = self.max_frame_bytes - rng.choice((0, 1, 2, 100))
        if rng.random() < 0.5:
            body = b'{"id":"big","op":"ping"}'
            return body + b" " * (size - len(body))  # valid: a padded ping
        return bytes([0x7B]) + rng.randbytes(size - 1) if rng.random() < 0.5 \
            else rng.randbytes(size)


# --- the oracle ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prediction:
    codec: str
    request_id: object
    code: str | None    # an error code, or None when the request executes
    op: str | None = None


def predict(body: bytes, authenticated: bool):
    """The reply the switch must give, or SEND_NOTHING for a frame that could change state or
    that would be a (deliberately slowed) failed hello."""
    # docs/protocol.md "Codecs": "{", JSON whitespace or a UTF-8 byte-order mark first is JSON.
    codec = "json" if body[:1] in (b"{", b" ", b"\t", b"\n", b"\r", b"\xef") else "msgpack"
    if not authenticated and len(body) > UNAUTHENTICATED_FRAME_BYTES:
        return Prediction(codec, None, codes.UNAUTHENTICATED)  # refused unread
    try:
        request, codec = decode_body(body)
    except ProtocolError as error:
        return Prediction(codec, None, error.code)
    try:
        request_id, op, args = parse_envelope(request)
    except ProtocolError as error:
        return Prediction(codec, error.request_id, error.code)
    spec = OPS.get(op)
    if spec is None:
        return Prediction(codec, request_id, codes.UNKNOWN_OP)
    if not authenticated and op not in ("ping", "hello"):
        return Prediction(codec, request_id, codes.UNAUTHENTICATED)
    try:
        validate_args(op, args)
    except ProtocolError as error:
        return Prediction(codec, request_id, error.code)
    if op == "hello" or spec.mutating:
        return SEND_NOTHING
    return Prediction(codec, request_id, None, op)


PRE_EXECUTION_CODES = {codes.BAD_FRAME, codes.BAD_REQUEST, codes.UNKNOWN_OP,
                       codes.UNAUTHENTICATED, codes.INVALID_AMOUNT}
READ_ERROR_CODES = codes.ALL - codes.ENVELOPE - codes.SUCCESS


def check_reply(reply_body: bytes, expected: Prediction, sent: bytes) -> str:
    """Asserts the reply matches the prediction; returns its code ("ok" for a success)."""
    reply, reply_codec = decode_body(reply_body)
    context = f"sent {sent[:300]!r} ({len(sent)} bytes), got {reply!r}"
    assert reply_codec == expected.codec, context
    assert reply.get("id") == expected.request_id, context
    assert type(reply.get("id")) is type(expected.request_id), context
    if expected.code is not None:
        assert reply["ok"] is False and reply["error"]["code"] == expected.code, \
            f"expected {expected.code}: {context}"
        assert isinstance(reply["error"]["message"], str), context
        return expected.code
    if expected.op == "ping":
        assert reply == {"id": expected.request_id, "ok": True, "result": {}}, context
    if reply["ok"] is True:
        assert isinstance(reply["result"], dict), context
        return "ok"
    assert reply["error"]["code"] in READ_ERROR_CODES, f"undocumented for a read: {context}"
    return reply["error"]["code"]


# --- the driver ------------------------------------------------------------------------------

@dataclass
class FuzzReport:
    frames: int = 0
    bytes: int = 0
    keep_alives: int = 0
    stream_cases: int = 0
    skipped: int = 0
    kinds: Counter = field(default_factory=Counter)
    replies: Counter = field(default_factory=Counter)
    seconds: float = 0.0


class FuzzConnection:
    def __init__(self, host: str, port: int, token: str | None):
        self.client = WireClient(host, port, timeout_s=60)
        self.authenticated = token is not None
        if token is not None:
            self.client.hello("admin", token)

    def close(self):
        self.client.close()


def run_fuzz(host: str, port: int, admin_token: str, frames: int, seed: int,
             max_frame_bytes: int = 1 << 20, unauthenticated: int = 4, authenticated: int = 2,
             round_size: int = 48, stream_case_every: int = 10,
             report: FuzzReport | None = None) -> FuzzReport:
    """Sends `frames` hostile bodies (plus keep-alives and stream-level cases) and checks every
    reply against the oracle. Raises AssertionError on the first wrong reply."""
    rng = random.Random(seed)
    generator = Generator(rng, max_frame_bytes)
    report = report or FuzzReport()
    started = time.monotonic()
    connections = [FuzzConnection(host, port, None) for _ in range(unauthenticated)] + \
                  [FuzzConnection(host, port, admin_token) for _ in range(authenticated)]
    try:
        rounds = 0
        while report.frames < frames:
            rounds += 1
            batches = []
            for connection in connections:
                batch = []
                stream = bytearray()
                while len(batch) < round_size and report.frames + len(batch) < frames:
                    kind, body = generator.body()
                    expected = predict(body, connection.authenticated)
                    if expected is SEND_NOTHING:
                        report.skipped += 1
                        continue
                    report.kinds[kind] += 1
                    batch.append((body, expected))
                    stream += struct.pack(">I", len(body)) + body
                    if rng.random() < 0.05:
                        stream += b"\x00\x00\x00\x00" * rng.randint(1, 3)
                        report.keep_alives += 1
                report.frames += len(batch)
                report.bytes += len(stream)
                _send_in_pieces(connection.client.sock, bytes(stream), rng)
                batches.append(batch)
            for connection, batch in zip(connections, batches):
                for body, expected in batch:
                    report.replies[check_reply(connection.client.recv_body(), expected, body)] += 1
            if rounds % stream_case_every == 0:
                _stream_case(host, port, generator, report)
    finally:
        for connection in connections:
            connection.close()
    report.seconds += time.monotonic() - started
    return report


def _send_in_pieces(sock: socket.socket, data: bytes, rng: random.Random) -> None:
    """Writes `data` whole or in random pieces, so frames also arrive split anywhere."""
    if rng.random() < 0.7 or len(data) < 2:
        sock.sendall(data)
        return
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 6))))
    for start, end in zip([0, *cuts], [*cuts, len(data)]):
        sock.sendall(data[start:end])


def _stream_case(host: str, port: int, generator: Generator, report: FuzzReport) -> None:
    """Framing-level hostility on a throwaway connection, unauthenticated."""
    rng = generator.rng
    case = ("too_large", "half_close", "reset")[report.stream_cases % 3]
    report.stream_cases += 1
    limit = generator.max_frame_bytes
    with WireClient(host, port, timeout_s=60) as client:
        before = []
        for _ in range(rng.randint(0, 3)):
            _, body = generator.body()
            expected = predict(body, authenticated=False)
            if expected is not SEND_NOTHING:
                before.append((body, expected))
        stream = b"".join(struct.pack(">I", len(body)) + body for body, _ in before)
        report.kinds["stream_" + case] += 1
        if case == "too_large":
            length = rng.choice([limit + 1, limit + 2, 2 * limit, 2**31, 2**32 - 1,
                                 rng.randrange(limit + 1, 2**32)])
            client.send_raw(stream + struct.pack(">I", length) + rng.randbytes(rng.randrange(64)))
            for body, expected in before:
                report.replies[check_reply(client.recv_body(), expected, body)] += 1
            reply, codec = decode_body(client.recv_body())
            assert codec == "json" and reply["id"] is None and \
                reply["error"]["code"] == codes.FRAME_TOO_LARGE, reply
            report.replies[codes.FRAME_TOO_LARGE] += 1
            assert client.is_closed_by_server()
        elif case == "half_close":
            _, partial = generator.body()
            partial = partial[:1000]  # the announced length stays under the limit
            client.send_raw(stream + struct.pack(">I", len(partial) + rng.randint(1, 100))
                            + partial[:rng.randrange(len(partial) + 1)])
            client.sock.shutdown(socket.SHUT_WR)
            for body, expected in before:
                report.replies[check_reply(client.recv_body(), expected, body)] += 1
            assert client.is_closed_by_server()
        else:  # reset mid-frame: SO_LINGER 0 makes close() send RST
            client.send_raw(stream + struct.pack(">I", 1000) + b"{" * rng.randrange(999))
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        report.frames += len(before)


def run_fuzz_in_child(*args, **kwargs) -> FuzzReport:
    """run_fuzz at low CPU priority in a forked child (see net_support.run_niced)."""
    from hardening.net_support import run_niced
    return run_niced(run_fuzz, *args, **kwargs)


def run_valid_load(host: str, port: int, admin_token: str, seconds: float, connections: int = 6,
                   round_size: int = 48) -> int:
    """The control for the fuzz: its shape of load (connections sending rounds of pipelined
    frames, then reading every reply), made of valid pings and small lookups; returns frames."""
    clients = [FuzzConnection(host, port, admin_token) for _ in range(connections)]
    stream = b"".join(
        struct.pack(">I", len(body)) + body for body in (
            encode({"id": n, "op": "ping", "args": {}} if n % 2 else
                   {"id": n, "op": "lookup_accounts", "args": {"ids": ["a-1", "b-1"]}},
                   "json" if n % 3 else "msgpack") for n in range(round_size)))
    frames = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            for connection in clients:
                connection.client.sock.sendall(stream)
            for connection in clients:
                for _ in range(round_size):
                    reply, _ = decode_body(connection.client.recv_body())
                    assert reply["ok"], reply
            frames += connections * round_size
    finally:
        for connection in clients:
            connection.close()
    return frames
