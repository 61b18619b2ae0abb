"""Evidence gathered during the run, and the end-of-run check that nothing acknowledged was lost.

The check: the run's accounts still balance (debits equal credits), the money they moved equals
what the acknowledged transfers say (within what transfers of unknown outcome may add), and a
uniform sample of acknowledged transfers is found with the same amount and accounts.
"""

import math
import random
from dataclasses import dataclass, field

from payswitch.protocol.values import MAX_ITEMS

from .workload import EFFECTS, HOLD, ONE_PHASE, POST, VOID

# Per effect: the sign of its amount in (debits posted, debits pending).
_SIGNS: list[tuple[int, int]] = [(0, 0)] * len(EFFECTS)
_SIGNS[ONE_PHASE], _SIGNS[HOLD], _SIGNS[POST], _SIGNS[VOID] = (1, 0), (0, 1), (1, -1), (0, -1)


class Tally:
    """Bounds on the money the run moved: acknowledged items moved it for sure, items whose
    outcome is unknown (their connection failed) may or may not have."""

    __slots__ = ("posted_min", "posted_max", "pending_min", "pending_max")

    def __init__(self):
        self.posted_min = self.posted_max = self.pending_min = self.pending_max = 0

    def acknowledged(self, effect: int, amount: int) -> None:
        posted, pending = _SIGNS[effect]
        self.posted_min += posted * amount
        self.posted_max += posted * amount
        self.pending_min += pending * amount
        self.pending_max += pending * amount

    def acknowledged_items(self, items: list) -> None:
        """`acknowledged` for each transfer tuple (id, amount, effect, ...), summed first."""
        posted_sum = pending_sum = 0
        signs = _SIGNS
        for item in items:
            posted, pending = signs[item[2]]
            amount = item[1]
            posted_sum += posted * amount
            pending_sum += pending * amount
        self.posted_min += posted_sum
        self.posted_max += posted_sum
        self.pending_min += pending_sum
        self.pending_max += pending_sum

    def uncertain(self, effect: int, amount: int) -> None:
        posted, pending = _SIGNS[effect]
        if posted:
            self.posted_max += amount
        if pending > 0:
            self.pending_max += amount
        elif pending < 0:
            self.pending_min -= amount

    def merge(self, other: "Tally") -> None:
        self.posted_min += other.posted_min
        self.posted_max += other.posted_max
        self.pending_min += other.pending_min
        self.pending_max += other.pending_max


class Reservoir:
    """A uniform sample of at most `size` items from a stream of unknown length, in O(size)
    memory (Li's algorithm L: a random skip between replacements, not a draw per item)."""

    __slots__ = ("size", "seen", "items", "_rng", "_w", "_next")

    def __init__(self, size: int, seed: int):
        self.size = size
        self.seen = 0
        self.items: list = []
        self._rng = random.Random(seed)
        self._w = 1.0
        self._next = 0  # the `seen` count at which the next item is taken

    def offer(self, item) -> None:
        self.seen = seen = self.seen + 1
        if seen == self._next:
            self.items[self._rng.randrange(self.size)] = item
            self._skip()
        elif seen <= self.size:
            self.items.append(item)
            if seen == self.size:
                self._skip()

    def offer_many(self, items: list) -> None:
        """`offer` each of `items` in order (the same sample), stepping over the items between
        replacements at once: a batch of 8,190 costs a few steps, not 8,190 calls."""
        start, count = 0, len(items)
        while start < count:
            if self.seen < self.size:  # still filling
                self.offer(items[start])
                start += 1
                continue
            step = self._next - self.seen  # the step-th item from here is taken
            if start + step > count:
                self.seen += count - start
                return
            self.seen += step - 1
            self.offer(items[start + step - 1])
            start += step

    def _skip(self) -> None:
        self._w *= math.exp(math.log(self._unit()) / self.size)
        self._next = self.seen + int(math.log(self._unit()) / math.log1p(-self._w)) + 1

    def _unit(self) -> float:
        """Uniform in the open interval (0, 1)."""
        while True:
            value = self._rng.random()
            if value > 0:
                return value

    def merge(self, other: "Reservoir") -> None:
        """Keep a uniform sample of both streams: how many come from each side is drawn as
        `size` picks without replacement from the two streams' lengths."""
        rng = self._rng
        mine, theirs = self.seen, other.seen
        take_mine = 0
        for _ in range(min(self.size, len(self.items) + len(other.items))):
            if rng.random() * (mine + theirs) < mine:
                take_mine += 1
                mine -= 1
            else:
                theirs -= 1
        take_mine = min(take_mine, len(self.items))
        take_theirs = min(self.size - take_mine, len(other.items))
        self.items = rng.sample(self.items, take_mine) + rng.sample(other.items, take_theirs)
        self.seen += other.seen
        self._next = 0  # merged samples are final: no more offers


@dataclass
class Evidence:
    """What one process knows at the end about the money it moved and the transfers it saw
    acknowledged."""
    tally: Tally
    sample: Reservoir

    def merge(self, other: "Evidence") -> None:
        self.tally.merge(other.tally)
        self.sample.merge(other.sample)


@dataclass(frozen=True)
class Totals:
    found: int
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int


async def account_totals(client, ids: list[str]) -> Totals:
    """Sums over the accounts `ids` (those that exist), looked up in chunks."""
    sums = [0, 0, 0, 0, 0]
    for start in range(0, len(ids), MAX_ITEMS):
        for account in await client.lookup_accounts(ids[start:start + MAX_ITEMS]):
            sums[0] += 1
            sums[1] += account.debits_posted
            sums[2] += account.credits_posted
            sums[3] += account.debits_pending
            sums[4] += account.credits_pending
    return Totals(*sums)


@dataclass
class Verdict:
    checks: list[dict] = field(default_factory=list)  # {name, ok, detail}

    @property
    def ok(self) -> bool:
        return all(check["ok"] for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"name": name, "ok": ok, "detail": detail})


async def verify(client, ids: list[str], before: Totals, evidence: Evidence) -> Verdict:
    verdict = Verdict()
    after = await account_totals(client, ids)
    verdict.add("accounts", after.found == len(ids), f"{after.found} of {len(ids)} found")
    balanced = (after.debits_posted == after.credits_posted
                and after.debits_pending == after.credits_pending)
    verdict.add("double_entry", balanced,
                f"posted debits {after.debits_posted} vs credits {after.credits_posted}, "
                f"pending debits {after.debits_pending} vs credits {after.credits_pending}")
    tally = evidence.tally
    _check_moved(verdict, "posted_moved", after.debits_posted - before.debits_posted,
                 tally.posted_min, tally.posted_max)
    _check_moved(verdict, "pending_moved", after.debits_pending - before.debits_pending,
                 tally.pending_min, tally.pending_max)
    await _check_sample(client, verdict, evidence.sample.items)
    return verdict


def _check_moved(verdict: Verdict, name: str, moved: int, low: int, high: int) -> None:
    expected = str(low) if low == high else f"{low}..{high}"
    verdict.add(name, low <= moved <= high, f"{moved} moved, acknowledged transfers say {expected}")


async def _check_sample(client, verdict: Verdict, items: list) -> None:
    found = {}
    ids = [item[0] for item in items]
    for start in range(0, len(ids), MAX_ITEMS):
        for transfer in await client.lookup_transfers(ids[start:start + MAX_ITEMS]):
            found[transfer.id] = transfer
    wrong = []
    for tid, amount, _, debit, credit in items:
        transfer = found.get(tid)
        if transfer is None:
            wrong.append(f"{tid} missing")
        elif (transfer.amount, transfer.debit_account, transfer.credit_account) != \
                (amount, debit, credit):
            wrong.append(f"{tid} has {transfer.amount} {transfer.debit_account}->"
                         f"{transfer.credit_account}, acknowledged {amount} {debit}->{credit}")
    detail = f"{len(items) - len(wrong)} of {len(items)} acknowledged transfers found intact"
    if wrong:
        detail += ": " + "; ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else "")
    verdict.add("sample", not wrong, detail)
