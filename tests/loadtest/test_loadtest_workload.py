"""Request generation: determined by the seed, skewed when asked, shaped by mix and batch size."""

import random
from collections import Counter

import pytest

from payswitch.loadtest.workload import (
    COMPLETE, HOLD, LOOKUP, ONE_PHASE, PENDING, POST, SINGLE, VOID, AccountPicker, Workload,
)
from payswitch.protocol import decode_body, encode_request, validate_args

ACCOUNTS = [[f"p{p}-a{a}" for a in range(100)] for p in range(4)]
OWNER = {account: p for p, owned in enumerate(ACCOUNTS) for account in owned}
MIX = {"single": 80.0, "two_phase": 10.0, "lookup": 10.0}


def workload(seed=7, connection=0, mix=MIX, batch_size=1, skew="uniform", interbank=0.5,
             codec="msgpack", zipf_exponent=1.0) -> Workload:
    picker = AccountPicker(ACCOUNTS, skew, zipf_exponent, interbank, seed)
    return Workload(picker, seed=seed, connection=connection, run_id="run1", mix=mix,
                    batch_size=batch_size, amount_min=10, amount_max=20, codec=codec)


def frames(w: Workload, n: int) -> list[bytes]:
    return [w.next_request().frame for _ in range(n)]


def decoded(request) -> dict:
    return decode_body(request.frame[4:])[0]


def test_same_seed_and_connection_give_the_same_requests():
    assert frames(workload(seed=7), 500) == frames(workload(seed=7), 500)


def test_another_seed_or_connection_gives_other_requests():
    base = frames(workload(seed=7), 100)
    assert frames(workload(seed=8), 100) != base
    assert frames(workload(seed=7, connection=1), 100) != base


def test_requests_are_valid_and_numbered_from_one():
    w = workload(codec="json")
    for expected_id in range(1, 300):
        request = w.next_request()
        message = decoded(request)
        assert message["id"] == request.request_id == expected_id
        validate_args(message["op"], message["args"])  # raises on anything malformed
        if request.kind != LOOKUP:
            assert message["op"] == "transfer" and request.single


def test_transfer_ids_are_unique_and_carry_run_and_connection():
    w = workload(connection=3)
    ids = [item[0] for _ in range(1000) for item in w.next_request().items]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("run1.3.") for i in ids)


def test_amounts_in_range_and_accounts_distinct():
    w = workload()
    for _ in range(1000):
        for _, amount, _, debit, credit in w.next_request().items:
            assert 10 <= amount <= 20
            assert debit != credit


@pytest.mark.parametrize("interbank", [0.0, 0.3, 1.0])
def test_interbank_fraction(interbank):
    w = workload(interbank=interbank, mix={"single": 1.0, "two_phase": 0.0, "lookup": 0.0})
    pairs = [w.next_request().items[0][3:] for _ in range(4000)]
    share = sum(OWNER[d] != OWNER[c] for d, c in pairs) / len(pairs)
    assert abs(share - interbank) < 0.03


def test_mix_proportions_and_completions_follow_their_pending_transfers():
    w = workload(mix={"single": 60.0, "two_phase": 20.0, "lookup": 20.0})
    requests = [w.next_request() for _ in range(6000)]
    kinds = Counter(r.kind for r in requests)
    # Each two-phase draw makes two requests: 60 single, 20 pending, 20 complete, 20 lookup.
    assert abs(kinds[SINGLE] / len(requests) - 0.5) < 0.03
    assert abs(kinds[LOOKUP] / len(requests) - 1 / 6) < 0.03
    assert abs(kinds[PENDING] - kinds[COMPLETE]) <= 5
    held = {}
    for r in requests:
        message = decoded(r)
        if r.kind == PENDING:
            assert message["args"]["pending"] is True and r.items[0][2] == HOLD
            held[r.items[0][0]] = (r.request_id, r.items[0])
        elif r.kind == COMPLETE:
            args = message["args"]
            pending_id = args.get("post_pending_id") or args.get("void_pending_id")
            sent_in, pending_item = held.pop(pending_id)
            assert r.request_id > sent_in  # due 1-4 requests later; one completion per request
            _, amount, effect, debit, credit = r.items[0]
            assert effect == (POST if "post_pending_id" in args else VOID)
            assert (amount, debit, credit) == pending_item[1:2] + pending_item[3:]
        elif r.kind == LOOKUP:
            assert message["op"] == "lookup_accounts" and len(message["args"]["ids"]) == 2
        else:
            assert r.items[0][2] == ONE_PHASE
    effects = Counter(item[2] for r in requests if r.kind == COMPLETE for item in r.items)
    assert 0.1 < effects[VOID] / (effects[VOID] + effects[POST]) < 0.3


def test_batches_carry_batch_size_transfers():
    w = workload(batch_size=50, mix={"single": 1.0, "two_phase": 1.0, "lookup": 0.0})
    for _ in range(20):
        request = w.next_request()
        message = decoded(request)
        assert message["op"] == "create_transfers" and not request.single
        assert len(message["args"]["transfers"]) == len(request.items) == 50
        validate_args("create_transfers", message["args"])


def test_zipf_makes_a_few_accounts_hot():
    def top_share(skew: str) -> float:
        picker = AccountPicker(ACCOUNTS, skew, 1.0, 0.5, seed=3)
        rng = random.Random(1)
        counts = Counter(picker.pair(rng)[0] for _ in range(20_000))
        hottest = sum(n for _, n in counts.most_common(4))  # 1% of the 400 accounts
        return hottest / 20_000

    assert top_share("uniform") < 0.03
    assert top_share("zipf") > 0.25


def test_zipf_hot_accounts_are_spread_over_participants_and_agreed_by_seed():
    def hottest(seed: int) -> list[str]:
        picker = AccountPicker(ACCOUNTS, "zipf", 1.2, 0.5, seed=seed)
        rng = random.Random(seed)
        return [a for a, _ in Counter(picker.pair(rng)[0] for _ in range(20_000)).most_common(8)]

    assert hottest(5)[:3] == hottest(5)[:3]  # two pickers, one seed: the same hot accounts
    assert hottest(5)[:3] != hottest(6)[:3]
    assert len({OWNER[a] for a in hottest(5)}) > 1


@pytest.mark.parametrize("batch_size", [1, 15, 16, 300])
def test_msgpack_frames_are_byte_for_byte_those_encode_request_makes(batch_size):
    w = workload(batch_size=batch_size, mix={"single": 2.0, "two_phase": 1.0, "lookup": 1.0})
    kinds = set()
    for _ in range(400):
        request = w.next_request()
        message, codec = decode_body(request.frame[4:])
        assert codec == "msgpack"
        assert request.frame == encode_request(message["id"], message["op"], message["args"],
                                               "msgpack")
        kinds.add(request.kind)
    assert kinds == {SINGLE, PENDING, COMPLETE, LOOKUP}


@pytest.mark.parametrize("mix", [{"single": 1.0, "two_phase": 0.0, "lookup": 0.0}, MIX])
@pytest.mark.parametrize("codec", ["msgpack", "json"])
def test_requests_made_several_at_a_time_are_those_made_one_by_one(mix, codec):
    one_by_one = workload(mix=mix, codec=codec)
    at_once = workload(mix=mix, codec=codec)
    expected = [one_by_one.next_request() for _ in range(100)]
    made = [request for count in (1, 16, 3, 80) for request in at_once.next_requests(count)]
    assert [(r.request_id, r.frame, r.kind, r.items, r.single) for r in made[:100]] == \
        [(r.request_id, r.frame, r.kind, r.items, r.single) for r in expected]


def test_pairs_drawn_several_at_a_time_are_those_drawn_one_by_one():
    picker = AccountPicker(ACCOUNTS, "zipf", 1.0, 0.5, seed=3)
    one_by_one, at_once = random.Random(9), random.Random(9)
    expected = [picker.pair(one_by_one) for _ in range(200)]
    assert picker.pairs(at_once, 1) + picker.pairs(at_once, 120) + picker.pairs(at_once, 79) \
        == expected
