"""`python -m switch serve ...`: start the switch on a local data directory.

`python -m switch reconcile --data-dir DIR`: check, read-only, that every closed settlement window's
report equals its transfers (see switch/reconcile.py); safe while the switch runs.
"""
import argparse
import logging
import os
import sys
from pathlib import Path

import uvloop

from payswitch.protocol.cli_help import ArgumentParser, comma_list, program_name
from payswitch.switch.config import (DURABILITY_MODES, LOG_BOUND_INTERVALS, LOG_BOUND_MIN_BYTES, LOG_LEVELS,
                           Config)
from payswitch.switch.logs import configure_logging
from payswitch.switch.listen import BindFailed
from payswitch.switch.events import EventsSetupError
from payswitch.switch.metrics_server import MetricsSetupError
from payswitch.switch.replication.errors import ReplicationUnusable
from payswitch.switch.server import DataDirLocked, SwitchServer, TlsSetupError
from payswitch.switch.storage.recovery import RecoveryError
from payswitch.switch.storage.wal_format import UnsupportedWalVersion


# What each numeric limit of `serve` means (switch/config.py explains why each is there).
SERVE_LIMITS_HELP = {
    "max_frame_bytes": "largest request body accepted (a larger one is refused, the connection "
                       "closed)",
    "max_connections": "connections open at once; more are refused `overloaded`",
    "max_inflight_per_connection": "requests read from one connection but not yet answered; past "
                                   "it they are answered `overloaded` and reading pauses",
    "max_write_buffer_bytes": "reply bytes queued for one connection before reading from it "
                              "pauses",
    "wal_segment_bytes": "size at which the write-ahead log starts a new segment file",
    "wal_zero_ahead_bytes": "with --durability fsync, zeros written ahead of the log's records "
                            "at a time, so that its fsyncs need not grow the file (0: append)",
    "snapshot_every_bytes": "WAL bytes written since the last snapshot that start a new one",
    "max_queued_replies": "replies waiting for the WAL, over all connections; past it new "
                          "requests are answered `overloaded`",
    "resume_min_free_bytes": "free space on the log's filesystem at which writes resume by "
                             "themselves after the disk was full",
    "max_unauthenticated_frame_bytes": "largest frame decoded before a successful hello; larger "
                                       "ones are refused unread",
    "max_inline_decode_bytes": "frames larger than this are decoded in the decode worker "
                               "process, off the event loop",
    "decode_worker_nice": "how much nicer (0-19) the decode worker process runs than the switch",
    "snapshot_builder_nice": "how much nicer (0-19) the snapshot builder process runs than the "
                             "switch (never idle priority: a busy machine must not starve it)",
    "idle_timeout_s": "seconds without a frame after which a connection is closed",
    "frame_timeout_s": "seconds within which a started frame (and a TLS handshake) must be "
                       "complete",
    "write_stall_timeout_s": "seconds a connection may leave its replies unread, above "
                             "--max-write-buffer-bytes, before it is dropped",
    "hello_failure_delay_s": "delay of the reply to a failed hello, doubling per consecutive "
                             "failure from one address (0 disables)",
    "hello_failure_max_delay_s": "the most a failed hello's reply is delayed",
    "turn_s": "seconds of work one connection gets per round-robin turn",
    "wal_group_wait_s": "seconds the next fsync may wait, after the last one, for the requests "
                        "of the clients its replies answered, so they share it (0: none; at "
                        "most 0.01)",
    "first_turn_s": "seconds of work for a connection's first frames, ahead of the round robin",
    "events_max_backlog": "events waiting for the stream's acknowledgement, in memory; at this "
                          "many, mutating requests are refused `unavailable` until half are "
                          "published",
    "events_max_in_flight": "events sent to the stream and not yet acknowledged, at once",
    "events_ack_timeout_s": "seconds within which the stream must acknowledge an event; else "
                            "it is sent again after the stream's last event",
    "events_retry_s": "seconds between attempts to reach the stream (and between reads of its "
                      "end while publishing is paused)",
    "events_connect_timeout_s": "seconds within which a NATS server must answer at start; else "
                                "the switch refuses to start",
}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=program_name("payswitch-server", "switch"), description="The payment switch.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the switch")
    defaults = Config()
    serve.add_argument("--data-dir", type=Path, default=defaults.data_dir,
                       help="where the log, snapshots, admin token and batches are kept")
    serve.add_argument("--host", default=defaults.host, help="address to listen on")
    serve.add_argument("--port", type=int, default=defaults.port,
                       help="port to listen on; 0 picks a free port (see DATA_DIR/server.json)")
    serve.add_argument("--durability", choices=DURABILITY_MODES, default=defaults.durability,
                       help="fsync: acknowledge only what is on disk; none: weaker, "
                            "acknowledge what the OS has")
    for name in ("max_frame_bytes", "max_connections", "max_inflight_per_connection",
                 "max_write_buffer_bytes", "wal_segment_bytes", "wal_zero_ahead_bytes",
                 "snapshot_every_bytes", "max_queued_replies", "resume_min_free_bytes",
                 "max_unauthenticated_frame_bytes", "max_inline_decode_bytes",
                 "decode_worker_nice", "snapshot_builder_nice"):
        serve.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name),
                           help=SERVE_LIMITS_HELP[name])
    serve.add_argument("--max-log-bytes-since-snapshot", type=int, metavar="BYTES",
                       help="log since the last snapshot at which writes are refused "
                            "`overloaded` until the next one is published (bounds restart "
                            f"time); default {LOG_BOUND_INTERVALS} x --snapshot-every-bytes, "
                            f"at least {LOG_BOUND_MIN_BYTES}")
    for name in ("idle_timeout_s", "frame_timeout_s", "write_stall_timeout_s",
                 "hello_failure_delay_s", "hello_failure_max_delay_s", "turn_s",
                 "first_turn_s", "wal_group_wait_s"):
        serve.add_argument("--" + name.replace("_", "-"), type=float,
                           default=getattr(defaults, name), help=SERVE_LIMITS_HELP[name])
    serve.add_argument("--tls-cert", type=Path, metavar="FILE",
                       help="serve TLS (1.2+) with this certificate chain (PEM)")
    serve.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    serve.add_argument("--tls-client-ca", type=Path, metavar="FILE",
                       help="require client certificates signed by this CA; hello must name "
                            "the certificate's subject CN")
    add_events_options(serve, defaults)
    serve.add_argument("--log-format", choices=("auto", "json", "console"), default="auto",
                       help="log lines as JSON or for people; auto: console on a terminal, "
                            "else json")
    serve.add_argument("--extra-currencies", type=comma_list, metavar="CODES",
                       default=defaults.extra_currencies,
                       help="comma-separated codes accepted besides ISO 4217's, e.g. XTS,XXX")
    serve.add_argument("--log-level", choices=LOG_LEVELS, default=defaults.log_level,
                       help="the least severe log lines written")
    serve.add_argument("--metrics-port", type=int, metavar="PORT",
                       help="serve /metrics (Prometheus), /livez and /readyz over HTTP on this "
                            "port (0 picks a free one); off unless given")
    serve.add_argument("--metrics-host", metavar="HOST",
                       help="the metrics listener's address (default: --host)")
    add_replication_options(serve, defaults)
    reconcile = commands.add_parser(
        "reconcile", help="prove that the ledger and the settlement window reports agree",
        description="Rebuild the state read-only from snapshot + WAL (the switch may be "
                    "running) and compare every closed window's report with its transfers. "
                    "Exit 0: reconciled; 1: differences (printed); 2: cannot read.")
    reconcile.add_argument("--data-dir", type=Path, default=defaults.data_dir,
                           help="the switch's data directory (read only)")
    reconcile.add_argument("--json", action="store_true", help="machine-readable output")
    wal = commands.add_parser("wal", help="inspect or repair the write-ahead log (see "
                                          "docs/operations.md)")
    wal_commands = wal.add_subparsers(dest="wal_command", required=True)
    wal_verify = wal_commands.add_parser(
        "verify", help="scan every segment and snapshot, read-only; exit 0 clean, 1 damaged")
    wal_repair = wal_commands.add_parser(
        "repair", help="cut the log back to its last good record, after confirmation; what is "
                       "cut off is moved to wal/quarantine/")
    for command in (wal_verify, wal_repair):
        command.add_argument("--data-dir", type=Path, default=defaults.data_dir,
                             help="the switch's data directory")
    wal_repair.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


def add_replication_options(serve, defaults: Config) -> None:
    group = serve.add_argument_group("replication (docs/replication.md; needs payswitch[replication])")
    group.add_argument("--replication", type=comma_list, metavar="URLS", default=(),
                       help="replicate the log through this NATS JetStream cluster "
                            "(comma-separated, e.g. nats://h1:4222,nats://h2:4222); a mutating "
                            "reply then waits for the local fsync and the stream's quorum")
    group.add_argument("--node-id", metavar="NAME", help="this node's name, unique in the cluster")
    group.add_argument("--advertise", metavar="HOST:PORT",
                       help="the address clients are sent to (default: --host:--port)")
    group.add_argument("--replication-stream", default=defaults.replication_stream,
                       metavar="NAME", help="the JetStream stream of the log (also names the "
                                            "lease bucket and the snapshot store)")
    group.add_argument("--replication-replicas", type=int, metavar="N",
                       default=defaults.replication_replicas,
                       help="copies JetStream keeps of the stream, bucket and store")
    for name, text in (
            ("lease_ttl_s", "seconds the lease outlives its last renewal: about how long after "
                            "the primary dies a standby takes over"),
            ("lease_renew_interval_s", "seconds between the primary's lease renewals"),
            ("lease_safety_margin_s", "the primary stops acknowledging this long before its "
                                      "lease would expire, by its own clock"),
            ("lease_poll_interval_s", "seconds between a standby's looks for an expired lease"),
            ("replication_request_timeout_s", "seconds an append or JetStream request may wait "
                                              "for its answer")):
        group.add_argument("--" + name.replace("_", "-"), type=float,
                           default=getattr(defaults, name), help=text)
    group.add_argument("--replication-max-inflight", type=int, metavar="N",
                       default=defaults.replication_max_inflight,
                       help="stream appends in flight at once (pipelined)")
    group.add_argument("--max-unreplicated-bytes", type=int, metavar="BYTES",
                       default=defaults.max_unreplicated_bytes,
                       help="log not yet acknowledged by the stream at which writes are refused "
                            "`unavailable`")


def serve(args) -> int:
    options = {k: v for k, v in vars(args).items() if k != "command"}
    config = Config(**options)
    try:
        config.validate()
    except ValueError as error:
        print(f"switch: bad configuration: {error}", file=sys.stderr)
        return 2
    configure_logging(config.log_format, getattr(logging, config.log_level.upper()))
    server = SwitchServer(config)
    try:
        uvloop.run(server.run(announce=lambda text: print(text, flush=True)))
    except (BindFailed, RecoveryError, DataDirLocked, TlsSetupError, MetricsSetupError,
            ReplicationUnusable, EventsSetupError, UnsupportedWalVersion) as error:
        # One line for the operator, and no log line repeating it.
        print(f"switch: cannot start: {error}", file=sys.stderr)
        return 1
    if server.restart_wanted:  # a deposed primary: start afresh as a standby
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "payswitch.switch", *sys.argv[1:]])
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "reconcile":
        from payswitch.switch.reconcile import run
        configure_logging("json", logging.WARNING)  # stdout is the result; logs to stderr
        return run(args.data_dir, as_json=args.json)
    if args.command == "wal":
        from payswitch.switch.storage.verify import run_repair, run_verify
        if args.wal_command == "verify":
            return run_verify(args.data_dir)
        return run_repair(args.data_dir, args.yes)
    return 2


def add_events_options(serve: argparse.ArgumentParser, defaults: Config) -> None:
    """The committed-event stream's options (docs/events.md)."""
    group = serve.add_argument_group("committed-event stream (docs/events.md; needs "
                                     "payswitch[replication])")
    group.add_argument("--events", type=comma_list, metavar="URLS", default=defaults.events,
                       help="publish every committed change to NATS JetStream at these servers "
                            "(comma-separated, e.g. nats://h1:4222,nats://h2:4222); default: off")
    group.add_argument("--events-stream", metavar="NAME", default=defaults.events_stream,
                       help="the JetStream stream of the events")
    group.add_argument("--events-subjects", metavar="PREFIX", default=defaults.events_subjects,
                       help="subject prefix: each event goes to PREFIX.<type>")
    group.add_argument("--events-replicas", type=int, metavar="N",
                       default=defaults.events_replicas,
                       help="copies of the stream when it is created (3 recommended with a "
                            "NATS cluster)")
    for name in ("events_max_backlog", "events_max_in_flight"):
        group.add_argument("--" + name.replace("_", "-"), type=int, metavar="N",
                           default=getattr(defaults, name), help=SERVE_LIMITS_HELP[name])
    for name in ("events_ack_timeout_s", "events_retry_s", "events_connect_timeout_s"):
        group.add_argument("--" + name.replace("_", "-"), type=float, metavar="S",
                           default=getattr(defaults, name), help=SERVE_LIMITS_HELP[name])
