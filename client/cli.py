"""The operators' command line: `python -m client [global flags] COMMAND ...`.

Exit codes: 0 done, 1 the switch refused (`error: <code>: <message>` on stderr), 2 usage,
configuration or connection failure, 3 outcome unknown (a transfer was retried until
--retry-deadline and may have committed: run it again with the same --id to learn its outcome).
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
from pathlib import Path
from typing import Mapping

from payswitch.protocol import JSON, MSGPACK
from payswitch.protocol.cli_help import ArgumentParser, program_name
from payswitch.protocol.ops import ADMIN, OPS

from . import batch_commands, commands, events_command
from .async_client import AsyncClient
from .discovery import ConfigError, add_address_arguments, resolve_addresses, resolve_admin_token
from .errors import NotPrimary, OutcomeUnknown, SwitchError, TransportError
from .failover import DEFAULT_RETRY_DEADLINE_S, Address, describe


def _cap(allow_none: bool):
    """Parse `CUR=AMOUNT` (or `CUR=none` to lift a cap) into a (currency, amount) pair."""
    def parse(text: str) -> tuple[str, int | None]:
        currency, sep, amount = text.partition("=")
        if not sep or not currency:
            raise argparse.ArgumentTypeError(f"expected CUR=AMOUNT, got {text!r}")
        if allow_none and amount.lower() == "none":
            return currency, None
        try:
            return currency, int(amount)
        except ValueError:
            raise argparse.ArgumentTypeError(f"amount must be an integer, got {amount!r}") from None
    return parse


def _account_of(allow_none: bool):
    """Parse `CUR=ACCOUNT` (or `CUR=none` to unset) into a (currency, account) pair."""
    def parse(text: str) -> tuple[str, str | None]:
        currency, sep, account = text.partition("=")
        if not sep or not currency or not account:
            raise argparse.ArgumentTypeError(f"expected CUR=ACCOUNT, got {text!r}")
        if allow_none and account.lower() == "none":
            return currency, None
        return currency, account
    return parse


def _from_one(what: str):
    """An argparse type: a whole number from 1, refused with a message naming `what`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{what} is a whole number from 1, got {text!r}")
        return value
    return parse


def _overdraft(text: str) -> int | None:
    if text.lower() == "unlimited":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer or 'unlimited', got {text!r}") from None


def _json_map(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if type(value) is not dict:
        raise argparse.ArgumentTypeError(f"expected a JSON map of the op's args, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=program_name("payswitch-cli", "client"), description="Operate the payment switch. Global flags go "
        "before the command; amounts are integers in minor units.")
    add_address_arguments(parser)
    parser.add_argument("--data-dir", type=Path, default=Path("data"),
                        help="a switch's data directory, for its port and admin token")
    parser.add_argument("--participant", default=ADMIN, help="whom to authenticate as")
    parser.add_argument("--token", help="default for admin: $SWITCH_ADMIN_TOKEN, else "
                        "DATA_DIR/admin.token")
    parser.add_argument("--codec", choices=[MSGPACK, JSON], default=MSGPACK,
                        help="body encoding of the requests")
    parser.add_argument("--request-timeout", type=float, default=10.0, metavar="S",
                        help="seconds to wait for each reply")
    parser.add_argument("--retry-deadline", type=float, default=DEFAULT_RETRY_DEADLINE_S,
                        metavar="S", help="keep resending a request that is safe to repeat, "
                        "with the same ids, for this many seconds after a lost connection, a "
                        "timeout, or a node that is not the primary, shuts down or cannot commit "
                        "(with backoff, trying the next address)")
    parser.add_argument("--json", action="store_true",
                        help="machine-readable output (times as raw nanoseconds)")
    parser.add_argument("--tls-ca", type=Path, metavar="FILE",
                        help="connect with TLS, trusting this CA (PEM) for the switch's "
                             "certificate")
    parser.add_argument("--tls-cert", type=Path, metavar="FILE",
                        help="connect with TLS, presenting this client certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, metavar="FILE", help="the client certificate's key")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_participant_commands(sub)
    _add_transfer_commands(sub)
    _add_query_commands(sub)
    batch_commands.add_batch_commands(sub)
    events_command.add_events_command(sub, _from_one("an event seq"))
    return parser


def _add_participant_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("create-participant", help="create a participant and print its token")
    p.add_argument("id", help="the participant's id")
    p.add_argument("name", help="its display name")
    p.add_argument("--cap", dest="caps", action="append", type=_cap(False), default=[],
                   metavar="CUR=AMOUNT", help="net debit cap (repeatable)")
    p.set_defaults(run=commands.create_participant)

    p = sub.add_parser("rotate-token", help="give a participant (or admin) a new token and "
                       "retire the old one; print the new token")
    p.add_argument("id", metavar="PARTICIPANT",
                   help="the participant whose token to replace, or admin for the operator's")
    p.set_defaults(run=commands.rotate_token)

    p = sub.add_parser("set-participant", help="change caps, suspend or resume")
    p.add_argument("id", help="the participant's id")
    p.add_argument("--cap", dest="caps", action="append", type=_cap(True), default=[],
                   metavar="CUR=AMOUNT|CUR=none", help="net debit cap; none lifts it")
    p.add_argument("--settlement-account", dest="settlement_accounts", action="append",
                   type=_account_of(True), default=[], metavar="CUR=ACCOUNT|CUR=none",
                   help="the participant's own account that settlement postings use in CUR "
                        "(repeatable); none unsets it")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--suspend", dest="suspension", action="store_const", const="suspend",
                       help="refuse its new transfers until --resume")
    state.add_argument("--resume", dest="suspension", action="store_const", const="resume",
                       help="accept its transfers again")
    p.set_defaults(run=commands.set_participant)

    p = sub.add_parser("create-account", help="open an account")
    p.add_argument("id", help="the account's id")
    p.add_argument("--participant", dest="owner", required=True, help="the owning participant")
    p.add_argument("--currency", required=True, help="ISO 4217 code, e.g. USD")
    p.add_argument("--overdraft-limit", type=_overdraft, default=0, metavar="N|unlimited",
                   help="how far below zero the balance may go, in minor units")
    p.set_defaults(run=commands.create_account)


def _add_transfer_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transfer", help="move money (resent with the same id after a lost "
                       "connection or a failover: safe)")
    p.add_argument("debit", help="account to take the money from")
    p.add_argument("credit", help="account to pay it into")
    p.add_argument("amount", type=int, help="in minor units")
    p.add_argument("--id", help="idempotency key (default: a fresh random id)")
    p.add_argument("--currency", help="must match both accounts' (default: theirs)")
    p.add_argument("--reference", help="free text kept with the transfer (default: none)")
    p.add_argument("--pending", action="store_true", help="reserve only; post or void later")
    p.add_argument("--timeout", type=int, metavar="S", help="pending expiry in whole seconds")
    p.set_defaults(run=commands.transfer)

    p = sub.add_parser("post", help="post a pending transfer")
    p.add_argument("pending_id", help="id of the pending transfer")
    p.add_argument("--amount", type=int, help="default: the full pending amount")
    p.add_argument("--id", help="id of the post (default: a fresh random id)")
    p.set_defaults(run=commands.post)

    p = sub.add_parser("void", help="void a pending transfer")
    p.add_argument("pending_id", help="id of the pending transfer")
    p.add_argument("--id", help="id of the void (default: a fresh random id)")
    p.set_defaults(run=commands.void)


def _add_query_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("balance", help="balances of accounts")
    p.add_argument("accounts", nargs="+", metavar="ACCOUNT", help="account ids")
    p.set_defaults(run=commands.balance)

    p = sub.add_parser("lookup", help="transfers by id")
    p.add_argument("transfer_ids", nargs="+", metavar="TRANSFER_ID", help="transfer ids")
    p.set_defaults(run=commands.lookup)

    p = sub.add_parser("history", help="transfers touching an account, oldest first")
    p.add_argument("account", help="the account's id")
    p.add_argument("--after", type=int, metavar="TS",
                   help="exclusive timestamp cursor in nanoseconds, as printed after 'more:' "
                        "(default: from the oldest)")
    p.add_argument("--limit", type=int, help="most transfers to print (default: the "
                   "switch's, 100)")
    p.set_defaults(run=commands.history)

    p = sub.add_parser("ping", help="check that the switch answers; print the round-trip time")
    p.add_argument("--count", type=_from_one("a ping count"), default=1, metavar="N",
                   help="pings to send, one after another")
    p.set_defaults(run=commands.ping)

    for name, run, text in [("stats", commands.stats, "server statistics"),
                            ("state-digest", commands.state_digest,
                             "a hash of the whole ledger at this node's applied record: compare "
                             "the nodes of a cluster (equal at equal seq)"),
                            ("windows", commands.windows, "settlement windows")]:
        sub.add_parser(name, help=text).set_defaults(run=run)

    p = sub.add_parser("call", help="any op by name (docs/protocol.md); print its result as "
                       "JSON")
    p.add_argument("op", metavar="OP", choices=sorted(op for op, spec in OPS.items()
                                                      if spec.sdk is not None),
                   help="the op's name, e.g. get_participant")
    p.add_argument("args", nargs="?", type=_json_map, default={}, metavar="ARGS",
                   help='its args as a JSON map, e.g. \'{"id": "bank-a"}\' (default: {})')
    p.set_defaults(run=commands.call)

    p = sub.add_parser("close-window", help="close the open window and print its settlement "
                       "report; with --settle also post the settlement, atomically")
    p.add_argument("--settle", action="append", type=_account_of(False), default=[],
                   metavar="CUR=HUB_ACCOUNT",
                   help="post each participant's net between its settlement account and this "
                        "hub account (repeat per currency with instructions)")
    p.set_defaults(run=commands.close_window)

    p = sub.add_parser("window", help="one settlement window: report or bilateral matrix")
    window = p.add_subparsers(dest="window_command", required=True, metavar="WHAT")
    for name, run, text in [
            ("report", commands.window_report,
             "positions (gross debits, credits, net) and settlement instructions"),
            ("matrix", commands.window_matrix,
             "bilateral matrix: gross amounts payer -> payee before netting")]:
        w = window.add_parser(name, help=text)
        w.add_argument("window_id", type=_from_one("a window id"), metavar="ID", help="the window's number")
        w.add_argument("--format", choices=["table", "json", "csv"], default="table",
                       help="table for people, json as the switch gives it, csv with a header")
        w.add_argument("--output", metavar="FILE", help="write there instead of printing")
        w.set_defaults(run=run)


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """A client TLS context when any --tls-* flag is given (system CAs unless --tls-ca)."""
    if not (args.tls_ca or args.tls_cert or args.tls_key):
        return None
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    try:
        context = ssl.create_default_context(cafile=args.tls_ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if args.tls_cert:
            context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS set-up failed: {exc}") from None
    return context


def resolve_token(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    if args.participant != ADMIN and not args.token:
        raise ConfigError(f"--token is required to act as {args.participant}")
    return resolve_admin_token(args.token, args.data_dir, environ)


async def run(args: argparse.Namespace, addresses: list[Address],
              token: str) -> commands.Output:
    async with await AsyncClient.connect(
            addresses=addresses, participant=args.participant, token=token, codec=args.codec,
            timeout_s=args.request_timeout, retry_deadline_s=args.retry_deadline,
            ssl=getattr(args, "tls", None)) as client:
        return await args.run(client, args)


def print_output(output: commands.Output, as_json: bool) -> None:
    if as_json:
        print(json.dumps(output.data))
    elif output.text:
        print(output.text)


def main(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "events":  # NATS, not the switch: no port, no token
        return events_command.main(args, os.environ if environ is None else environ)
    try:
        addresses = resolve_addresses(args)
        token = resolve_token(args, os.environ if environ is None else environ)
        args.tls = tls_context(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        output = asyncio.run(run(args, addresses, token))
    except SwitchError as exc:
        # A command that is never resent (create-participant, ...) stops at a standby.
        primary = f" (the primary is {exc.primary})" if isinstance(exc, NotPrimary) and \
            exc.primary else ""
        print(f"error: {exc.code}: {exc.message}{primary}", file=sys.stderr)
        return 1
    except OutcomeUnknown as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except TransportError as exc:
        print(f"error: no answer from the switch at {describe(addresses)}: {exc}",
              file=sys.stderr)
        return 2
    print_output(output, args.json)
    if output.error is not None:
        print(f"error: {output.error.code}: {output.error.message}", file=sys.stderr)
        return 1
    return 0
