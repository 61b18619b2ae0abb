"""Request generation: which accounts, which amounts, which kind of request, encoded ready to send.

Everything random comes from the seed: a connection's sequence of requests is a pure function of
(seed, connection index, run id), whatever the switch answers.
"""

import random
from bisect import bisect
from heapq import heappop, heappush
from itertools import accumulate

from protocol import encode_request

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
        cumulative = self._cumulative
        debit = bisect(cumulative, rng.random() * cumulative[-1])
        owner = self._owner[debit]
        if self.interbank and rng.random() < self.interbank:
            others, weights = self._others[owner]
            owner = others[bisect(weights, rng.random() * weights[-1])]
        positions, weights = self._own[owner]
        while True:
            credit = positions[bisect(weights, rng.random() * weights[-1])]
            if credit != debit:
                return self._ids[debit], self._ids[credit]


class Request:
    """One encoded request and what it carries: `items` are transfer tuples
    (id, amount, effect, debit_account, credit_account)."""

    __slots__ = ("request_id", "frame", "kind", "items", "single")

    def __init__(self, request_id: int, frame: bytes, kind: int, items: tuple, single: bool):
        self.request_id = request_id
        self.frame = frame
        self.kind = kind
        self.items = items
        self.single = single  # the `transfer` op: its failure is the item's code


class Workload:
    """The request stream of one connection."""

    def __init__(self, picker: AccountPicker, *, seed: int, connection: int, run_id: str,
                 mix: dict, batch_size: int, amount_min: int, amount_max: int, codec: str):
        self.rng = random.Random(seed * 1_000_003 + connection)
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

    def next_request(self) -> Request:
        self.last_request_id = request_id = self.last_request_id + 1
        completions = self._completions
        if completions and completions[0][0] <= request_id:
            return self._complete(request_id, heappop(completions)[2])
        rng = self.rng
        kind = self._kinds[bisect(self._kind_weights, rng.random() * self._kind_weights[-1])]
        if kind == LOOKUP:
            debit, credit = self.picker.pair(rng)
            frame = encode_request(request_id, "lookup_accounts", {"ids": [debit, credit]},
                                   self.codec)
            return Request(request_id, frame, LOOKUP, (), False)
        pending = kind == PENDING
        effect = HOLD if pending else ONE_PHASE
        items = tuple([self._new_item(effect) for _ in range(self.batch_size)])
        wires = [{"id": tid, "debit_account": debit, "credit_account": credit, "amount": amount}
                 for tid, amount, _, debit, credit in items]
        if pending:
            for wire in wires:
                wire["pending"] = True
            due = request_id + 1 + int(rng.random() * COMPLETION_DELAY_REQUESTS)
            heappush(completions, (due, request_id, items))
        return self._encode(request_id, kind, items, wires)

    def _new_item(self, effect: int) -> tuple:
        self._transfers += 1
        debit, credit = self.picker.pair(self.rng)
        amount = self.amount_min + int(self.rng.random() * self.amount_span)
        return (self.id_prefix + str(self._transfers), amount, effect, debit, credit)

    def _complete(self, request_id: int, held: tuple) -> Request:
        rng = self.rng
        items, wires = [], []
        for pending_id, amount, _, debit, credit in held:
            self._transfers += 1
            tid = self.id_prefix + str(self._transfers)
            if rng.random() < VOID_SHARE:
                items.append((tid, amount, VOID, debit, credit))
                wires.append({"id": tid, "void_pending_id": pending_id})
            else:
                items.append((tid, amount, POST, debit, credit))
                wires.append({"id": tid, "post_pending_id": pending_id})
        return self._encode(request_id, COMPLETE, tuple(items), wires)

    def _encode(self, request_id: int, kind: int, items: tuple, wires: list) -> Request:
        if self.batch_size == 1:
            frame = encode_request(request_id, "transfer", wires[0], self.codec)
            return Request(request_id, frame, kind, items, True)
        frame = encode_request(request_id, "create_transfers", {"transfers": wires}, self.codec)
        return Request(request_id, frame, kind, items, False)
