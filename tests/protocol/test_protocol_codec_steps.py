"""encode_body_in_steps: a long reply in pieces whose concatenation is exactly encode_body's."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from payswitch.protocol import JSON, MSGPACK, encode_body, encode_body_in_steps

leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                   st.text(max_size=12), st.binary(max_size=8))
items = st.dictionaries(st.text(max_size=6), leaves, max_size=4) | leaves
results = st.fixed_dictionaries({
    "before": leaves, "rows": st.lists(items, min_size=0, max_size=60), "after": leaves})
ids = st.one_of(st.integers(-(2**63), 2**64 - 1), st.text(max_size=20))


@given(request_id=ids, result=results, step_items=st.integers(1, 20),
       codec=st.sampled_from([JSON, MSGPACK]))
def test_pieces_join_to_the_whole_body(request_id, result, step_items, codec):
    reply = {"id": request_id, "ok": True, "result": result}
    pieces = encode_body_in_steps(reply, codec, step_items)
    if len(result["rows"]) <= step_items:
        assert pieces is None  # short: encoded at once
        return
    pieces = list(pieces)
    assert b"".join(pieces) == encode_body(reply, codec)
    assert len(pieces) >= len(result["rows"]) // step_items  # one piece per step of items


@pytest.mark.parametrize("reply", [
    {"id": 1, "ok": False, "error": {"code": "bad_request", "message": "x"}},
    {"id": 1, "ok": True, "result": {"accounts": list(range(128))}},  # STEP_ITEMS exactly
    {"id": 1, "ok": True, "result": {"n": 5}},
])
def test_errors_and_short_results_are_not_stepped(reply):
    assert encode_body_in_steps(reply, JSON) is None
    assert encode_body_in_steps(reply, MSGPACK) is None


def test_a_step_encodes_at_most_step_items_items():
    rows = [{"id": f"a-{n}", "balance": n} for n in range(1000)]
    reply = {"id": "r", "ok": True, "result": {"accounts": rows, "next": None}}
    for codec in (JSON, MSGPACK):
        pieces = list(encode_body_in_steps(reply, codec, 100))
        assert b"".join(pieces) == encode_body(reply, codec)
        assert max(len(piece) for piece in pieces) < 2 * len(encode_body(
            {"accounts": rows[:100]}, codec))


def test_step_items_out_of_range():
    with pytest.raises(ValueError):
        encode_body_in_steps({"result": {}}, JSON, 1 << 16)
