"""Every option of `python -m loadtest`, parsed and checked into one frozen `Config`."""

import argparse
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# The operator CLI's --host list and discovery, shared.
from payswitch.client import (
    DEFAULT_HOST, DEFAULT_RETRY_DEADLINE_S, Address, ConfigError, add_address_arguments,
    resolve_addresses, resolve_admin_token,
)
from payswitch.protocol import JSON, MSGPACK, is_valid_id
from payswitch.protocol.addresses import display_address
from payswitch.protocol.values import MAX_ITEMS
from payswitch.protocol.cli_help import ArgumentParser, program_name

MIX_KINDS = ("single", "two_phase", "lookup")
MAX_PREFIX_CHARS = 40  # leaves room for "-p<i>-a<j>" within the 64-character id limit


@dataclass(frozen=True)
class Config:
    hosts: tuple[tuple[str, int | None], ...]  # the switch's nodes, a port None where not given
    port: int | None  # for hosts without one; None: from DATA_DIR/server.json, else the default
    data_dir: Path
    token: str | None
    retry_deadline_s: float
    participants: int
    accounts: int  # per participant
    initial_balance: int
    reuse: str | None  # an earlier run's prefix whose accounts to use again
    connections: int
    pipeline: int
    rate_per_s: float | None  # None: closed loop
    batch_size: int
    duration_s: float | None
    count: int | None
    warmup_s: float
    drain_timeout_s: float
    seed: int
    skew: str
    zipf_exponent: float
    mix: dict  # kind -> weight
    interbank: float
    codec: str
    amount_min: int
    amount_max: int
    processes: int
    json_path: Path | None
    verify: bool
    verify_sample: int

    @property
    def open_loop(self) -> bool:
        return self.rate_per_s is not None

    def for_report(self) -> dict:
        """Every option as plain JSON values, the token withheld."""
        values = asdict(self)
        values["token"] = None if self.token is None else "(given)"
        values["hosts"] = [host if port is None else display_address(host, port)
                           for host, port in self.hosts]
        for name in ("data_dir", "json_path"):
            values[name] = None if values[name] is None else str(values[name])
        return values


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be within 0..1, got {text}")
    return value


def parse_mix(text: str) -> dict:
    """`single=80,two_phase=10,lookup=10` -> {kind: weight}; omitted kinds weigh 0."""
    mix = dict.fromkeys(MIX_KINDS, 0.0)
    for part in text.split(","):
        kind, sep, weight = part.partition("=")
        kind = kind.strip()
        if not sep or kind not in mix:
            raise argparse.ArgumentTypeError(
                f"expected KIND=WEIGHT with KIND one of {', '.join(MIX_KINDS)}, got {part!r}")
        try:
            mix[kind] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"weight must be a number, got {weight!r}") from None
        if not mix[kind] >= 0:
            raise argparse.ArgumentTypeError(f"weight must be 0 or more, got {weight!r}")
    if not sum(mix.values()) > 0:
        raise argparse.ArgumentTypeError("at least one weight must be above 0")
    return mix


def parse_amount(text: str) -> tuple[int, int]:
    """`MIN-MAX` (inclusive) or one amount, in minor units."""
    low, sep, high = text.partition("-")
    try:
        bounds = (int(low), int(high if sep else low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN-MAX or AMOUNT, got {text!r}") from None
    if not 1 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"need 1 <= MIN <= MAX, got {text!r}")
    return bounds


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=program_name("payswitch-loadtest", "loadtest"),
        description="Load generator for the payment switch: closed loop (connections x pipeline) "
        "or open loop (--rate, latency from each request's intended send time), then a check "
        "that nothing acknowledged was lost. Ctrl-C stops sending and reports; a second one "
        "aborts.",
        epilog="exit codes: 0 done and verified; 1 verification failed; 2 usage, connection or "
        "set-up failure; 3 verified, but some requests failed in transport; 130 interrupted")
    target = parser.add_argument_group("switch")
    add_address_arguments(target)
    target.add_argument("--data-dir", type=Path, default=Path("data"),
                        help="the switch's data directory, for its port and admin token")
    target.add_argument("--token", help="admin token; default: $SWITCH_ADMIN_TOKEN, else "
                        "DATA_DIR/admin.token")
    target.add_argument("--retry-deadline", dest="retry_deadline_s", type=_non_negative_float,
                        default=DEFAULT_RETRY_DEADLINE_S, metavar="S",
                        help="after a lost connection, not_primary, shutting_down or unavailable, "
                        "a connection reconnects (to the primary named, else the next --host) "
                        "and resends what it had in flight with the same ids, for up to this "
                        "many seconds; then those requests count as failed in transport (0: at "
                        "once)")

    world = parser.add_argument_group("participants and accounts")
    world.add_argument("--participants", type=_positive_int, default=4,
                       help="participants (banks) to create")
    world.add_argument("--accounts", type=_positive_int, default=100,
                       help="traffic accounts per participant (each also gets a funding one)")
    world.add_argument("--initial-balance", type=_positive_int, default=100_000_000,
                       metavar="MINOR_UNITS", help="funding of each account at set-up")
    world.add_argument("--reuse", metavar="PREFIX",
                       help="use the accounts an earlier run created under PREFIX (same "
                       "--participants and --accounts) instead of creating new ones")

    load = parser.add_argument_group("load shape")
    load.add_argument("--connections", type=_positive_int, default=16, help="TCP connections")
    load.add_argument("--pipeline", type=_positive_int, default=1,
                      help="requests in flight per connection (open loop: at most this many; "
                      "requests due beyond it wait, and the wait counts in their latency)")
    load.add_argument("--rate", dest="rate_per_s", type=_positive_float, metavar="PER_S",
                      help="open loop: total requests per second on a fixed schedule")
    load.add_argument("--batch-size", type=_positive_int, default=1,
                      help=f"transfers per create_transfers (1..{MAX_ITEMS}); 1 sends `transfer`")
    stop = load.add_mutually_exclusive_group()
    stop.add_argument("--duration", dest="duration_s", type=_positive_float, metavar="S",
                      help="seconds to measure (default: 10, unless --count is given)")
    stop.add_argument("--count", type=_positive_int, help="requests to measure")
    load.add_argument("--warmup", dest="warmup_s", type=_non_negative_float, default=0.0,
                      metavar="S", help="seconds of load before measuring (not recorded)")
    load.add_argument("--drain-timeout", dest="drain_timeout_s", type=_positive_float,
                      default=30.0, metavar="S",
                      help="how long to wait for outstanding replies once sending stops")
    load.add_argument("--processes", type=_positive_int, default=1,
                      help="worker processes to spread the connections over")

    traffic = parser.add_argument_group("traffic")
    traffic.add_argument("--seed", type=int, help="workload seed (default: from the clock)")
    traffic.add_argument("--skew", choices=("uniform", "zipf"), default="uniform",
                         help="how accounts are picked; zipf: a few hot accounts take most")
    traffic.add_argument("--zipf-s", dest="zipf_exponent", type=_positive_float, default=1.0,
                         metavar="S",
                         help="zipf exponent: weight of the k-th hottest account ~ 1/k^s")
    traffic.add_argument("--mix", type=parse_mix, default="single=100",
                         help="request kinds by weight, e.g. single=80,two_phase=10,lookup=10; "
                         "two_phase sends pending transfers, then a later request posts (80%%) "
                         "or voids (20%%) them; lookup reads the balances of two accounts")
    traffic.add_argument("--interbank", type=_fraction, default=0.5,
                         help="fraction of transfers between two participants (rest on-us)")
    traffic.add_argument("--codec", choices=(MSGPACK, JSON), default=MSGPACK,
                         help="body encoding of every request")
    traffic.add_argument("--amount", type=parse_amount, default="1-10000",
                         metavar="MIN-MAX", help="transfer amounts in minor units")

    output = parser.add_argument_group("output and verification")
    output.add_argument("--json", dest="json_path", type=Path, metavar="FILE",
                        help="write the results as one JSON object")
    output.add_argument("--no-verify", dest="verify", action="store_false",
                        help="skip the end-of-run check that nothing acknowledged was lost")
    output.add_argument("--verify-sample", type=_positive_int, default=1000, metavar="N",
                        help="acknowledged transfers to look up at the end")
    return parser


def parse_args(argv: list[str] | None = None) -> Config:
    parser = build_parser()
    args = parser.parse_args(argv)
    options = vars(args)
    options["amount_min"], options["amount_max"] = options.pop("amount")
    options["hosts"] = tuple(options["hosts"] or [(DEFAULT_HOST, None)])
    if options["duration_s"] is None and options["count"] is None:
        options["duration_s"] = 10.0
    if options["seed"] is None:
        options["seed"] = time.time_ns() % 1_000_000_007
    config = Config(**options)
    try:
        check(config)
    except ConfigError as error:
        parser.error(str(error))
    return config


def check(config: Config) -> None:
    """The rules that span options."""
    if config.batch_size > MAX_ITEMS:
        raise ConfigError(f"--batch-size is at most {MAX_ITEMS}")
    if config.processes > config.connections:
        raise ConfigError("--processes cannot exceed --connections")
    if config.interbank > 0 and config.participants < 2:
        raise ConfigError("interbank transfers need --participants 2 or more (or --interbank 0)")
    if config.interbank < 1 and config.accounts < 2:
        raise ConfigError("on-us transfers need --accounts 2 or more (or --interbank 1)")
    if config.reuse is not None and not valid_prefix(config.reuse):
        raise ConfigError(f"--reuse needs a prefix of at most {MAX_PREFIX_CHARS} characters "
                          "from A-Z a-z 0-9 . _ : -")


def valid_prefix(prefix: str) -> bool:
    return len(prefix) <= MAX_PREFIX_CHARS and is_valid_id(prefix)


@dataclass(frozen=True)
class Target:
    """Where the switch's nodes are and how to authenticate as the operator."""
    addresses: tuple[Address, ...]
    token: str


def resolve_target(config: Config, environ) -> Target:
    return Target(tuple(resolve_addresses(config)),
                  resolve_admin_token(config.token, config.data_dir, environ))
