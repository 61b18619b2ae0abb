"""`python -m loadtest`: set up, load, verify, report.

Exit codes: 0 done and verified; 1 verification failed (something acknowledged was lost or
changed); 2 usage, connection or set-up failure; 3 the run finished and verified, but some
connections failed (results are incomplete); 130 interrupted.
"""

import os
import sys
import time

import uvloop

from payswitch.client import AsyncClient, SwitchError, TransportError

from . import setup
from .cpu import CpuMeter, SwitchCpu, read_switch_cpu
from .config import Config, ConfigError, Target, parse_args, resolve_target
from .driver import LoadError
from .live import LiveLine
from .processes import run_load
from .report import render, summarize, write_json
from .stats import Stats
from .verify import Totals, Verdict, account_totals, verify

EXIT_OK, EXIT_LOST, EXIT_SETUP, EXIT_TRANSPORT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_run_id() -> str:
    """Milliseconds since the epoch in base 36: short, and distinct for runs started apart."""
    value, digits = time.time_ns() // 1_000_000, []
    while value:
        value, digit = divmod(value, 36)
        digits.append(_BASE36[digit])
    return "".join(reversed(digits))


async def _admin(config: Config, target: Target) -> AsyncClient:
    """The operator's SDK client: its requests follow the primary, as the load's do."""
    return await AsyncClient.connect(addresses=target.addresses, token=target.token,
                                     timeout_s=120.0, retry_deadline_s=config.retry_deadline_s)


async def prepare(config: Config, target: Target, layout: setup.Layout,
                  switch_cpu: SwitchCpu) -> Totals | None:
    """Create (or confirm) the accounts; returns their totals before the load, for verify. The
    switch's CPU is read last, just before the load."""
    async with await _admin(config, target) as client:
        if config.reuse is None:
            await setup.create(client, layout, config.initial_balance)
        else:
            await setup.confirm(client, layout)
        totals = await account_totals(client, layout.all_accounts()) if config.verify else None
        switch_cpu.before = await read_switch_cpu(client)
        return totals


def read_switch_cpu_after(config: Config, target: Target, switch_cpu: SwitchCpu) -> None:
    """The switch's CPU after the load, when no verification reads it."""
    async def read() -> None:
        async with await _admin(config, target) as client:
            switch_cpu.after = await read_switch_cpu(client)
    try:
        uvloop.run(read())
    except TransportError:
        pass  # unknown, as from a switch without the `process` section


def check(config: Config, target: Target, layout: setup.Layout, before: Totals,
          evidence, switch_cpu: SwitchCpu) -> Verdict:
    """Verification reads from the primary (a standby answers reads with not_primary); the
    switch's CPU is read first, just after the load."""
    async def checked() -> Verdict:
        async with await _admin(config, target) as client:
            switch_cpu.after = await read_switch_cpu(client)
            return await verify(client, layout.all_accounts(), before, evidence)
    try:
        return uvloop.run(checked())
    except (SwitchError, TransportError) as error:
        verdict = Verdict()
        verdict.add("switch", False, f"could not verify: {error}")
        return verdict


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        target = resolve_target(config, os.environ)
    except ConfigError as error:
        print(f"loadtest: {error}", file=sys.stderr)
        return EXIT_SETUP
    run_id = new_run_id()
    live = LiveLine()
    try:
        layout = setup.Layout.named(config.reuse or f"lt-{run_id}", config.participants,
                                    config.accounts)
        switch_cpu = SwitchCpu()
        before = uvloop.run(prepare(config, target, layout, switch_cpu))
        stats = Stats(config.processes, config.warmup_s, live)
        with CpuMeter() as cpu:
            evidence = run_load(config, target, [list(a) for a in layout.accounts], run_id,
                                stats)
        live.close()
        if config.verify:
            verdict = check(config, target, layout, before, evidence, switch_cpu)
        else:
            verdict = None
            read_switch_cpu_after(config, target, switch_cpu)
    except (setup.SetupError, LoadError, SwitchError, TransportError) as error:
        live.close()
        print(f"loadtest: {error}", file=sys.stderr)
        return EXIT_SETUP
    except KeyboardInterrupt:
        live.close()
        print("loadtest: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    summary = summarize(config, target, layout.prefix, run_id, stats.total, verdict,
                        cpu.usage(evidence.sample.seen, switch_cpu))
    print(render(summary))
    if config.json_path is not None:
        write_json(summary, config.json_path)
    if verdict is not None and not verdict.ok:
        failed = "; ".join(f"{c['name']}: {c['detail']}" for c in verdict.checks if not c["ok"])
        print(f"\nloadtest: VERIFICATION FAILED: {failed}", file=sys.stderr)
        return EXIT_LOST
    if summary["transport_failures"]:
        print(f"\nloadtest: {summary['transport_failures']} requests failed in transport "
              "(connections lost or timed out); their outcome is unknown", file=sys.stderr)
        return EXIT_TRANSPORT
    return EXIT_OK
