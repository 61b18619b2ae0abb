"""A switch's request pipeline in this process, without sockets: the real Service (ledger, WAL on
a real disk, snapshotter) with sessions driven by bytes, as the asyncio glue would drive them.

Call from inside a running event loop (the WAL's group commit runs as a task of it). Nothing
becomes durable while the caller does not await, so a test sees the durability barrier hold
(`feed`), or awaits the log and takes the replies it released (`exchange`).
"""
import pickle
import time
from pathlib import Path

from payswitch.protocol import FrameDecoder
from payswitch.switch.auth import ADMIN
from payswitch.switch.config import Config
from payswitch.switch.decode_worker import verdict
from payswitch.switch.service import Service
from payswitch.switch.session import Session
from payswitch.switch.snapshotter import Snapshotter
from payswitch.switch.storage.recovery import recover
from payswitch.switch.storage.wal_writer import WalWriter

ADMIN_TOKEN = "in-process-admin-token"
NO_DEADLINE_S = float("inf")


def start_service(loop, data_dir: Path, **config) -> Service:
    """A Service on `data_dir` as the server builds it, with its first settlement window open."""
    config = Config(data_dir=data_dir, **config)
    config.wal_dir.mkdir(parents=True, exist_ok=True)
    config.snapshot_dir.mkdir(parents=True, exist_ok=True)
    recovered = recover(config.wal_dir, config.snapshot_dir)

    def wal_factory(on_durable, on_failure, loop_has_work):  # every write in the WAL thread
        return WalWriter(config.wal_dir, recovered.next_seq, config.wal_segment_bytes,
                         config.durability == "fsync", on_durable, on_failure,
                         zero_ahead_bytes=config.wal_zero_ahead_bytes)

    service = Service(config, loop, recovered.state, wal_factory, ADMIN_TOKEN)
    service.snapshotter = Snapshotter(config, loop, service, recovered.snapshot_seq,
                                      recovered.log_bytes_read)
    service.open_first_window()
    return service


def new_session(service: Service, participant: str | None = ADMIN) -> Session:
    """A session of `participant` (already past its hello), or of no one yet with None."""
    session = Session(service, service.config, FrameDecoder(service.config.max_frame_bytes),
                      service.held_replies, service.request_metrics, peer="in-process",
                      now_s=service.loop.time())
    session.participant = participant
    return session


def feed(service: Service, session: Session, data: bytes) -> bytes:
    """Feeds `data`, handles every frame it completes, releases what the log allows now
    (without waiting for it); returns the bytes the session then has for its client."""
    more = session.receive(data, service.loop.time())
    while more:
        more = session.handle(NO_DEADLINE_S, time.perf_counter)
        if session.offloaded is not None:  # decoded here, and pickled, as the decode worker would
            verdict_frame = pickle.dumps(verdict(session.take_offloaded()))
            more = session.take_verdict(pickle.loads(verdict_frame))
    return released(service, session)


async def exchange(service: Service, session: Session, data: bytes) -> bytes:
    """feed(), then the bytes released once the log is durable up to everything executed."""
    output = feed(service, session, data)
    await service.wal.drain()
    return output + released(service, session)


def released(service: Service, session: Session) -> bytes:
    """The replies the durable log lets leave now, as bytes for the client."""
    session.release(service.durable_seq, service.loop.time())
    return session.take_output()
