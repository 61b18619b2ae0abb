#!/usr/bin/env python3
"""CPU per request of the switch's request pipeline in process, without sockets or the event
loop's I/O: the real Service (ledger, WAL on disk) and sessions fed reads of pipelined frames,
as `python -m loadtest` sends them. Isolates what the switch's Python costs per request.

    .venv/bin/python scripts/bench-session.py [--requests N] [--per-read K] [--batch-size B]
        [--sessions S] [--durability none|fsync] [--profile]

With --sessions S, the reads go to S sessions in turn, and each S reads (one per session, as
one poll of S connections finds them) are taken as the switch's turns take arrivals: first
their groups across sessions (Turns.run_group), then each session's own turn for what is left.
"""
import argparse
import asyncio
import gc
import shutil
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the repository first: tests/ has a protocol/

from payswitch.protocol import FrameDecoder, encode_request  # noqa: E402
from support.in_process import (NO_DEADLINE_S, feed, new_session, released,  # noqa: E402
                                start_service)
from payswitch.switch.server import MIDDLE_COLLECTIONS_PER_FULL  # noqa: E402
from payswitch.switch.turns import Turns  # noqa: E402

ACCOUNTS = 400
FREEZE_EVERY_READS = 1000
HELD_PER_GROUP_COMMIT = 256  # replies to let wait before awaiting the log (16 x 16 in flight)


async def run(args) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-session-"))
    try:
        service = start_service(asyncio.get_running_loop(), data_dir / "data",
                                durability=args.durability)
        session = new_session(service)
        await setup(service, session)
        reads = workload(args)
        replies = FrameDecoder(1 << 30)
        young_threshold, middle_threshold, _ = gc.get_threshold()  # as the server sets them
        gc.set_threshold(young_threshold, middle_threshold, MIDDLE_COLLECTIONS_PER_FULL)
        profiler = start_profiler() if args.profile else None
        started_cpu_s, started_s = time.process_time(), time.perf_counter()
        answered = 0
        sessions = [session] + [new_session(service) for _ in range(args.sessions - 1)]
        decoders = [replies] + [FrameDecoder(1 << 30) for _ in sessions[1:]]
        if args.sessions == 1:
            for index, data in enumerate(reads):
                if index % FREEZE_EVERY_READS == 0:
                    gc.freeze()  # as the server's housekeeping does once a second
                answered += len(replies.feed(feed(service, session, data)))
                if len(session.waiting) >= HELD_PER_GROUP_COMMIT:  # busy connections share one
                    await service.wal.drain()
                    answered += len(replies.feed(released(service, session)))
        else:
            for index in range(0, len(reads), args.sessions):
                if index % FREEZE_EVERY_READS < args.sessions:
                    gc.freeze()
                answered += await poll(service, sessions, decoders,
                                       reads[index:index + args.sessions])
        await service.wal.drain()
        answered += sum(len(decoder.feed(released(service, each)))
                        for each, decoder in zip(sessions, decoders))
        cpu_s, wall_s = time.process_time() - started_cpu_s, time.perf_counter() - started_s
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=False))
        transfers = args.requests * args.batch_size
        print(f"{args.requests} requests of {args.batch_size} transfer(s), {args.per_read} per "
              f"read, {args.sessions} session(s), durability {args.durability}: "
              f"{cpu_s * 1e6 / transfers:.2f} us CPU per "
              f"transfer ({cpu_s * 1e6 / args.requests:.2f} per request), "
              f"{transfers / wall_s:,.0f} transfers/s, {answered} replies")
        service.wal.close()
    finally:
        shutil.rmtree(data_dir)


class Arrival:
    """What Turns.run_group reads of a connection: its session."""
    __slots__ = ("session",)

    def __init__(self, session):
        self.session = session


async def poll(service, sessions: list, decoders: list, reads: list[bytes]) -> int:
    """One read for each session, taken as the turns take arrivals; returns the replies."""
    now_s = service.loop.time()
    for each, data in zip(sessions, reads):
        each.receive(data, now_s)
    arrivals = deque(Arrival(each) for each in sessions[:len(reads)])
    while len(arrivals) > 1:
        grouped, _ = Turns.run_group(arrivals)
        for _ in range(max(grouped, 1)):
            arrivals.popleft()
    for each in sessions:
        while each.has_frames():
            each.handle(NO_DEADLINE_S, time.perf_counter)
    answered = 0
    if sum(each.waiting_replies for each in sessions) >= HELD_PER_GROUP_COMMIT:
        await service.wal.drain()
    for each, decoder in zip(sessions, decoders):
        answered += len(decoder.feed(released(service, each)))
    return answered


async def setup(service, session) -> None:
    accounts = [{"id": f"acct-{n}", "participant": "bank", "currency": "USD",
                 "overdraft_limit": None} for n in range(ACCOUNTS)]
    feed(service, session, encode_request(1, "create_participants", {
        "participants": [{"id": "bank", "name": "Bank"}]}, "msgpack")
         + encode_request(2, "create_accounts", {"accounts": accounts}, "msgpack"))
    await service.wal.drain()
    released(service, session)


def workload(args) -> list[bytes]:
    frames = []
    for n in range(args.requests):
        transfers = [{"id": f"t-{n}-{k}", "debit_account": f"acct-{(n + k) % ACCOUNTS}",
                      "credit_account": f"acct-{(n + k + 7) % ACCOUNTS}", "amount": 100 + k}
                     for k in range(args.batch_size)]
        if args.batch_size == 1:
            frames.append(encode_request(n, "transfer", transfers[0], "msgpack"))
        else:
            frames.append(encode_request(n, "create_transfers", {"transfers": transfers},
                                         "msgpack"))
    return [b"".join(frames[start:start + args.per_read])
            for start in range(0, len(frames), args.per_read)]


def start_profiler():
    from pyinstrument import Profiler
    profiler = Profiler(interval=0.0002)
    profiler.start()
    return profiler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--per-read", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--durability", choices=("none", "fsync"), default="none")
    parser.add_argument("--profile", action="store_true", help="pyinstrument (installed apart)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
