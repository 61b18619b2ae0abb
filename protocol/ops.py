"""Every operation, declared once: its arguments, who may call it, whether it changes state,
which component executes it, what it answers and how the SDK and CLI expose it.

The rest derives from here: argument validation (`validate_args`), the session, standby and
admin checks of the server, the dispatch tables of the ledger, the batch book and the service
(each binds its handlers to these names and refuses to start when they differ, see
switch/ledger/handlers.py) and the SDK's methods. Pure data, importable by client and server alike.
"""

from typing import Any, Callable, NamedTuple

from . import validate as v
from .codes import BAD_REQUEST, UNKNOWN_OP
from .errors import ProtocolError
from .transfer import normalize_transfer

# The operator's participant id: a hello as "admin" with the operator token.
ADMIN = "admin"

# Who may call an op.
ANYONE = "anyone"  # no session needed
SESSION = "session"  # any participant with a session; the executor limits it to its own
ADMIN_ONLY = "admin"  # the operator only; anyone else is answered `forbidden`
INTERNAL = "internal"  # the switch's own step (as admin), in the WAL but never on the wire
# Requests of one participant the switch executes together (transfer_group), as that
# participant: in the WAL but never on the wire; the executor limits it to the caller's own.
GROUPED = "grouped"
NOT_ON_THE_WIRE = (INTERNAL, GROUPED)

# A request's args in, normalized args out; ProtocolError (`bad_request`) when they are not valid.
Normalizer = Callable[[dict[str, Any]], dict[str, Any]]

# Who executes an op.
SERVICE = "service"  # the service itself, outside the replayed state (switch/service.py)
LEDGER = "ledger"  # the ledger (switch/ledger/ledger.py)
BATCHES = "batches"  # the batch book (switch/batches/book.py)


class OpSpec(NamedTuple):
    name: str
    mutating: bool  # may change state, so the server logs it to the WAL
    normalize: Normalizer | None  # None: internal, the switch makes its args
    access: str  # ANYONE, SESSION, ADMIN_ONLY, INTERNAL or GROUPED
    executor: str  # SERVICE, LEDGER or BATCHES: whose handler answers it
    # The state component (LEDGER or BATCHES) whose handler applies it, as a request and when
    # the WAL is replayed: the executor, or for an op the service answers the one its logged
    # step goes to (rotate_token's), else None.
    applied_by: str | None
    standby: bool  # answered by any node about itself, also one that is not the primary
    reply: str  # the result's shape, as docs/protocol.md details it
    sdk: str | None  # the AsyncClient method (made from this declaration unless hand-written)
    cli: str | None  # the dedicated `python -m client` command (every op with `sdk`: `call OP`)


def _op(name: str, *, mutating: bool, normalize: Normalizer | None, access: str,
        executor: str = LEDGER, applied_by: str | None = None, standby: bool = False, reply: str,
        sdk: str | None = None, cli: str | None = None) -> OpSpec:
    if executor != SERVICE:
        applied_by = executor
    if (normalize is None) != (access in NOT_ON_THE_WIRE):
        raise ValueError(f"op {name}: a request's args need a normalizer, internal and "
                         f"grouped ones none")
    return OpSpec(name, mutating, normalize, access, executor, applied_by, standby, reply,
                  sdk, cli)


def _internal(name: str, executor: str, reply: str, access: str = INTERNAL) -> OpSpec:
    return _op(name, mutating=True, normalize=None, access=access, executor=executor,
               reply=reply)


_DECLARED = (
    # the session and the node
    _op("ping", mutating=False, normalize=v.no_args, access=ANYONE, executor=SERVICE,
        standby=True, reply="{}", sdk="ping", cli="ping"),
    _op("hello", mutating=False, normalize=v.hello_args, access=ANYONE, executor=SERVICE,
        standby=True, reply="{participant, server, max_frame_bytes}"),
    _op("stats", mutating=False, normalize=v.no_args, access=ADMIN_ONLY, executor=SERVICE,
        standby=True, reply="the node's statistics {server, uptime_s, wal, ledger, ...}",
        sdk="stats", cli="stats"),
    _op("state_digest", mutating=False, normalize=v.no_args, access=ADMIN_ONLY,
        executor=SERVICE, standby=True, reply="{seq, digest}", sdk="state_digest",
        cli="state-digest"),
    # participants and accounts
    _op("create_participants", mutating=True, normalize=v.create_participants_args,
        access=ADMIN_ONLY, reply="{results: [{status, token?, message?}]}",
        sdk="create_participants", cli="create-participant"),
    _op("set_participant", mutating=True, normalize=v.set_participant_args, access=ADMIN_ONLY,
        reply="the participant {id, name, net_debit_cap, suspended, settlement_accounts}",
        sdk="set_participant", cli="set-participant"),
    _op("rotate_token", mutating=True, normalize=v.rotate_token_args, access=ADMIN_ONLY,
        executor=SERVICE, applied_by=LEDGER, reply="{participant, token}",
        sdk="rotate_token", cli="rotate-token"),
    _op("get_participant", mutating=False, normalize=v.one_id("id"), access=SESSION,
        reply="the participant {id, name, net_debit_cap, suspended, settlement_accounts, "
              "positions: [{currency, debits, credits, net, reserved, headroom}]}",
        sdk="get_participant"),
    _op("create_accounts", mutating=True, normalize=v.create_accounts_args, access=SESSION,
        reply="{results: [{status, message?}]}", sdk="create_accounts", cli="create-account"),
    _op("lookup_accounts", mutating=False, normalize=v.lookup_args, access=SESSION,
        reply="{accounts: [account]}", sdk="lookup_accounts", cli="balance"),
    # transfers
    _op("create_transfers", mutating=True, normalize=v.create_transfers_args, access=SESSION,
        reply="{results: [{status, timestamp, message?}]}", sdk="create_transfers"),
    _op("transfer", mutating=True, normalize=normalize_transfer, access=SESSION,
        reply="{status, timestamp}", sdk="transfer", cli="transfer"),
    _op("lookup_transfers", mutating=False, normalize=v.lookup_args, access=SESSION,
        reply="{transfers: [transfer]}", sdk="lookup_transfers", cli="lookup"),
    _op("get_account_transfers", mutating=False, normalize=v.account_transfers_args,
        access=SESSION, reply="{transfers: [transfer], next, next_cursor}",
        sdk="get_account_transfers", cli="history"),
    # settlement windows
    _op("close_window", mutating=True, normalize=v.close_window_args, access=ADMIN_ONLY,
        reply="the closed window's report (as get_window)", sdk="close_window",
        cli="close-window"),
    _op("get_window", mutating=False, normalize=v.window_id_args, access=SESSION,
        reply="{window_id, state, opened_at, closed_at, transfers, positions, instructions, "
              "settlement_transfers}", sdk="get_window", cli="window report"),
    _op("get_window_matrix", mutating=False, normalize=v.window_id_args, access=SESSION,
        reply="{window_id, state, rows: [{payer, payee, currency, amount}]}",
        sdk="get_window_matrix", cli="window matrix"),
    _op("list_windows", mutating=False, normalize=v.no_args, access=SESSION,
        reply="{windows: [{window_id, state, opened_at, closed_at}]}", sdk="list_windows",
        cli="windows"),
    # batches
    _op("upload_batch_part", mutating=True, normalize=v.upload_batch_part_args, access=SESSION,
        executor=BATCHES, reply="{batch_id, seq, bytes}", sdk="upload_batch_part", cli="batch submit"),
    _op("submit_batch", mutating=True, normalize=v.submit_batch_args, access=SESSION,
        executor=BATCHES, reply="{batch_id, state}", sdk="submit_batch", cli="batch submit"),
    _op("get_batch", mutating=False, normalize=v.one_id("batch_id"), access=SESSION,
        executor=BATCHES, reply="{batch_id, format, state, total, created, failed, processed, "
                                "control, problems}", sdk="get_batch", cli="batch status"),
    _op("get_batch_results", mutating=False, normalize=v.batch_results_args, access=SESSION,
        executor=BATCHES, reply="{results: [{index, id, status}], next}",
        sdk="get_batch_results", cli="batch results"),
    # the switch's own steps
    _internal("expire_pending", LEDGER, "{}"),
    _internal("open_window", LEDGER, "{window_id}"),
    _internal("batch_validated", BATCHES, "{finished?}"),
    _internal("batch_apply", BATCHES, "{finished?}"),
    # a run of plain `transfer` requests read together: {ids, debit_accounts, credit_accounts,
    # amounts}, one column per field as protocol.plain_columns makes them
    _internal("transfer_group", LEDGER, "{results: [each transfer's result or error]}",
              access=GROUPED),
)

# Every op, internal ones included: what the executors bind their handlers to.
ALL_OPS: dict[str, OpSpec] = {spec.name: spec for spec in _DECLARED}
# The ops a request may name (the wire contract's).
OPS: dict[str, OpSpec] = {name: spec for name, spec in ALL_OPS.items()
                          if spec.access not in NOT_ON_THE_WIRE}
NO_SESSION_OPS = frozenset(name for name, spec in OPS.items() if spec.access == ANYONE)
STANDBY_OPS = frozenset(name for name, spec in OPS.items() if spec.standby)
# Each of those ops' normalizer (`_op` gives every one of them one).
_NORMALIZERS: dict[str, Normalizer] = {
    name: spec.normalize for name, spec in OPS.items() if spec.normalize is not None}


def answered_by(executor: str) -> frozenset[str]:
    """The names of the ops whose requests `executor` answers."""
    return frozenset(name for name, spec in ALL_OPS.items() if spec.executor == executor)


def applied_by(component: str) -> frozenset[str]:
    """The names of the ops the state component `component` applies."""
    return frozenset(name for name, spec in ALL_OPS.items() if spec.applied_by == component)


def is_known_op(op: object) -> bool:
    return type(op) is str and op in OPS


def validate_args(op: str, args: object) -> dict[str, Any]:
    """Normalized args of `op`, or ProtocolError (`unknown_op`, `bad_request`)."""
    normalize = _NORMALIZERS.get(op)
    if normalize is None:
        raise ProtocolError(UNKNOWN_OP, f"unknown op {op!r}")
    if type(args) is not dict:
        raise ProtocolError(BAD_REQUEST, "args must be a map")
    return normalize(args)
