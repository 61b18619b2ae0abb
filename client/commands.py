"""The operator CLI's commands: each turns parsed arguments into calls and an `Output`."""

import argparse
import csv
import io
import json
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from payswitch.protocol import codes
from payswitch.protocol.ops import OPS

from .async_client import AsyncClient
from .errors import SwitchError, error_from_code
from .results import Transfer, TransferResult, Window, WindowMatrix
from .tables import fields, iso_utc, table


@dataclass(frozen=True)
class Output:
    data: Any  # printed as JSON with --json
    text: str  # printed otherwise
    error: SwitchError | None = None  # printed to stderr after the output; exit code 1


def new_transfer_id() -> str:
    return "cli-" + secrets.token_hex(12)


def _item_output(kind: str, id: str, status: str, message: str | None = None,
                 **extra: Any) -> Output:
    data = {"id": id, "status": status, **extra}
    if status not in codes.SUCCESS:
        if message is not None:
            data["message"] = message
        return Output(data, "", error_from_code(status, message or f"{kind} {id}"))
    shown = [(name, iso_utc(value) if name == "timestamp" else value)
             for name, value in extra.items()]
    return Output(data, fields([(kind, id), ("status", status), *shown]))


async def create_participant(client: AsyncClient, args: argparse.Namespace) -> Output:
    item: dict[str, Any] = {"id": args.id, "name": args.name}
    if args.caps:
        item["net_debit_cap"] = dict(args.caps)
    [result] = await client.create_participants([item])
    output = _item_output("participant", args.id, result.status, result.message,
                          token=result.token)
    if result.token is None:
        return output
    return Output(output.data, output.text + "\n(the token is shown only once: store it now)")


async def rotate_token(client: AsyncClient, args: argparse.Namespace) -> Output:
    token = await client.rotate_token(args.id)
    where = ("the switch wrote it to admin.token in its data directory" if args.id == "admin"
             else "the token is shown only once: store it now")
    return Output({"participant": args.id, "token": token},
                  fields([("participant", args.id), ("token", token)]) + f"\n({where}; "
                  f"the old token no longer works)")


async def set_participant(client: AsyncClient, args: argparse.Namespace) -> Output:
    suspended = {"suspend": True, "resume": False}.get(args.suspension)
    result = await client.set_participant(
        args.id, net_debit_cap=dict(args.caps) if args.caps else None, suspended=suspended,
        settlement_accounts=dict(args.settlement_accounts) if args.settlement_accounts else None)
    return Output(result, fields(result.items()))


async def create_account(client: AsyncClient, args: argparse.Namespace) -> Output:
    item = {"id": args.id, "participant": args.owner, "currency": args.currency,
            "overdraft_limit": args.overdraft_limit}
    [result] = await client.create_accounts([item])
    return _item_output("account", args.id, result.status, result.message)


def _transfer_output(id: str, result: TransferResult) -> Output:
    return _item_output("transfer", id, result.status, result.message,
                        timestamp=result.timestamp)


async def transfer(client: AsyncClient, args: argparse.Namespace) -> Output:
    id = args.id or new_transfer_id()
    result = await client.transfer(
        id, args.debit, args.credit, args.amount, currency=args.currency,
        reference=args.reference, pending=args.pending, timeout_s=args.timeout)
    return _transfer_output(id, result)


async def post(client: AsyncClient, args: argparse.Namespace) -> Output:
    id = args.id or new_transfer_id()
    return _transfer_output(id, await client.post_pending(id, args.pending_id, args.amount))


async def void(client: AsyncClient, args: argparse.Namespace) -> Output:
    id = args.id or new_transfer_id()
    return _transfer_output(id, await client.void_pending(id, args.pending_id))


def _missing(code: str, wanted: list[str], found: set[str]) -> SwitchError | None:
    """Lookups silently omit unknown and invisible ids; the operator should hear about them."""
    missing = [i for i in wanted if i not in found]
    return error_from_code(code, ", ".join(missing)) if missing else None


async def balance(client: AsyncClient, args: argparse.Namespace) -> Output:
    wanted = list(dict.fromkeys(args.accounts))
    by_id = {a.id: a for a in await client.lookup_accounts(wanted)}
    accounts = [by_id[i] for i in wanted if i in by_id]
    text = table(
        ["account", "participant", "currency", "balance", "available", "debits_pending",
         "credits_pending", "overdraft_limit"],
        [[a.id, a.participant, a.currency, a.balance, a.available, a.debits_pending,
          a.credits_pending, "unlimited" if a.overdraft_limit is None else a.overdraft_limit]
         for a in accounts])
    return Output([asdict(a) for a in accounts], text,
                  _missing(codes.ACCOUNT_NOT_FOUND, wanted, set(by_id)))


def _transfer_table(transfers: list[Transfer]) -> str:
    return table(
        ["id", "state", "debit_account", "credit_account", "amount", "currency", "timestamp",
         "pending_id", "reference"],
        [[t.id, t.state, t.debit_account, t.credit_account, t.amount, t.currency,
          iso_utc(t.timestamp), t.post_pending_id or t.void_pending_id, t.reference]
         for t in transfers])


async def lookup(client: AsyncClient, args: argparse.Namespace) -> Output:
    wanted = list(dict.fromkeys(args.transfer_ids))
    by_id = {t.id: t for t in await client.lookup_transfers(wanted)}
    transfers = [by_id[i] for i in wanted if i in by_id]
    return Output([asdict(t) for t in transfers], _transfer_table(transfers),
                  _missing("transfer_not_found", wanted, set(by_id)))


async def history(client: AsyncClient, args: argparse.Namespace) -> Output:
    page = await client.get_account_transfers(args.account, after=args.after, limit=args.limit)
    text = _transfer_table(list(page.transfers))
    if page.next is not None:
        text += f"\nmore: --after {page.next}"
    return Output(asdict(page), text)


async def call(client: AsyncClient, args: argparse.Namespace) -> Output:
    """Any op by name with its wire args; a read is resent like the SDK resends it."""
    result = await client.request(args.op, args.args, retry=not OPS[args.op].mutating)
    return Output(result, json.dumps(result, indent=2))


async def ping(client: AsyncClient, args: argparse.Namespace) -> Output:
    """Round trips of `ping` on the open connection (connecting and hello are not counted)."""
    round_trips_ns = []
    for _ in range(args.count):
        started = time.perf_counter_ns()
        await client.ping()
        round_trips_ns.append(time.perf_counter_ns() - started)
    lines = [f"pong from {client.address} in {ns / 1e6:.3f} ms" for ns in round_trips_ns]
    return Output({"host": client.host, "port": client.port, "round_trip_ns": round_trips_ns},
                  "\n".join(lines))


# Keys of `stats` shown as tables of their own rather than as flattened lines.
STATS_LATENCIES = (("latency_ms", "requests"), ("fsync_ms", "WAL fsyncs"))


async def stats(client: AsyncClient, args: argparse.Namespace) -> Output:
    result = await client.stats()
    tabled = {"errors_by_code", *(key for key, _ in STATS_LATENCIES)}
    parts = [fields(_flatten({k: v for k, v in result.items() if k not in tabled}))]
    latencies = [(label, result[key]) for key, label in STATS_LATENCIES if key in result]
    if latencies:
        parts.append(table(["latency (ms)", "count", "p50", "p90", "p99", "max"], [
            [label, *(summary[name] for name in ("count", "p50", "p90", "p99", "max"))]
            for label, summary in latencies]))
    if "errors_by_code" in result:
        errors = result["errors_by_code"]
        parts.append(table(["error code", "replies"], sorted(errors.items())) if errors
                     else "errors: none")
    return Output(result, "\n\n".join(parts))


async def state_digest(client: AsyncClient, args: argparse.Namespace) -> Output:
    result = await client.state_digest()
    return Output(result, f"{client.address}  seq {result['seq']}  digest {result['digest']}")


def _flatten(obj: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for key, value in obj.items():
        if isinstance(value, dict):
            pairs += _flatten(value, f"{prefix}{key}.")
        else:
            pairs.append((prefix + key, value))
    return pairs


async def windows(client: AsyncClient, args: argparse.Namespace) -> Output:
    found = await client.list_windows()
    text = table(["window_id", "state", "opened_at", "closed_at"],
                 [[w.window_id, w.state, iso_utc(w.opened_at), iso_utc(w.closed_at)]
                  for w in found])
    return Output([asdict(w) for w in found], text)


def _window_report(window: Window) -> str:
    settled = window.settlement_transfers
    summary = fields([("window", window.window_id), ("state", window.state),
                      ("opened_at", iso_utc(window.opened_at)),
                      ("closed_at", iso_utc(window.closed_at)),
                      ("transfers", window.transfers),
                      ("settlement", "not posted" if settled is None
                       else f"posted ({len(settled)} transfers)")])
    positions = table(["participant", "currency", "debits", "credits", "net"],
                      [[p.participant, p.currency, p.debits, p.credits, p.net]
                       for p in window.positions])
    instructions = table(["participant", "currency", "pay", "receive", "settlement_transfer"],
                         [[i.participant, i.currency, i.pay, i.receive, tid]
                          for i, tid in zip(window.instructions, _settlement_ids(window))])
    return f"{summary}\n\npositions\n{positions}\n\ninstructions\n{instructions}"


def _settlement_ids(window: Window) -> list[str | None]:
    """The posting of each instruction (they are listed in the same order), else None."""
    settled = window.settlement_transfers
    if settled is None or len(settled) != len(window.instructions):
        return [None] * len(window.instructions)
    return list(settled)


async def close_window(client: AsyncClient, args: argparse.Namespace) -> Output:
    window = await client.close_window(hub_accounts=dict(args.settle) if args.settle else None)
    return Output(asdict(window), _window_report(window))


REPORT_CSV_HEADER = ["window_id", "state", "participant", "currency", "debits", "credits", "net",
                     "pay", "receive", "settlement_transfer"]
MATRIX_CSV_HEADER = ["window_id", "payer", "payee", "currency", "amount"]


def report_csv(window: Window) -> str:
    """One row per position, with its instruction (pay or receive) and settlement posting."""
    by_key = {(i.participant, i.currency): (i, tid)
              for i, tid in zip(window.instructions, _settlement_ids(window))}
    rows = []
    for p in window.positions:
        instruction, tid = by_key.get((p.participant, p.currency), (None, None))
        rows.append([window.window_id, window.state, p.participant, p.currency, p.debits,
                     p.credits, p.net, instruction and instruction.pay,
                     instruction and instruction.receive, tid])
    return _csv(REPORT_CSV_HEADER, rows)


def matrix_csv(matrix: WindowMatrix) -> str:
    return _csv(MATRIX_CSV_HEADER, [[matrix.window_id, r.payer, r.payee, r.currency, r.amount]
                                    for r in matrix.rows])


def _csv(header: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return out.getvalue()


def matrix_tables(matrix: WindowMatrix) -> str:
    """Per currency: payers as rows, payees as columns, gross amounts, with totals.

    A row total is what the payer paid out (its gross debits), a column total what the payee
    received (its gross credits); the diagonal is `-` (money within a participant is on-us).
    """
    if not matrix.rows:
        return f"window {matrix.window_id} ({matrix.state}): no interbank transfers"
    blocks = [f"window {matrix.window_id} ({matrix.state}): bilateral gross amounts, "
              f"payer (row) -> payee (column)"]
    for currency in sorted({r.currency for r in matrix.rows}):
        amounts = {(r.payer, r.payee): r.amount for r in matrix.rows if r.currency == currency}
        people = sorted({who for pair in amounts for who in pair})
        payers = [p for p in people if any(pair[0] == p for pair in amounts)]
        payees = [p for p in people if any(pair[1] == p for pair in amounts)]
        rows = [[payer] + [None if payer == payee else amounts.get((payer, payee), 0)
                           for payee in payees]
                + [sum(a for (x, _), a in amounts.items() if x == payer)] for payer in payers]
        rows.append(["total"] + [sum(a for (_, y), a in amounts.items() if y == payee)
                                 for payee in payees] + [sum(amounts.values())])
        blocks.append(table([f"{currency} payer\\payee", *payees, "total"], rows))
    return "\n\n".join(blocks)


def _export(data: Any, text: str, output: str | None) -> Output:
    """Print `text`, or write it to `output` and say so."""
    if output is None:
        return Output(data, text.rstrip("\n"))
    Path(output).write_text(text if text.endswith("\n") else text + "\n")
    return Output(data, f"wrote {output}")


async def _window_export(client: AsyncClient, args: argparse.Namespace, op: str, from_wire,
                         as_csv, as_text) -> Output:
    """One window's `op` reply as JSON, CSV or text, printed or written to --output."""
    raw = await client.request(op, {"window_id": args.window_id}, retry=True)
    parsed = from_wire(raw)
    if args.format == "json":
        text = json.dumps(raw, indent=2)
    else:
        text = (as_csv if args.format == "csv" else as_text)(parsed)
    return _export(raw, text, args.output)


async def window_report(client: AsyncClient, args: argparse.Namespace) -> Output:
    return await _window_export(client, args, "get_window", Window.from_wire, report_csv,
                                _window_report)


async def window_matrix(client: AsyncClient, args: argparse.Namespace) -> Output:
    return await _window_export(client, args, "get_window_matrix", WindowMatrix.from_wire,
                                matrix_csv, matrix_tables)
