"""The declarations of protocol/ops.py: well-formed, the contract's sets derive from them, and
docs/protocol.md's table of operations says what they declare."""

import re
from pathlib import Path

import pytest

from payswitch.protocol import OPS, ProtocolError, codes, validate_args
from payswitch.protocol.ops import (
    ADMIN_ONLY, ALL_OPS, ANYONE, BATCHES, GROUPED, INTERNAL, LEDGER, NO_SESSION_OPS, SERVICE, SESSION,
    STANDBY_OPS, answered_by, applied_by,
)

PROTOCOL_MD = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
TABLE_ROW = re.compile(r"^\| (`.+?) \| (yes|no) \| (.+?) \|$", re.MULTILINE)


def test_each_op_is_declared_once_with_one_executor():
    assert all(spec.name == name for name, spec in ALL_OPS.items())
    executors = [answered_by(executor) for executor in (SERVICE, LEDGER, BATCHES)]
    assert sorted(op for ops in executors for op in ops) == sorted(ALL_OPS)
    for spec in ALL_OPS.values():
        assert spec.access in (ANYONE, SESSION, ADMIN_ONLY, INTERNAL, GROUPED), spec
        assert spec.reply, spec
        if spec.executor != SERVICE:
            assert spec.applied_by == spec.executor, spec
    # the state components apply their own ops and what the service logs through them
    assert applied_by(LEDGER) == answered_by(LEDGER) | {"rotate_token"}
    assert applied_by(BATCHES) == answered_by(BATCHES)


def test_the_contracts_sets_derive_from_the_declarations():
    assert NO_SESSION_OPS == {"ping", "hello"}
    assert STANDBY_OPS == {"ping", "hello", "stats", "state_digest"}
    assert answered_by(SERVICE) == {"ping", "hello", "stats", "state_digest", "rotate_token"}
    assert {op for op, spec in OPS.items() if spec.access == ADMIN_ONLY} == {
        "create_participants", "set_participant", "rotate_token", "close_window", "stats",
        "state_digest"}
    internal = {op for op, spec in ALL_OPS.items() if spec.access == INTERNAL}
    assert internal == {"expire_pending", "open_window", "batch_validated", "batch_apply"}
    grouped = {op for op, spec in ALL_OPS.items() if spec.access == GROUPED}
    assert grouped == {"transfer_group"}
    assert set(OPS) == set(ALL_OPS) - internal - grouped
    assert all(spec.mutating and spec.normalize is None for op, spec in ALL_OPS.items()
               if op in internal | grouped)


@pytest.mark.parametrize("op", ["drop_tables", "expire_pending", "batch_apply", "transfer_group"])
def test_an_unknown_or_internal_op_is_unknown_on_the_wire(op):
    with pytest.raises(ProtocolError) as info:
        validate_args(op, {})
    assert (info.value.code, info.value.message) == (codes.UNKNOWN_OP, f"unknown op {op!r}")


def test_the_protocol_guides_table_of_operations_says_what_is_declared():
    table = {}
    for names, mutating, who in TABLE_ROW.findall(PROTOCOL_MD.read_text()):
        for name in re.findall(r"`(\w+)`", names):
            table[name] = (mutating == "yes", who)
    assert set(table) == set(OPS)
    for op, (mutating, who) in table.items():
        spec = OPS[op]
        assert mutating == spec.mutating, op
        assert (who == "admin") == (spec.access == ADMIN_ONLY), (op, who)
        assert who.startswith("anyone") == (spec.access == ANYONE), (op, who)
