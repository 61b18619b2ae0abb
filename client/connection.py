"""One pipelined connection: frames out, replies matched to requests strictly in order
(`protocol.replies`). When they can no longer be matched, the connection is closed and every
request on it fails. The same happens when a request is cancelled or times out: its reply would
otherwise be read by the next request (the redis-py CVE-2023-28858 bug).
"""

import asyncio
import ssl as _ssl
from typing import Any, cast

from payswitch.protocol import codes, encode_request
from payswitch.protocol.addresses import display_address
from payswitch.protocol.replies import InOrderReplies, ReplyMismatch

from .errors import ConnectionLost, ProtocolViolation, error_from_code

MAX_REPLY_BYTES = 64 * 1024 * 1024  # replies are not bound by the server's max_frame_bytes
_ABANDONED = "connection closed: a request on it timed out or was cancelled"


class Connection(asyncio.Protocol):
    """Use `await Connection.open(...)`; then `await request(op, args)` from any number of tasks."""

    def __init__(self, codec: str, max_reply_bytes: int):
        self._codec = codec
        self._replies = InOrderReplies(max_reply_bytes)  # (request id, future) outstanding
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._next_id = 1
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._lost = self._loop.create_future()
        self._failure: ConnectionLost | None = None
        # Learned from `hello`; larger requests are refused here instead of costing the connection.
        self.max_request_bytes: int | None = None

    @classmethod
    async def open(cls, host: str, port: int, codec: str,
                   max_reply_bytes: int = MAX_REPLY_BYTES,
                   ssl: _ssl.SSLContext | None = None) -> "Connection":
        """`ssl`: a client SSLContext to speak TLS (it checks the server's certificate against
        `host` unless its check_hostname is off; load a client certificate into it where the
        switch requires one)."""
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: cls(codec, max_reply_bytes), host, port,
                                                   ssl=ssl)
        except OSError as exc:  # ssl.SSLError (a failed handshake) is an OSError too
            raise ConnectionLost(
                f"cannot connect to {display_address(host, port)}: {exc}") from exc
        return conn

    @property
    def is_open(self) -> bool:
        return self._failure is None

    async def request(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return its `result`, or raise `SwitchError`/`ConnectionLost`."""
        if not self._writable.is_set():
            await self._writable.wait()  # the kernel buffer is full: let the peer catch up
        future = self._send(op, args)
        try:
            return await future
        except asyncio.CancelledError:
            self._fail(ConnectionLost, _ABANDONED)
            raise

    def close(self) -> None:
        self._fail(ConnectionLost, "connection closed")

    async def wait_closed(self) -> None:
        await asyncio.shield(self._lost)

    def _send(self, op: str, args: dict[str, Any]) -> asyncio.Future:
        if self._failure is not None:
            raise type(self._failure)(*self._failure.args)
        request_id = self._next_id
        frame = encode_request(request_id, op, args, self._codec)
        body_bytes = len(frame) - 4  # the length header does not count
        if self.max_request_bytes is not None and body_bytes > self.max_request_bytes:
            raise error_from_code(
                codes.FRAME_TOO_LARGE,
                f"request of {body_bytes} bytes exceeds the server's {self.max_request_bytes}")
        self._next_id += 1
        future = self._loop.create_future()
        self._replies.sent(request_id, future)
        self._out.append(frame)
        if not self._flush_scheduled:
            # Frames queued by many tasks in one loop iteration leave in one write.
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        if self._failure is None:
            self._transport.write(b"".join(out))

    def _fail(self, error_type: type[ConnectionLost], message: str) -> None:
        """Close the connection and fail every request still waiting on it."""
        if self._failure is None:
            self._failure = error_type(message)
        waiting = list(self._replies.outstanding)
        self._replies.outstanding.clear()
        for _, future in waiting:
            if not future.done():
                future.set_exception(error_type(message))
        self._writable.set()  # wake blocked writers so they see the failure
        if self._transport is not None:
            self._transport.abort()

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # a stream connection's

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f": {exc}" if exc else ""
        self._fail(ConnectionLost, f"connection closed by the server{reason}")
        if not self._lost.done():
            self._lost.set_result(None)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        if self._failure is not None:
            return
        try:
            for future, reply in self._replies.feed(data):
                if not _settle(future, reply):
                    message = f"malformed reply to request {reply['id']}"
                    if not future.done():
                        future.set_exception(ProtocolViolation(message))
                    return self._fail(ProtocolViolation, message)
        except ReplyMismatch as exc:
            self._fail(ProtocolViolation, str(exc))


def _settle(future: asyncio.Future, reply: dict) -> bool:
    """Resolve `future` from a reply envelope; False when the envelope is malformed."""
    ok, result, error = reply.get("ok"), reply.get("result"), reply.get("error")
    if ok is True and isinstance(result, dict):
        if not future.done():  # a cancelled request's future; the connection is closing anyway
            future.set_result(result)
    elif ok is False and isinstance(error, dict) and isinstance(error.get("code"), str):
        details = {k: v for k, v in error.items() if k not in ("code", "message")}
        if not future.done():
            future.set_exception(error_from_code(error["code"], str(error.get("message") or ""),
                                                 details))
    else:
        return False
    return True

