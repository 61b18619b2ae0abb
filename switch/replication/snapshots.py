"""Snapshots in the JetStream object store: how an empty node starts, and how far the stream
may be trimmed.

The primary uploads each snapshot it publishes, keeps the newest `snapshots_kept`, and purges the
stream before the first message the oldest kept one still needs. A node whose log the stream can
no longer continue (empty, or away past the trim) starts from the newest object instead.
"""
import structlog
from nats.js.errors import NotFoundError

from payswitch.switch.replication.cluster import Cluster

log = structlog.get_logger("switch.replication")
PREFIX = "snapshot-"


def object_name(seq: int) -> str:
    return f"{PREFIX}{seq:020d}"


async def stored_snapshots(cluster: Cluster) -> list[int]:
    """Record sequence numbers of the snapshots in the object store, oldest first."""
    try:
        infos = await cluster.snapshots.list(ignore_deletes=True)
    except NotFoundError:  # nats-py's answer for an empty store
        return []
    return sorted(int(info.name[len(PREFIX):]) for info in infos
                  if info.name.startswith(PREFIX) and not info.deleted)


async def upload(cluster: Cluster, seq: int, path, keep: int) -> None:
    """Stores the snapshot, drops the older ones beyond `keep`, and trims the stream to what
    the oldest kept one needs."""
    with open(path, "rb") as file:
        await cluster.snapshots.put(object_name(seq), file)
    kept = await stored_snapshots(cluster)
    for old in kept[:-keep]:
        await cluster.snapshots.delete(object_name(old))
    oldest = kept[-keep:][0]
    first_needed = await cluster.message_holding(oldest + 1)
    if first_needed is not None:
        await cluster.js.purge_stream(cluster.stream, seq=first_needed)
    log.info("snapshot_uploaded", seq=seq, kept=kept[-keep:], stream_trimmed_before=first_needed)


async def download_newest(cluster: Cluster) -> tuple[int, bytes] | None:
    stored = await stored_snapshots(cluster)
    if not stored:
        return None
    result = await cluster.snapshots.get(object_name(stored[-1]))
    return stored[-1], result.data
