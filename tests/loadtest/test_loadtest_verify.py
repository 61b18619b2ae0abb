"""Verification: money bounds, the sample of acknowledged ids, and the checks that catch loss."""

from collections import Counter

import pytest

from payswitch.client import Account, Transfer
from payswitch.loadtest.verify import Evidence, Reservoir, Tally, Totals, verify
from payswitch.loadtest.workload import HOLD, ONE_PHASE, POST, VOID


def test_tally_of_acknowledged_transfers_is_exact():
    tally = Tally()
    tally.acknowledged(ONE_PHASE, 100)
    tally.acknowledged(HOLD, 30)
    tally.acknowledged(POST, 30)
    tally.acknowledged(HOLD, 7)
    tally.acknowledged(VOID, 7)
    assert (tally.posted_min, tally.posted_max) == (130, 130)
    assert (tally.pending_min, tally.pending_max) == (0, 0)


def test_unknown_outcomes_widen_the_bounds_only_their_way():
    tally = Tally()
    tally.acknowledged(HOLD, 50)
    tally.uncertain(ONE_PHASE, 10)
    tally.uncertain(POST, 20)
    tally.uncertain(VOID, 5)
    assert (tally.posted_min, tally.posted_max) == (0, 30)
    assert (tally.pending_min, tally.pending_max) == (25, 50)


def test_reservoir_keeps_everything_until_full_then_stays_at_size():
    reservoir = Reservoir(10, seed=1)
    for i in range(7):
        reservoir.offer(i)
    assert reservoir.items == list(range(7))
    for i in range(7, 100_000):
        reservoir.offer(i)
    assert len(reservoir.items) == 10 and len(set(reservoir.items)) == 10
    assert reservoir.seen == 100_000


@pytest.mark.parametrize("chunk", [1, 3, 64, 5000])
def test_offering_many_keeps_the_sample_offering_one_by_one_keeps(chunk):
    one_by_one, many = Reservoir(10, seed=3), Reservoir(10, seed=3)
    stream = list(range(20_000))
    for i in stream:
        one_by_one.offer(i)
    for start in range(0, len(stream), chunk):
        many.offer_many(stream[start:start + chunk])
    assert many.items == one_by_one.items and many.seen == one_by_one.seen == 20_000


def test_acknowledged_items_sum_to_what_one_by_one_adds():
    items = [("t", amount, effect, "a", "b")
             for amount, effect in [(5, ONE_PHASE), (7, HOLD), (7, POST), (3, HOLD), (3, VOID)]]
    one_by_one, summed = Tally(), Tally()
    for item in items:
        one_by_one.acknowledged(item[2], item[1])
    summed.acknowledged_items(items)
    assert [getattr(summed, f) for f in Tally.__slots__] == \
        [getattr(one_by_one, f) for f in Tally.__slots__]


def test_reservoir_sample_is_uniform():
    hits = Counter()
    for seed in range(2000):
        reservoir = Reservoir(5, seed)
        for i in range(50):
            reservoir.offer(i)
        hits.update(reservoir.items)
    # Each of the 50 items is kept with probability 5/50: 200 times in 2000 runs.
    assert all(140 < hits[i] < 260 for i in range(50)), hits


def test_merged_reservoirs_weigh_each_side_by_its_stream_length():
    taken_from_big = 0
    for seed in range(200):
        big, small = Reservoir(10, seed), Reservoir(10, seed + 10_000)
        for i in range(9000):
            big.offer(("big", i))
        for i in range(1000):
            small.offer(("small", i))
        big.merge(small)
        assert len(big.items) == 10 and big.seen == 10_000
        taken_from_big += sum(side == "big" for side, _ in big.items)
    assert 0.85 < taken_from_big / 2000 < 0.95


class FakeSwitch:
    """Just the two lookups verification uses, over a dict of accounts and transfers."""

    def __init__(self, accounts: dict, transfers: dict):
        self.accounts, self.transfers = accounts, transfers

    async def lookup_accounts(self, ids):
        return [self.accounts[i] for i in ids if i in self.accounts]

    async def lookup_transfers(self, ids):
        return [self.transfers[i] for i in ids if i in self.transfers]


def account(id_: str, debits: int, credits: int) -> Account:
    return Account(id_, "p", "USD", 0, debits, credits, 0, 0, credits - debits, credits - debits)


def transfer(id_: str, amount: int) -> Transfer:
    return Transfer(id_, "a", "b", amount, "USD", None, False, 0, None, None, "posted", 1)


def evidence_of(items) -> Evidence:
    evidence = Evidence(Tally(), Reservoir(100, seed=1))
    for item in items:
        evidence.tally.acknowledged(item[2], item[1])
        evidence.sample.offer(item)
    return evidence


ITEMS = [("t1", 40, ONE_PHASE, "a", "b"), ("t2", 2, ONE_PHASE, "a", "b")]
BEFORE = Totals(2, 0, 0, 0, 0)


async def test_a_run_that_lost_nothing_passes():
    switch = FakeSwitch({"a": account("a", 42, 0), "b": account("b", 0, 42)},
                        {"t1": transfer("t1", 40), "t2": transfer("t2", 2)})
    verdict = await verify(switch, ["a", "b"], BEFORE, evidence_of(ITEMS))
    assert verdict.ok, verdict.checks
    assert [c["name"] for c in verdict.checks] == \
        ["accounts", "double_entry", "posted_moved", "pending_moved", "sample"]


async def test_a_lost_transfer_fails_loudly():
    switch = FakeSwitch({"a": account("a", 40, 0), "b": account("b", 0, 40)},
                        {"t1": transfer("t1", 40)})
    verdict = await verify(switch, ["a", "b"], BEFORE, evidence_of(ITEMS))
    failed = {c["name"]: c["detail"] for c in verdict.checks if not c["ok"]}
    assert not verdict.ok
    assert set(failed) == {"posted_moved", "sample"}
    assert "t2 missing" in failed["sample"]
    assert "40 moved, acknowledged transfers say 42" in failed["posted_moved"]


async def test_a_changed_amount_or_unbalanced_ledger_fails():
    switch = FakeSwitch({"a": account("a", 42, 0), "b": account("b", 0, 41)},
                        {"t1": transfer("t1", 39), "t2": transfer("t2", 2)})
    verdict = await verify(switch, ["a", "b"], BEFORE, evidence_of(ITEMS))
    failed = {c["name"]: c["detail"] for c in verdict.checks if not c["ok"]}
    assert set(failed) == {"double_entry", "sample"}
    assert "t1 has 39" in failed["sample"]
