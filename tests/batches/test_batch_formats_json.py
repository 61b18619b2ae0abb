"""JSON batches: transfer objects from `items` or from uploaded JSON content."""

import json

from payswitch.protocol import normalize_transfer
from payswitch.protocol.batch_files import BatchProblem, parse_batch

GOOD = [
    {"id": "t-1", "debit_account": "acc-a", "credit_account": "acc-b", "amount": 1050,
     "currency": "EUR", "reference": "inv 7"},
    {"id": "t-2", "debit_account": "acc-b", "credit_account": "acc-a", "amount": 5, "linked": False},
]


def where_and_reason(result) -> list:
    return [(problem.where, problem.reason) for problem in result.errors]


def test_items_become_normalized_transfers_with_control_totals():
    result = parse_batch("json", None, GOOD)
    assert result.errors == []
    assert result.items == [normalize_transfer(item) for item in GOOD]
    assert all(item["linked"] is False for item in result.items)
    assert result.control == {"count": 2, "sum": 1055}
    assert result.meta == {}


def test_invalid_amounts_stay_items_for_the_ledger_and_count_zero():
    items = [{**GOOD[0], "amount": amount} for amount in (0, -5, 1.5, "10", True, 2**63)]
    items.append(GOOD[1])
    result = parse_batch("json", None, items)
    assert result.errors == []
    assert [item["amount"] for item in result.items] == [0] * 6 + [5]
    assert result.control == {"count": 7, "sum": 5}


def test_structural_faults_and_two_phase_items_are_problems_naming_the_item():
    items = [
        GOOD[0],
        {**GOOD[0], "id": "bad id"},
        {**GOOD[0], "pending": True},
        {**GOOD[0], "pending": True, "timeout": 30},
        {"id": "p-1", "post_pending_id": "t-0"},
        {"id": "v-1", "void_pending_id": "t-0"},
        {**GOOD[0], "linked": True},
        {**GOOD[0], "colour": "red"},
        "not a map",
        {"id": "t-9", "debit_account": "acc-a", "amount": 1},
    ]
    found = dict(where_and_reason(parse_batch("json", None, items)))
    assert sorted(found) == [f"item {n}" for n in range(1, 10)]
    assert found["item 1"].startswith("id must be")
    for n, key in ((2, "pending"), (3, "pending"), (4, "post_pending_id"),
                   (5, "void_pending_id"), (6, "linked")):
        assert found[f"item {n}"] == f"{key}: only one-phase transfers are allowed in batches"
    assert found["item 7"] == "unknown field 'colour'"
    assert found["item 8"] == "transfer must be a map"
    assert found["item 9"].startswith("debit_account and credit_account are required")


def test_more_items_than_max_items_is_a_problem():
    result = parse_batch("json", None, GOOD * 3, max_items=4)
    assert result.errors == [BatchProblem("item 4", "more than 4 items")]


def test_uploaded_content_holds_a_json_array_of_the_same_objects():
    content = json.dumps(GOOD, indent=2).encode("utf-8")
    result = parse_batch("json", content, None)
    assert result.errors == []
    assert result.items == [normalize_transfer(item) for item in GOOD]


def test_content_that_is_not_a_strict_json_array_is_a_content_problem():
    bad = [b'{"id": "t-1"}', b"[1, 2", b'[{"id": "a", "id": "b"}]', b"[NaN]",
           b'[{"id": "\\ud800"}]', b"[\xff]", b"[] []"]
    for content in bad:
        result = parse_batch("json", content, None)
        assert [problem.where for problem in result.errors] == ["content"], content
    assert where_and_reason(parse_batch("json", None, None)) == [("content", "no items and no content")]


def test_content_may_start_with_a_byte_order_mark_and_whitespace():
    content = b'\xef\xbb\xbf \r\n[{"id": "j-1", "debit_account": "a", "credit_account": "b", "amount": 5}]\n'
    parsed = parse_batch("json", content, None)
    assert parsed.errors == [] and [item["id"] for item in parsed.items] == ["j-1"]
