"""Runs the load in this process, or spreads the connections over worker processes.

Workers connect, report ready, and all start at one t0 (CLOCK_MONOTONIC is system-wide). Each
sends a tick a second and, at the end, its evidence for verification; the parent merges the
ticks (live line, totals). Ctrl-C stops sending and drains; a second one aborts.
"""

import asyncio
import multiprocessing
import queue
import signal
import time

import uvloop

from .driver import LoadError, run_worker
from .stats import Stats, Tick
from .verify import Evidence

START_DELAY_S = 0.05  # from "all ready" to t0, so every worker has heard of it in time
WORKER_START_TIMEOUT_S = 60.0
POLL_S = 0.5


def connection_share(config, worker: int) -> tuple[list[int], int | None]:
    """Worker `worker`'s connection indexes and its share of --count."""
    n = config.processes
    count = None if config.count is None else config.count // n + (worker < config.count % n)
    return list(range(worker, config.connections, n)), count


class _LocalControl:
    """Single process: ticks go straight to the stats; Ctrl-C stops sending."""

    def __init__(self, stats: Stats):
        self._stats = stats
        self._stop = False

    async def ready(self) -> float:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._interrupt, loop)
        return time.monotonic()

    def _interrupt(self, loop) -> None:
        self._stop = True
        loop.remove_signal_handler(signal.SIGINT)  # a second Ctrl-C interrupts for real

    def tick(self, tick: Tick) -> None:
        self._stats.add(0, tick)

    def stop_requested(self) -> bool:
        return self._stop


def run_load(config, target, accounts: list[list[str]], run_id: str, stats: Stats) -> Evidence:
    if config.processes == 1:
        connections, count = connection_share(config, 0)
        return uvloop.run(run_worker(config, target, accounts, run_id, 0, connections, count,
                                     _LocalControl(stats)))
    return _run_processes(config, target, accounts, run_id, stats)


class _WorkerControl:
    def __init__(self, worker: int, messages, go, t0_s, stop):
        self._worker = worker
        self._messages = messages
        self._go = go
        self._t0_s = t0_s
        self._stop = stop

    async def ready(self) -> float:
        self._messages.put(("ready", self._worker, None))
        if not self._go.wait(WORKER_START_TIMEOUT_S):
            raise LoadError("the other workers did not get ready in time")
        return self._t0_s.value

    def tick(self, tick: Tick) -> None:
        self._messages.put(("tick", self._worker, tick))

    def stop_requested(self) -> bool:
        return self._stop.is_set()


def _worker_main(config, target, accounts, run_id, worker, messages, go, t0_s, stop) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    connections, count = connection_share(config, worker)
    control = _WorkerControl(worker, messages, go, t0_s, stop)
    try:
        evidence = uvloop.run(run_worker(config, target, accounts, run_id, worker, connections,
                                         count, control))
    except LoadError as error:
        messages.put(("failed", worker, str(error)))
    except BaseException as error:
        messages.put(("failed", worker, f"{type(error).__name__}: {error}"))
        raise
    else:
        messages.put(("done", worker, evidence))


def _run_processes(config, target, accounts, run_id, stats: Stats) -> Evidence:
    context = multiprocessing.get_context("spawn")
    messages, go, stop = context.Queue(), context.Event(), context.Event()
    t0_s = context.Value("d", 0.0, lock=False)
    workers = [context.Process(target=_worker_main, name=f"loadtest-worker-{w}", daemon=True,
                               args=(config, target, accounts, run_id, w, messages, go, t0_s,
                                     stop))
               for w in range(config.processes)]
    for process in workers:
        process.start()
    try:
        return _collect(workers, messages, go, t0_s, stop, stats)
    finally:
        for process in workers:
            if process.is_alive():
                process.terminate()
            process.join()


def _collect(workers, messages, go, t0_s, stop, stats: Stats) -> Evidence:
    ready = 0
    evidence: dict[int, Evidence] = {}  # per worker
    while len(evidence) < len(workers):
        try:
            kind, worker, payload = messages.get(timeout=POLL_S)
        except queue.Empty:
            dead = [p.name for w, p in enumerate(workers)
                    if w not in evidence and p.exitcode is not None]
            if dead:
                raise LoadError(f"{', '.join(dead)} exited without finishing")
            continue
        except KeyboardInterrupt:
            if stop.is_set():
                raise
            stop.set()  # the workers drain and report; a second Ctrl-C aborts
            continue
        if kind == "ready":
            ready += 1
            if ready == len(workers):
                t0_s.value = time.monotonic() + START_DELAY_S
                go.set()
        elif kind == "tick":
            stats.add(worker, payload)
        elif kind == "failed":
            raise LoadError(f"worker {worker}: {payload}")
        else:
            evidence[worker] = payload
    merged = evidence[0]
    for w in range(1, len(workers)):
        merged.merge(evidence[w])
    return merged
