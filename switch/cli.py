"""`python -m switch serve ...`: start the switch on a local data directory.

`python -m switch reconcile --data-dir DIR`: check, read-only, that every closed settlement window's
report equals its transfers (see switch/reconcile.py); safe while the switch runs.
"""
import argparse
import logging
import sys
from pathlib import Path

import structlog
import uvloop

from switch.config import DURABILITY_MODES, LOG_LEVELS, Config
from switch.logs import configure_logging
from switch.metrics_server import MetricsSetupError
from switch.server import DataDirLocked, SwitchServer, TlsSetupError, lock_data_dir
from switch.storage.recovery import RecoveryError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m switch", description="The payment switch.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the switch")
    defaults = Config()
    serve.add_argument("--data-dir", type=Path, default=defaults.data_dir)
    serve.add_argument("--host", default=defaults.host)
    serve.add_argument("--port", type=int, default=defaults.port, help="0 picks a free port")
    serve.add_argument("--durability", choices=DURABILITY_MODES, default=defaults.durability,
                       help="fsync (default): acknowledge only what is on disk; none: weaker, "
                            "acknowledge what the OS has")
    for name in ("max_frame_bytes", "max_connections", "max_inflight_per_connection",
                 "max_write_buffer_bytes", "wal_segment_bytes", "snapshot_every_bytes",
                 "max_queued_replies", "resume_min_free_bytes",
                 "max_unauthenticated_frame_bytes", "max_inline_decode_bytes",
                 "decode_worker_nice"):
        serve.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("idle_timeout_s", "frame_timeout_s", "write_stall_timeout_s",
                 "hello_failure_delay_s", "hello_failure_max_delay_s", "turn_s",
                 "first_turn_s"):
        serve.add_argument("--" + name.replace("_", "-"), type=float,
                           default=getattr(defaults, name))
    serve.add_argument("--tls-cert", type=Path, metavar="FILE",
                       help="serve TLS (1.2+) with this certificate chain (PEM)")
    serve.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    serve.add_argument("--tls-client-ca", type=Path, metavar="FILE",
                       help="require client certificates signed by this CA; hello must name "
                            "the certificate's subject CN")
    serve.add_argument("--log-format", choices=("auto", "json", "console"), default="auto")
    serve.add_argument("--log-level", choices=LOG_LEVELS, default=defaults.log_level)
    serve.add_argument("--metrics-port", type=int, metavar="PORT",
                       help="serve /metrics (Prometheus), /livez and /readyz over HTTP on this "
                            "port (0 picks a free one); off unless given")
    serve.add_argument("--metrics-host", metavar="HOST",
                       help="the metrics listener's address (default: --host)")
    reconcile = commands.add_parser(
        "reconcile", help="prove that the ledger and the settlement window reports agree",
        description="Rebuild the state read-only from snapshot + WAL (the switch may be "
                    "running) and compare every closed window's report with its transfers. "
                    "Exit 0: reconciled; 1: differences (printed); 2: cannot read.")
    reconcile.add_argument("--data-dir", type=Path, default=defaults.data_dir)
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
        command.add_argument("--data-dir", type=Path, default=defaults.data_dir)
    wal_repair.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


def serve(args) -> int:
    options = {k: v for k, v in vars(args).items() if k != "command"}
    config = Config(**options)
    try:
        config.validate()
    except ValueError as error:
        print(f"switch: bad configuration: {error}", file=sys.stderr)
        return 2
    configure_logging(config.log_format, getattr(logging, config.log_level.upper()))
    log = structlog.get_logger("switch")
    try:
        lock_data_dir(config)
        uvloop.run(SwitchServer(config).run(announce=lambda text: print(text, flush=True)))
    except (RecoveryError, DataDirLocked, TlsSetupError, MetricsSetupError) as error:
        log.error("cannot_start", reason=str(error))
        print(f"switch: cannot start: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "reconcile":
        from switch.reconcile import run
        configure_logging("json", logging.WARNING)  # stdout is the result; logs to stderr
        return run(args.data_dir, as_json=args.json)
    if args.command == "wal":
        from switch.storage.verify import run_repair, run_verify
        if args.wal_command == "verify":
            return run_verify(args.data_dir)
        return run_repair(args.data_dir, args.yes)
    return 2
