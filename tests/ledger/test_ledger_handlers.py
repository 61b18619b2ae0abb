"""The executors' handlers bound to the declared ops: every op answered by exactly one of them,
a mismatch refused at import, and the admin check of the declarations applied to each."""

import pytest

from payswitch.protocol.ops import ADMIN_ONLY, ALL_OPS, INTERNAL, LEDGER, applied_by
from payswitch.switch.batches.book import BatchBook
from payswitch.switch.ledger import Ledger, LedgerError
from payswitch.switch.ledger.codes import admin_only
from payswitch.switch.ledger.handlers import HandlerMismatch, handler_table, handles
from payswitch.switch.service import _LOCAL_HANDLERS
from payswitch.switch.state import SwitchState


def test_every_op_is_answered_by_exactly_one_executor():
    state = SwitchState()
    tables = {"service": set(_LOCAL_HANDLERS), "ledger": set(state.ledger._ops),
              "batches": set(state.batches.ops)}
    for op, spec in ALL_OPS.items():
        handled_by = [name for name, ops in tables.items() if op in ops]
        if spec.executor == "service" and spec.applied_by is not None:
            # the service answers it and logs its change as the state component's step
            assert handled_by == ["service", spec.applied_by], op
        else:
            assert handled_by == [spec.executor], op
    assert set().union(*tables.values()) == set(ALL_OPS)


def test_an_op_the_state_does_not_know_is_unknown_as_before():
    state = SwitchState()
    for op in ("nonsense", "hello", "stats"):
        executed = state.execute("admin", op, {}, 1)
        assert isinstance(executed.error, LedgerError) and not executed.changed
        assert (executed.error.code, executed.error.message) == ("unknown_op",
                                                                 f"unknown op {op!r}")


def declared_ledger_class(*handled: str) -> type:
    """A class with a handler for each of `handled`, as an executor declares them."""
    methods = {f"_{op}": handles(op)(lambda self, caller, args: {}) for op in handled}
    return type("Executor", (), methods)


def test_a_declared_op_without_a_handler_stops_the_start():
    ledger_ops = sorted(applied_by(LEDGER))
    with pytest.raises(HandlerMismatch, match=r"without a handler: \['transfer'\]"):
        handler_table(declared_ledger_class(*(op for op in ledger_ops if op != "transfer")),
                      applied_by(LEDGER))


def test_a_handler_without_a_declaration_stops_the_start():
    with pytest.raises(HandlerMismatch, match=r"not declared for it .*\['get_batch', 'nope'\]"):
        handler_table(declared_ledger_class(*applied_by(LEDGER), "nope", "get_batch"),
                      applied_by(LEDGER))


def test_two_handlers_of_one_op_stop_the_start():
    cls = declared_ledger_class(*applied_by(LEDGER))
    cls._again = handles("transfer")(lambda self, caller, args: {})
    with pytest.raises(HandlerMismatch, match="both handle transfer"):
        handler_table(cls, applied_by(LEDGER))


@pytest.mark.parametrize("op", sorted(op for op, spec in ALL_OPS.items()
                                      if spec.access in (ADMIN_ONLY, INTERNAL)
                                      and spec.applied_by is not None))
def test_the_operators_and_internal_ops_refuse_a_participant_before_anything_else(op):
    state = SwitchState()
    before = state.snapshot_state()
    executed = state.execute("bank-a", op, {}, 1)  # args are not even looked at
    assert isinstance(executed.error, LedgerError) and not executed.changed
    assert (executed.error.code, executed.error.message) == ("forbidden",
                                                             admin_only(op, "bank-a"))
    assert state.snapshot_state() == before


def test_the_hot_path_is_not_wrapped():
    """Ops anyone with a session may call go straight to their handler (one dict lookup)."""
    ledger, book = Ledger(), BatchBook(Ledger())
    for table, component in ((ledger._ops, ledger), (book.ops, book)):
        for op, (handler, _) in table.items():
            if ALL_OPS[op].access not in (ADMIN_ONLY, INTERNAL):
                assert handler.__self__ is component, op
