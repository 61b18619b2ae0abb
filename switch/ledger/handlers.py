"""The executors' handlers, bound to the ops protocol/ops.py declares.

The ledger, the batch book and the service each mark a method per op with `@handles(op)`;
`handler_table` compares them with the declarations once, when the executor's module is
imported, so an op declared without a handler, or a handler of an op the executor is not
declared to run, stops the switch from starting. `bind` gives the dispatch table: one dict
lookup per request, and the admin check of an operator's (or internal) op is wrapped around its
handler there, so the other ops pay nothing for it.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from payswitch.protocol.ops import ADMIN_ONLY, ALL_OPS, INTERNAL

from .codes import ADMIN, FORBIDDEN, LedgerError, admin_only

HANDLED_OP = "handled_op"  # the attribute `handles` sets on a handler

Handler = Callable[..., Any]  # the handlers' arguments differ by executor and op
_Method = TypeVar("_Method", bound=Handler)


class HandlerMismatch(Exception):
    """An executor's handlers differ from the ops declared for it."""


def handles(op: str) -> Callable[[_Method], _Method]:
    """Marks a method as the handler of the declared op `op`."""
    def mark(method: _Method) -> _Method:
        setattr(method, HANDLED_OP, op)
        return method
    return mark


def handler_table(cls: type, ops: frozenset[str]) -> dict[str, str]:
    """op -> the name of `cls`'s method that handles it, exactly for `ops`; else
    HandlerMismatch naming what is missing or extra."""
    table: dict[str, str] = {}
    for name, attribute in vars(cls).items():
        op = getattr(attribute, HANDLED_OP, None)
        if op is None:
            continue
        if op in table:
            raise HandlerMismatch(f"{cls.__name__}.{table[op]} and {cls.__name__}.{name} "
                                  f"both handle {op}")
        table[op] = name
    if table.keys() != ops:
        raise HandlerMismatch(
            f"{cls.__name__}: ops declared for it without a handler: "
            f"{sorted(ops - table.keys())}; handlers of ops not declared for it "
            f"(protocol/ops.py): {sorted(table.keys() - ops)}")
    return table


def bind(instance: object, table: dict[str, str], caller_at: int = 0) -> dict[str, Handler]:
    """op -> `instance`'s bound handler; `caller_at` is the position of the caller among the
    handlers' arguments."""
    bound: dict[str, Handler] = {}
    for op, name in table.items():
        handler = getattr(instance, name)
        if ALL_OPS[op].access in (ADMIN_ONLY, INTERNAL):
            handler = _admin_only(op, handler, caller_at)
        bound[op] = handler
    return bound


def dispatch_table(instance: object, table: dict[str, str]) -> dict[str, tuple[Handler, bool]]:
    """op -> (bound handler, mutating): a state component's dispatch."""
    return {op: (handler, ALL_OPS[op].mutating) for op, handler in bind(instance, table).items()}


def _admin_only(op: str, handler: Handler, caller_at: int) -> Handler:
    def checked(*args: Any) -> Any:
        caller = args[caller_at]
        if caller != ADMIN:
            raise LedgerError(FORBIDDEN, admin_only(op, caller))
        return handler(*args)
    return checked
