"""Finding the switch and the operator's token: the --host/--port options and their defaults
from a data directory (DATA_DIR/server.json, DATA_DIR/admin.token). Public, so that tools built
on the SDK (the operator CLI, the load generator) find the switch the same way."""

import argparse
import json
from pathlib import Path

from payswitch.protocol.addresses import AddressError, parse_address

from .failover import DEFAULT_HOST, DEFAULT_PORT, Address

ADMIN_TOKEN_ENV = "SWITCH_ADMIN_TOKEN"
HOST_HELP = ("the switch's address, HOST or HOST:PORT ([IPV6]:PORT); repeat it or separate "
             "addresses with commas to list a cluster's nodes, tried in order, requests going "
             "on to the primary (default: 127.0.0.1)")
PORT_HELP = ("the port of each address given without one (default: from DATA_DIR/server.json, "
             "else 7878)")


class ConfigError(Exception):
    """The switch's address or the token cannot be worked out from the options given."""


def host_entries(text: str) -> list[tuple[str, int | None]]:
    """--host: comma-separated addresses, each HOST or HOST:PORT; port None where not given."""
    try:
        return [parse_address(entry.strip()) for entry in text.split(",")]
    except AddressError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_address_arguments(group) -> None:
    """--host (repeatable, into `hosts`) and --port."""
    group.add_argument("--host", dest="hosts", action="extend", type=host_entries,
                       metavar="HOST[:PORT][,...]", help=HOST_HELP)
    group.add_argument("--port", type=int, help=PORT_HELP)


def resolve_addresses(options) -> list[Address]:
    """The `hosts` entries, those without a port on `port` (else DATA_DIR's, else 7878);
    `options` has `hosts`, `port` and `data_dir`."""
    entries = options.hosts or [(DEFAULT_HOST, None)]
    if all(port is not None for _, port in entries):
        return entries  # server.json is not needed, not even read
    default_port = resolve_port(options)
    return [(host, default_port if port is None else port) for host, port in entries]


def resolve_port(options) -> int:
    if options.port is not None:
        return options.port
    path = options.data_dir / "server.json"
    try:
        return int(json.loads(path.read_text())["port"])
    except FileNotFoundError:
        return DEFAULT_PORT
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read the port from {path}: {exc}") from None


def resolve_admin_token(token: str | None, data_dir: Path, environ) -> str:
    """The admin token: `token` if given, else $SWITCH_ADMIN_TOKEN, else DATA_DIR/admin.token."""
    if token:
        return token
    if environ.get(ADMIN_TOKEN_ENV):
        return environ[ADMIN_TOKEN_ENV]
    path = data_dir / "admin.token"
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"no admin token: pass --token, set {ADMIN_TOKEN_ENV} or provide "
                          f"{path} ({exc.strerror})") from None
