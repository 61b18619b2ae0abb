"""Request generation: which accounts, which amounts, which kind of request, encoded ready to send.

Everything random comes from the seed: a connection's sequence of requests is a pure function of
(seed, connection index, run id), whatever the switch answers.
"""

import random
import struct
from bisect import bisect
from heapq import heappop, heappush
from itertools import accumulate

import msgpack

from payswitch.protocol import MSGPACK, encode_request

__all__ = [
    "KINDS", "SINGLE", "PENDING", "COMPLETE", "LOOKUP", "EFFECTS", "ONE_PHASE", "HOLD", "POST",
    "VOID", "AccountPicker", "Request", "Workload",
]

# Request kinds, each with its own latency histogram.
KINDS = ("single", "pending", "complete", "lookup")
SINGLE, PENDING, COMPLETE, LOOKUP = range(len(KINDS))

# What an acknowledged transfer item does to the money: the effects verification accounts for.
EFFECTS = ("one_phase", "hold", "post", "void")
ONE_PHASE, HOLD, POST, VOID = range(len(EFFECTS))

VOID_SHARE = 0.2  # of completed pending transfers; the rest are posted in full
COMPLETION_DELAY_REQUESTS = 4  # a completion goes out 1..4 requests after its pending transfer


class AccountPicker:
    """Draws (debit, credit) pairs: interbank (two participants) or on-us, by a skew.

    Under zipf the k-th hottest account weighs 1/k^exponent; which accounts are hot is a seeded
    shuffle, so every process and connection of a run agrees on them.
    """

    def __init__(self, accounts: list[list[str]], skew: str, zipf_exponent: float,
                 interbank: float, seed: int):
        self.interbank = interbank
        flat = [(p, account) for p, owned in enumerate(accounts) for account in owned]
        weights = [1.0] * len(flat)
        if skew == "zipf":
            hot_first = list(range(len(flat)))
            random.Random(seed).shuffle(hot_first)
            for rank, position in enumerate(hot_first, start=1):
                weights[position] = rank ** -zipf_exponent
        self._owner = [p for p, _ in flat]
        self._ids = [account for _, account in flat]
        self._cumulative = list(accumulate(weights))
        # Per participant: its accounts (positions into flat) and their cumulative weights.
        self._own: list[tuple[list[int], list[float]]] = []
        for p in range(len(accounts)):
            positions = [i for i, (owner, _) in enumerate(flat) if owner == p]
            self._own.append((positions, list(accumulate(weights[i] for i in positions))))
        # Per participant: the other participants and their cumulative total weights.
        totals = [own[1][-1] for own in self._own]
        self._others = [([q for q in range(len(accounts)) if q != p],
                         list(accumulate(totals[q] for q in range(len(accounts)) if q != p)))
                        for p in range(len(accounts))]

    def pair(self, rng: random.Random) -> tuple[str, str]:
        return self.pairs(rng, 1)[0]

    def pairs(self, rng: random.Random, count: int) -> list[tuple[str, str]]:
        """`count` pairs, drawn as `pair` would draw them one by one, in one loop."""
        random, interbank = rng.random, self.interbank
        cumulative, total = self._cumulative, self._cumulative[-1]
        owners, own, others, ids = self._owner, self._own, self._others, self._ids
        drawn = []
        for _ in range(count):
            debit = bisect(cumulative, random() * total)
            owner = owners[debit]
            if interbank and random() < interbank:
                other_owners, weights = others[owner]
                owner = other_owners[bisect(weights, random() * weights[-1])]
            positions, weights = own[owner]
            credit = debit
            while credit == debit:
                credit = positions[bisect(weights, random() * weights[-1])]
            drawn.append((ids[debit], ids[credit]))
        return drawn


class Request:
    """One encoded request and what it carries: `items` are transfer tuples
    (id, amount, effect, debit_account, credit_account)."""

    __slots__ = ("request_id", "frame", "kind", "items", "single", "start_s")

    def __init__(self, request_id: int, frame: bytes, kind: int, items: tuple, single: bool):
        self.request_id = request_id
        self.frame = frame
        self.kind = kind
        self.items = items
        self.single = single  # the `transfer` op: its failure is the item's code
        self.start_s = 0.0  # set when sent: latency counts from here


_pack = msgpack.Packer(use_bin_type=True).pack
_frame_header = struct.Struct(">I").pack


def _transfer_template(pending: bool) -> bytes:
    """A transfer map with %b holes for its packed id, accounts and amount."""
    return b"".join((b"\x85" if pending else b"\x84", _pack("id"), b"%b", _pack("debit_account"),
                     b"%b", _pack("credit_account"), b"%b", _pack("amount"), b"%b",
                     _pack("pending") + _pack(True) if pending else b""))


_REQUEST_HEAD = b"\x83" + _pack("id") + b"%b" + _pack("op")
_SINGLE_HEAD = _REQUEST_HEAD + _pack("transfer") + _pack("args")
_BATCH_HEAD = _REQUEST_HEAD + _pack("create_transfers") + _pack("args") + b"\x81" + \
    _pack("transfers")
_TRANSFER = (_transfer_template(False), _transfer_template(True))  # by `pending`
_SINGLE_TRANSFER = tuple(_SINGLE_HEAD + template for template in _TRANSFER)
_COMPLETION = b"\x82" + _pack("id") + b"%b%b%b"


class MsgpackFrames:
    """The transfer requests' frames: byte templates with holes for the few values that change
    (one bytes formatting each), byte for byte what `encode_request` makes of the same maps (a
    test holds them to it) at a fraction of its CPU: the generator shares the cores with the
    switch."""

    def __init__(self):
        self._accounts: dict[str, bytes] = {}  # an account id, packed

    def _account(self, account: str) -> bytes:
        packed = self._accounts.get(account)
        if packed is None:
            packed = self._accounts[account] = _pack(account)
        return packed

    def transfer(self, tid: str, debit: str, credit: str, amount: int, pending: bool) -> bytes:
        """{"id", "debit_account", "credit_account", "amount"[, "pending": true]}."""
        accounts = self._accounts
        return _TRANSFER[pending] % (
            _pack(tid), accounts.get(debit) or self._account(debit),
            accounts.get(credit) or self._account(credit), _pack(amount))

    def single_transfer(self, request_id: int, item: tuple, pending: bool) -> bytes:
        """A `transfer` request's frame for the transfer `item` (id, amount, effect, debit,
        credit), in one formatting."""
        tid, amount, _, debit, credit = item
        accounts = self._accounts
        body = _SINGLE_TRANSFER[pending] % (
            _pack(request_id), _pack(tid), accounts.get(debit) or self._account(debit),
            accounts.get(credit) or self._account(credit), _pack(amount))
        return _frame_header(len(body)) + body

    @staticmethod
    def completion(tid: str, key: str, pending_id: str) -> bytes:
        """{"id", "post_pending_id" | "void_pending_id"}."""
        return _COMPLETION % (_pack(tid), _pack(key), _pack(pending_id))

    @staticmethod
    def single(request_id: int, transfer: bytes) -> bytes:
        """A `transfer` request's frame."""
        body = _SINGLE_HEAD % _pack(request_id) + transfer
        return _frame_header(len(body)) + body

    @staticmethod
    def batch(request_id: int, transfers: list[bytes]) -> bytes:
        """A `create_transfers` request's frame."""
        body = b"".join((_BATCH_HEAD % _pack(request_id), _array_header(len(transfers)),
                         *transfers))
        return _frame_header(len(body)) + body


def _array_header(length: int) -> bytes:
    if length < 16:
        return bytes((0x90 | length,))
    return (b"\xdc" + length.to_bytes(2, "big") if length < 1 << 16
            else b"\xdd" + length.to_bytes(4, "big"))


class Workload:
    """The request stream of one connection."""

    def __init__(self, picker: AccountPicker, *, seed: int, connection: int, run_id: str,
                 mix: dict, batch_size: int, amount_min: int, amount_max: int, codec: str):
        self.rng = random.Random(seed * 1_000_003 + connection)
        self._amount_rng = random.Random(f"{seed}.{connection}.amounts")  # apart from the
        # rest, so that drawing pairs several at a time leaves the sequence as it is
        self.picker = picker
        self.batch_size = batch_size
        self.amount_min = amount_min
        self.amount_span = amount_max - amount_min + 1
        self.codec = codec
        self.id_prefix = f"{run_id}.{connection}."
        kinds = [(SINGLE, mix["single"]), (PENDING, mix["two_phase"]), (LOOKUP, mix["lookup"])]
        kinds = [(kind, weight) for kind, weight in kinds if weight > 0]
        self._kinds = [kind for kind, _ in kinds]
        self._kind_weights = list(accumulate(weight for _, weight in kinds))
        self.last_request_id = 0  # 0 is the connection's hello
        self._transfers = 0
        self._completions: list[tuple[int, int, tuple]] = []  # heap of (due, request id, items)
        self._frames = MsgpackFrames() if codec == MSGPACK else None
        self._plain_singles = self._kinds == [SINGLE] and batch_size == 1 and codec == MSGPACK

    def next_requests(self, count: int) -> list[Request]:
        """The next `count` requests, as `next_request` makes them; in one lean loop when all
        are one-phase single transfers in MessagePack (the default workload: the hot path of
        a generator that shares the cores with the switch)."""
        if not self._plain_singles:
            next_request = self.next_request
            return [next_request() for _ in range(count)]
        first = self.last_request_id + 1
        self.last_request_id += count
        single_transfer = self._frames.single_transfer
        return [Request(request_id, single_transfer(request_id, item, False), SINGLE, (item,),
                        True)
                for request_id, item in zip(range(first, first + count),
                                            self._items(count, ONE_PHASE))]

    def next_request(self) -> Request:
        self.last_request_id = request_id = self.last_request_id + 1
        completions = self._completions
        if completions and completions[0][0] <= request_id:
            return self._complete(request_id, heappop(completions)[2])
        rng = self.rng
        kinds = self._kinds
        if len(kinds) > 1:
            kind = kinds[bisect(self._kind_weights, rng.random() * self._kind_weights[-1])]
        else:
            kind = kinds[0]
        if kind == LOOKUP:
            debit, credit = self.picker.pair(rng)
            frame = encode_request(request_id, "lookup_accounts", {"ids": [debit, credit]},
                                   self.codec)
            return Request(request_id, frame, LOOKUP, (), False)
        pending = kind == PENDING
        items = self._new_items(HOLD if pending else ONE_PHASE)
        if pending:
            due = request_id + 1 + int(rng.random() * COMPLETION_DELAY_REQUESTS)
            heappush(completions, (due, request_id, items))
        frames = self._frames
        if frames is None:
            wires = [{"id": tid, "debit_account": debit, "credit_account": credit,
                      "amount": amount} for tid, amount, _, debit, credit in items]
            if pending:
                for wire in wires:
                    wire["pending"] = True
            return self._encode(request_id, kind, items, wires)
        if self.batch_size == 1:
            return Request(request_id, frames.single_transfer(request_id, items[0], pending),
                           kind, items, True)
        transfer = frames.transfer
        encoded = [transfer(tid, debit, credit, amount, pending)
                   for tid, amount, _, debit, credit in items]
        return Request(request_id, frames.batch(request_id, encoded), kind, items, False)

    def _new_items(self, effect: int) -> tuple:
        return tuple(self._items(self.batch_size, effect))

    def _items(self, count: int, effect: int) -> list[tuple]:
        """The next `count` transfer items (id, amount, effect, debit, credit)."""
        random, prefix = self._amount_rng.random, self.id_prefix
        amount_min, amount_span = self.amount_min, self.amount_span
        first = self._transfers + 1
        self._transfers += count
        return [(prefix + str(number), amount_min + int(random() * amount_span), effect, debit,
                 credit)
                for number, (debit, credit) in zip(range(first, first + count),
                                                   self.picker.pairs(self.rng, count))]

    def _complete(self, request_id: int, held: tuple) -> Request:
        rng = self.rng
        items, completions = [], []
        for pending_id, amount, _, debit, credit in held:
            self._transfers += 1
            tid = self.id_prefix + str(self._transfers)
            effect, key = (VOID, "void_pending_id") if rng.random() < VOID_SHARE else \
                (POST, "post_pending_id")
            items.append((tid, amount, effect, debit, credit))
            completions.append((tid, key, pending_id))
        if self._frames is None:
            wires = [{"id": tid, key: pending_id} for tid, key, pending_id in completions]
            return self._encode(request_id, COMPLETE, tuple(items), wires)
        completion = self._frames.completion
        encoded = [completion(tid, key, pending_id) for tid, key, pending_id in completions]
        return self._encode_msgpack(request_id, COMPLETE, tuple(items), encoded)

    def _encode(self, request_id: int, kind: int, items: tuple, wires: list) -> Request:
        if self.batch_size == 1:
            frame = encode_request(request_id, "transfer", wires[0], self.codec)
            return Request(request_id, frame, kind, items, True)
        frame = encode_request(request_id, "create_transfers", {"transfers": wires}, self.codec)
        return Request(request_id, frame, kind, items, False)

    def _encode_msgpack(self, request_id: int, kind: int, items: tuple,
                        encoded: list[bytes]) -> Request:
        if self.batch_size == 1:
            return Request(request_id, self._frames.single(request_id, encoded[0]), kind, items,
                           True)
        return Request(request_id, self._frames.batch(request_id, encoded), kind, items, False)
