"""Every limit and setting of the server, named in one place."""
from dataclasses import dataclass
from pathlib import Path

DURABILITY_MODES = ("fsync", "none")


@dataclass(frozen=True)
class Config:
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 7878
    # Durability: "fsync" acknowledges only what is fsynced; "none" (explicitly weaker) only
    # what is written to the operating system, which a power loss may take away.
    durability: str = "fsync"
    max_frame_bytes: int = 1 << 20
    max_connections: int = 10_000
    # Requests read from one connection whose replies are not yet sent; past it we stop reading
    # from that connection until half have been answered.
    max_inflight_per_connection: int = 4096
    # Bytes of replies queued in a connection's transport before we stop reading from it.
    max_write_buffer_bytes: int = 4 << 20
    idle_timeout_s: float = 300.0
    wal_segment_bytes: int = 64 << 20
    # A snapshot is taken (in a forked child) after this many WAL bytes since the last one.
    snapshot_every_bytes: int = 256 << 20
    snapshots_kept: int = 2
    # Batches: partial batches are applied this many items per event-loop turn; an atomic batch
    # is one ledger step (one WAL record), so its size bounds how long it pauses other traffic.
    batch_chunk_items: int = 500
    max_atomic_batch_items: int = 10_000
    expiry_check_interval_s: float = 0.05
    shutdown_timeout_s: float = 30.0
    log_format: str = "auto"  # auto (console on a terminal, else json), json, console

    @property
    def wal_dir(self) -> Path:
        return self.data_dir / "wal"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin.token"

    @property
    def server_info_path(self) -> Path:
        return self.data_dir / "server.json"

    def validate(self) -> None:
        if self.durability not in DURABILITY_MODES:
            raise ValueError(f"durability must be one of {DURABILITY_MODES}")
        for name in ("max_frame_bytes", "max_connections", "max_inflight_per_connection",
                     "max_write_buffer_bytes", "wal_segment_bytes", "snapshot_every_bytes",
                     "snapshots_kept"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
