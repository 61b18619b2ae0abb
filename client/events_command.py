"""`python -m client events`: print the committed-event stream (docs/events.md) from NATS.

It talks to NATS JetStream only, never to the switch: an ordered consumer from `--from`, one
line per event (or the event's JSON body with --json), stopping at the stream's end as it was
when the command started unless --follow. Needs nats-py (payswitch[replication]).
"""
import argparse
import asyncio
import json
import sys

from payswitch.protocol import events as schema
from payswitch.protocol.cli_help import comma_list

from .tables import iso_utc

CONNECT_TIMEOUT_S = 10.0
WAIT_S = 1.0  # between checks for new events while following


class EventsError(Exception):
    """A one-line reason the events cannot be read (exit 2)."""


def add_events_command(sub: argparse._SubParsersAction, seq_type) -> None:
    """The `events` command; `seq_type` parses --from (a whole number from 1)."""
    p = sub.add_parser("events", help="print the committed-event stream from NATS JetStream, "
                       "one line per event (docs/events.md); talks to NATS, not to the switch")
    p.add_argument("--nats", type=comma_list, metavar="URLS",
                   help=f"NATS servers, comma-separated (default: ${schema.NATS_ENV})")
    p.add_argument("--stream", default=schema.DEFAULT_STREAM, help="the switch's --events-stream")
    p.add_argument("--from", dest="from_seq", type=seq_type, default=1, metavar="SEQ",
                   help="the first event to print")
    p.add_argument("--follow", action="store_true",
                   help="keep printing events as they are published, until Ctrl-C; without "
                        "it, stop at the stream's end as it was at the start")
    p.add_argument("--json", dest="events_json", action="store_true", default=argparse.SUPPRESS,
                   help="each event's body as one line of JSON (as --json before the command)")


def main(args: argparse.Namespace, environ) -> int:
    urls = args.nats or comma_list(environ.get(schema.NATS_ENV, ""))
    if not urls:
        print(f"error: events needs --nats URLS or {schema.NATS_ENV}", file=sys.stderr)
        return 2
    as_json = args.json or getattr(args, "events_json", False)
    try:
        asyncio.run(print_events(urls, args.stream, args.from_seq, args.follow,
                                 describe_json if as_json else describe))
    except EventsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the way out of --follow
        pass
    return 0


async def print_events(urls, stream: str, from_seq: int, follow: bool, render) -> None:
    try:
        import nats
        from nats.js.api import ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError
    except ImportError:
        raise EventsError("the events command needs nats-py: pip install "
                          "'payswitch[replication]'") from None
    connection = nats.NATS()
    try:
        await asyncio.wait_for(connection.connect(servers=list(urls), max_reconnect_attempts=-1,
                                                  name="payswitch-events-reader"),
                               CONNECT_TIMEOUT_S)
    except (asyncio.TimeoutError, OSError, nats.errors.Error) as error:
        await connection.close()
        raise EventsError(f"no NATS server reachable at {','.join(urls)} within "
                          f"{CONNECT_TIMEOUT_S:g} s ({error!r})") from None
    try:
        js = connection.jetstream()
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            raise EventsError(f"no stream {stream} on NATS at {','.join(urls)} (is the switch "
                              f"running with --events?)") from None
        end_seq = info.state.last_seq
        if not follow and from_seq > end_seq:
            return
        subscription = await js.subscribe(
            info.config.subjects[0], stream=stream, ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                  opt_start_seq=from_seq))
        while True:
            try:
                message = await subscription.next_msg(timeout=WAIT_S)
            except nats.errors.TimeoutError:
                continue
            print(render(json.loads(message.data)), flush=True)
            if not follow and message.metadata.sequence.stream >= end_seq:
                return
    finally:
        await connection.close()


def describe_json(event: dict) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def describe(event: dict) -> str:
    """seq, commit time (ISO 8601 UTC), type and the type's key fields, on one line."""
    what = _SUMMARIES.get(event.get("type"), _fields)
    return f"{event.get('seq')}  {iso_utc(event.get('committed_at'))}  {event.get('type')}  " \
           f"{what(event)}"


def _money(event: dict) -> str:
    return f"{event['amount']} {event['currency']} {event['debit_account']} -> " \
           f"{event['credit_account']}"


def _transfer(event: dict) -> str:
    expires = f", expires {iso_utc(event['expires_at'])}" if event.get("expires_at") else ""
    return f"{event['id']} ({event['kind']}) {_money(event)}{expires}"


def _posted(event: dict) -> str:
    return f"{event['id']} posts {event['pending_id']}: {_money(event)} (of " \
           f"{event['pending_amount']})"


def _voided(event: dict) -> str:
    return f"{event['id']} voids {event['pending_id']}: {_money(event)}"


def _expired(event: dict) -> str:
    return f"{event['id']}: {_money(event)}"


def _account(event: dict) -> str:
    limit = event["overdraft_limit"]
    return f"{event['id']} of {event['participant']} in {event['currency']}, overdraft limit " \
           f"{'unlimited' if limit is None else limit}"


def _participant(event: dict) -> str:
    caps = " ".join(f"{currency}={cap}" for currency, cap in event["net_debit_cap"].items())
    return f"{event['id']} ({event['name']})" + (f", net debit caps {caps}" if caps else "")


def _window(event: dict) -> str:
    nets = ", ".join(f"{p['participant']} {p['currency']} {p['net']:+d}"
                     for p in event["positions"]) or "no positions"
    return f"window {event['window_id']}: {event['transfers']} transfers; nets {nets}"


def _batch(event: dict) -> str:
    return f"{event['batch_id']} of {event['owner']}: {event['state']}, {event['created']} " \
           f"created and {event['failed']} failed of {event['total']}"


def _fields(event: dict) -> str:
    """A type this CLI does not know (a newer switch): its fields as they are."""
    return " ".join(f"{key}={json.dumps(value)}" for key, value in event.items()
                    if key not in schema.ENVELOPE)


_SUMMARIES = {schema.TRANSFER_CREATED: _transfer, schema.PENDING_POSTED: _posted,
              schema.PENDING_VOIDED: _voided, schema.PENDING_EXPIRED: _expired,
              schema.ACCOUNT_CREATED: _account, schema.PARTICIPANT_CREATED: _participant,
              schema.WINDOW_CLOSED: _window, schema.BATCH_FINISHED: _batch}
