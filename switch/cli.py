"""`python -m switch serve ...`: start the switch on a local data directory."""
import argparse
import sys
from pathlib import Path

import structlog
import uvloop

from switch.config import DURABILITY_MODES, Config
from switch.logs import configure_logging
from switch.server import DataDirLocked, SwitchServer, lock_data_dir
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
                 "max_write_buffer_bytes", "wal_segment_bytes", "snapshot_every_bytes"):
        serve.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    serve.add_argument("--idle-timeout-s", type=float, default=defaults.idle_timeout_s)
    serve.add_argument("--log-format", choices=("auto", "json", "console"), default="auto")
    return parser


def serve(args) -> int:
    options = {k: v for k, v in vars(args).items() if k != "command"}
    config = Config(**options)
    config.validate()
    configure_logging(config.log_format)
    log = structlog.get_logger("switch")
    try:
        lock_data_dir(config)
        uvloop.run(SwitchServer(config).run(announce=lambda text: print(text, flush=True)))
    except (RecoveryError, DataDirLocked) as error:
        log.error("cannot_start", reason=str(error))
        print(f"switch: cannot start: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2
