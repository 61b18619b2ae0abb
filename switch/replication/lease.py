"""Leadership: one key in a JetStream key-value bucket whose entries expire after the lease TTL.

The holder renews by compare-and-set on the key's revision; anyone else may create the key only
once it has expired. The holder counts its lease from the moment it *sent* the create or renewal
(its own monotonic clock, which keeps running while the process is stopped), minus a safety
margin, so it believes in its lease strictly shorter than the bucket keeps the entry: by the time
another node can take the key, this one has stopped acknowledging. Safety does not rest on clocks
alone: a new primary also fences the stream (see wire.py), so a deposed primary's append fails.
"""
import asyncio
import json
import time
from typing import NamedTuple

from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError

LEASE_KEY = "primary"


class Holder(NamedTuple):
    node_id: str
    advertise: str  # host:port clients are sent to


class LeaseLost(Exception):
    """The key was renewed or taken by someone else: this node is no longer the primary."""


class Lease:
    def __init__(self, kv, me: Holder, ttl_s: float, safety_margin_s: float):
        self.kv = kv
        self.me = me
        self.ttl_s = ttl_s
        self.safety_margin_s = safety_margin_s
        self.revision: int | None = None  # of our entry while we hold the lease
        self.valid_until_s = 0.0  # monotonic
        self.holder: Holder | None = None  # as last seen

    def _value(self) -> bytes:
        return json.dumps({"node_id": self.me.node_id, "advertise": self.me.advertise}).encode()

    def held(self) -> bool:
        """Whether this node may still act as primary, by its own clock."""
        return self.revision is not None and time.monotonic() < self.valid_until_s

    async def read_holder(self) -> Holder | None:
        """The current holder, or None when the key is absent (expired or never taken)."""
        try:
            entry = await self.kv.get(LEASE_KEY)
        except (KeyNotFoundError, NotFoundError):
            self.holder = None
            return None
        if entry.value is None:
            self.holder = None
            return None
        value = json.loads(entry.value)
        self.holder = Holder(value["node_id"], value["advertise"])
        return self.holder

    async def try_acquire(self) -> bool:
        """Takes the lease if nobody holds it; True when this node now holds it."""
        sent_s = time.monotonic()
        try:
            revision = await self.kv.create(LEASE_KEY, self._value())
        except (KeyWrongLastSequenceError, NotFoundError):  # taken meanwhile (nats-py looks
            return False                                      # the key up after a refusal)
        self._hold(revision, sent_s)
        return True

    async def renew(self) -> None:
        """Extends the lease; raises LeaseLost if someone else holds it now."""
        sent_s = time.monotonic()
        try:
            revision = await self.kv.update(LEASE_KEY, self._value(), last=self.revision)
        except (KeyWrongLastSequenceError, KeyNotFoundError, NotFoundError) as error:
            self.revision = None
            raise LeaseLost(f"the lease was taken or expired: {error}") from error
        self._hold(revision, sent_s)

    def _hold(self, revision: int, sent_s: float) -> None:
        self.revision = revision
        self.valid_until_s = sent_s + self.ttl_s - self.safety_margin_s
        self.holder = self.me

    async def release(self) -> None:
        """At a clean shutdown: deletes our entry so a standby need not wait for the TTL."""
        if self.revision is None:
            return
        revision, self.revision = self.revision, None
        try:
            await self.kv.delete(LEASE_KEY, last=revision)
        except (NatsError, asyncio.TimeoutError):  # someone else's now, or NATS is gone:
            pass                                     # the TTL ends it anyway
