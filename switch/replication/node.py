"""A replicated node's role: recovering, standby (following the stream) or primary (holding
the lease and appending), and the moves between them.

A node that stops being primary (its lease lost or ended by its own clock, or fenced by another
node's append) fails every request in flight `not_primary` and restarts its process: the state
in its memory may hold records the stream never accepted, and a restart cuts those off (see
local_log.py) and follows the stream again, through the same code as every other start.
"""
import asyncio
import time

import structlog
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError, NoStreamResponseError

from payswitch.protocol import codes
from payswitch.switch.replication.cluster import Cluster
from payswitch.switch.replication.errors import ReplicationUnusable
from payswitch.switch.replication.follower import Follower
from payswitch.switch.replication.lease import Holder, Lease, LeaseLost
from payswitch.switch.replication.local_log import (discard_after, install_snapshot, keep_up_to,
                                          last_local_seq, write_marker)
from payswitch.switch.replication.publisher import LogPublisher
from payswitch.switch.replication.snapshots import download_newest, upload
from payswitch.switch.replication.wire import (EXPECTED_LAST_SEQUENCE, FIRST_SEQ, LAST_SEQ, NODE)
from payswitch.switch.storage.segments import snapshot_path

log = structlog.get_logger("switch.replication")
PRIMARY, STANDBY, RECOVERING = "primary", "standby", "recovering"  # and the service's "single"
CATCH_UP_POLL_S = 0.005
WRONG_LAST_SEQUENCE = 10071  # JetStream: the expected last sequence did not match


async def prepare_local_log(config, cluster: Cluster) -> None:
    """Before recovery: cuts off a local tail the stream may not hold, and replaces the local
    state with the object store's newest snapshot when the stream cannot continue it."""
    keep = keep_up_to(config.data_dir, config.snapshot_dir)
    dropped = discard_after(config.wal_dir, keep)
    if dropped:
        log.warning("unreplicated_tail_discarded", records=dropped, kept_up_to_seq=keep,
                    reason="records after the last one known to be in the stream were never "
                           "acknowledged; those the stream has are fetched again")
    need = last_local_seq(config.wal_dir, config.snapshot_dir) + 1
    first, last = await cluster.stream_bounds()
    if not first:
        return  # an empty stream: a new cluster, or one whose log is all in snapshots
    holding = await cluster.message_holding(need)
    if holding is None:
        return  # we hold everything the stream does
    first_record = (await cluster.records_in(holding))[0]
    if first_record <= need:
        return
    stored = await download_newest(cluster)
    if stored is None or stored[0] + 1 < (await cluster.records_in(first))[0]:
        raise ReplicationUnusable(f"this node's log ends at record {need - 1}, the stream now "
                                  f"starts at record {first_record}, and no stored snapshot "
                                  f"bridges the gap")
    seq, data = stored
    install_snapshot(config.wal_dir, config.snapshot_dir, seq, data)
    write_marker(config.data_dir, seq)
    log.warning("joined_from_stored_snapshot", seq=seq, local_log_ended_at=need - 1)


class ReplicationNode:
    def __init__(self, config, cluster: Cluster, service, request_restart):
        self.config = config
        self.cluster = cluster
        self.service = service
        self._request_restart = request_restart
        self.role = RECOVERING
        self.me = Holder(config.node_id, config.advertise)
        self.lease = Lease(cluster.kv, self.me, config.lease_ttl_s, config.lease_safety_margin_s)
        self.publisher = LogPublisher(
            cluster.js, cluster.stream, cluster.subject, config.node_id,
            cluster.max_message_bytes, config.replication_max_inflight,
            config.replication_request_timeout_s, config.max_unreplicated_bytes,
            on_replicated=self._replicated, on_fenced=self.step_down)
        events = service.events  # derived from every applied record; published by the primary
        self.follower = Follower(cluster.js, cluster.stream, cluster.subject, service,
                                 on_applied=None if events is None else events.record_executed)
        self.marker_seq = 0
        self._tasks: list[asyncio.Task] = []
        self._stepping_down = False
        self._shutting_down = False  # see begin_shutdown

    # what the service asks

    def writable(self) -> bool:
        return self.role == PRIMARY and not self._stepping_down

    def acknowledgeable_seq(self, local_durable_seq: int) -> int | None:
        """The log prefix replies may show; None while nothing more may be acknowledged."""
        if self.role != PRIMARY:
            return local_durable_seq  # a standby acknowledges no request of clients
        if self._stepping_down or not self.lease.held():
            return None
        return min(local_durable_seq, self.publisher.replicated_seq)

    def primary_address(self) -> str | None:
        holder = self.lease.holder
        return holder.advertise if holder is not None else None

    def on_wal_batch(self, records: list[bytes], first_seq: int) -> None:
        if self.role == PRIMARY:
            self.publisher.publish(records, first_seq)

    def refusal(self, mutating: bool) -> tuple[str, str] | None:
        """(code, message) for a request this node must refuse now, or None."""
        if self.role != PRIMARY or self._stepping_down:
            return codes.NOT_PRIMARY, f"node {self.me.node_id} is not the primary"
        if mutating and not self.publisher.healthy():
            return codes.UNAVAILABLE, (
                f"the replicated log does not acknowledge appends ({self.publisher.unreplicated_bytes}"
                f" bytes waiting, limit {self.config.max_unreplicated_bytes}); nothing new is "
                f"acknowledged: resend with the same ids")
        return None

    # running

    def start(self) -> None:
        if self.service.events is not None:
            self.service.events.pause()  # a standby's events are the primary's to publish
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._follow_then_lead()))

    async def _follow_then_lead(self) -> None:
        try:
            wal = self.service.wal
            start = await self.cluster.message_holding(wal.appended_seq + 1)
            if start is None:
                start = (await self.cluster.stream_bounds())[1] + 1
            self.follower.start(start)
            while True:
                if self.follower.failure is not None:
                    self.restart(f"following the stream failed: {self.follower.failure!r}")
                    return
                await self._track_standby_role()
                holder = await self.lease.read_holder()
                if holder is None and not self._shutting_down and await self.lease.try_acquire():
                    await self._promote()
                    return
                await asyncio.sleep(self.config.lease_poll_interval_s)
        except asyncio.CancelledError:
            raise
        except (NatsError, APIError, asyncio.TimeoutError) as error:
            self.restart(f"replication failed while following: {error!r}")
        except Exception:
            log.exception("replication_fault")
            self.restart("a fault in replication while following")

    async def _track_standby_role(self) -> None:
        """RECOVERING until the follower first reaches the stream's end, then STANDBY."""
        if self.role != RECOVERING:
            return
        last = (await self.cluster.stream_bounds())[1]
        if self.follower.applied_stream_seq >= last:
            self.role = STANDBY
            log.info("standby_following", applied_seq=self.service.wal.appended_seq,
                     primary=self.primary_address())

    async def _promote(self) -> None:
        """Holding the lease: apply the stream to its end, fence it, open for writes."""
        started_s = time.monotonic()
        keeping = asyncio.get_running_loop().create_task(self._keep_lease())
        self._tasks.append(keeping)
        service, cluster = self.service, self.cluster
        was_empty = (await cluster.stream_bounds())[1] == 0
        while True:
            if self._shutting_down:
                return await self._hand_back(keeping)
            last = (await cluster.stream_bounds())[1]
            while self.follower.applied_stream_seq < last:
                if self.follower.failure is not None:
                    self.restart(f"catching up before promotion failed: {self.follower.failure!r}")
                    return
                await asyncio.sleep(CATCH_UP_POLL_S)
            applied = service.wal.appended_seq
            try:
                ack = await cluster.js.publish(cluster.subject, b"", headers={
                    FIRST_SEQ: str(applied + 1), LAST_SEQ: str(applied),
                    NODE: self.me.node_id, EXPECTED_LAST_SEQUENCE: str(last)})
            except APIError as error:
                if error.err_code == WRONG_LAST_SEQUENCE:
                    continue  # the old primary appended once more: apply that first
                raise
            except (NoStreamResponseError, NatsTimeout):  # a stream still electing its leader
                if not self.lease.held():
                    raise
                await asyncio.sleep(CATCH_UP_POLL_S * 10)
                continue
            break
        self.follower.stop()
        if self._shutting_down:
            return await self._hand_back(keeping)
        if self._stepping_down:
            return
        self.role = PRIMARY
        self.publisher.start(applied, ack.seq)
        if service.events is not None:
            service.events.resume()
        service.become_primary()
        if was_empty and applied:  # history from before replication: new nodes need it stored
            await service.wal.drain()
            service.snapshotter.save_now()
        log.warning("promoted_to_primary", applied_seq=applied, fence_stream_seq=ack.seq,
                    elapsed_s=round(time.monotonic() - started_s, 3))

    async def _hand_back(self, keeping: asyncio.Task) -> None:
        """The switch began to stop while this node was being promoted: the lease goes back at
        once, for another standby, and the node stays what it was."""
        keeping.cancel()
        await self.lease.release()
        log.warning("promotion_abandoned", node_id=self.me.node_id, reason="shutting down")

    async def _keep_lease(self) -> None:
        """Renews every lease_renew_interval_s; steps down when the lease is lost or its time
        (by this node's clock) runs out before a renewal succeeds."""
        interval_s = self.config.lease_renew_interval_s
        while not self._stepping_down:
            await asyncio.sleep(interval_s)
            if not self.lease.held():
                self.step_down("the lease ran out before it could be renewed")
                return
            remaining_s = self.lease.valid_until_s - time.monotonic()
            try:
                await asyncio.wait_for(self.lease.renew(), max(remaining_s, 0.001))
            except LeaseLost as error:
                self.step_down(str(error))
                return
            except (NatsError, APIError, asyncio.TimeoutError) as error:
                log.warning("lease_renewal_failed", error=repr(error),
                            valid_for_s=round(self.lease.valid_until_s - time.monotonic(), 3))

    def _replicated(self, seq: int) -> None:
        self.service.on_durable(seq)

    def step_down(self, reason: str) -> None:
        """Stops acknowledging at once, fails what is in flight, and restarts as a standby."""
        if self._stepping_down:
            return
        self._stepping_down = True
        log.critical("stepping_down", reason=reason, node_id=self.me.node_id,
                     replicated_seq=self.publisher.replicated_seq,
                     action="restarting as a standby")
        self.publisher.stop()
        if self.service.events is not None:
            self.service.events.pause()
        self.service.fail_unacknowledged(
            codes.NOT_PRIMARY, f"node {self.me.node_id} stopped being the primary ({reason}); "
            f"the request may or may not have committed: resend it with the same ids",
            primary=None)
        self._request_restart(reason)

    def restart(self, reason: str) -> None:
        if self.role == PRIMARY:
            self.step_down(reason)
            return
        self._stepping_down = True
        log.error("replication_restart", reason=reason)
        self._request_restart(reason)

    def write_marker(self) -> None:
        """Housekeeping, once a second: how far this node's log is known to be in the stream."""
        seq = (self.service.durable_seq if self.role in (PRIMARY, STANDBY)
               else self.marker_seq)
        if seq > self.marker_seq and not self._stepping_down:
            write_marker(self.config.data_dir, seq)
            self.marker_seq = seq

    def snapshot_published(self, seq: int) -> None:
        if self.role == PRIMARY:
            self._tasks.append(asyncio.get_running_loop().create_task(self._upload(seq)))

    async def _upload(self, seq: int) -> None:
        try:
            await upload(self.cluster, seq, snapshot_path(self.config.snapshot_dir, seq),
                         self.config.snapshots_kept)
        except (NatsError, APIError, asyncio.TimeoutError, OSError) as error:
            log.error("snapshot_upload_failed", seq=seq, error=repr(error),
                      consequence="new nodes start from an older snapshot; the stream is not "
                                  "trimmed until an upload succeeds")

    def stats(self) -> dict:
        applied = self.service.wal.appended_seq
        primary = self.role == PRIMARY
        replicated = (self.publisher.replicated_seq if primary
                      else self.follower.stream_last_record_seq)
        nc = self.cluster.nc
        # lag: on the primary, records not yet in the stream; on a standby, records in the
        # stream not yet applied here
        return {"node_id": self.me.node_id, "advertise": self.me.advertise,
                "applied_seq": applied, "replicated_seq": replicated,
                "lag_records": max(0, applied - replicated if primary else replicated - applied),
                "lease_holder": None if self.lease.holder is None else self.lease.holder.node_id,
                "primary": self.primary_address(),
                "unreplicated_bytes": self.publisher.unreplicated_bytes,
                "nats_servers": [str(url.netloc) for url in nc.servers] if nc else [],
                "nats_connected": str(nc.connected_url.netloc) if nc and nc.connected_url else None,
                "stream": self.cluster.stream}

    def begin_shutdown(self) -> None:
        """The switch begins to stop: a node not the primary yet never becomes it. It takes no
        lease from here on, and a promotion under way stops short of opening for writes; else
        a standby stopping as the primary hands the lease back would take over only to stop,
        its shutdown then waiting for what a primary's waits for."""
        self._shutting_down = True

    async def drain(self, deadline_s: float) -> None:
        """At shutdown: waits (until the loop time `deadline_s`) for the stream to acknowledge
        everything appended, so the replies waiting for it can leave."""
        loop = asyncio.get_running_loop()
        while (self.role == PRIMARY and not self._stepping_down
               and self.publisher.replicated_seq < self.service.wal.appended_seq
               and loop.time() < deadline_s):
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """At a clean shutdown: stop, and hand the lease back so a standby need not wait."""
        for task in self._tasks:
            task.cancel()
        self.follower.stop()
        self.publisher.stop()
        await self.lease.release()
        await self.cluster.close()
