"""Matching replies to pipelined requests on one connection, sans-IO: bytes in, (request, reply)
pairs out, in request order.

The switch answers a connection's requests in the order they came, so every reply must carry
the id of the oldest request still outstanding. Anything else (another id, id null for a frame
the switch could not read, an undecodable body, a reply nobody asked for, a reply over the size
limit) means it can no longer be told which reply is whose: `ReplyMismatch` is raised, and the
caller must drop the connection rather than read on. So must a caller that gives up on a request
(timeout, cancel) with its reply still to come: the next request would read that reply (the
redis-py CVE-2023-28858 bug). Used by the SDK, the load generator and the tests.
"""

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from .codec import decode_body
from .errors import ProtocolError
from .framing import FrameDecoder

__all__ = ["ReplyMismatch", "InOrderReplies", "decode_reply"]


class ReplyMismatch(Exception):
    """The replies can no longer be matched to requests; `reply` is the offending one when it
    was decoded (a `bad_frame` error with id null says what the switch could not read)."""

    def __init__(self, message: str, reply: dict[str, Any] | None = None):
        super().__init__(message)
        self.reply = reply


def decode_reply(body: bytes) -> dict[str, Any]:
    """A reply body (either codec) as its map; raises ProtocolError when it does not decode."""
    return decode_body(body)[0]


class InOrderReplies:
    """The requests outstanding on one connection, oldest first, and the replies that answer
    them. Call `sent(request_id, request)` for each request in the order it is written, and feed
    what the connection reads to `feed`; `request` is whatever the caller needs back with its
    reply."""

    def __init__(self, max_reply_bytes: int,
                 decode: Callable[[bytes], Any] = decode_reply):
        self._decoder = FrameDecoder(max_reply_bytes)
        self._decode = decode
        # (request_id, request), oldest first; what a reconnecting caller resends.
        self.outstanding: deque[tuple[Any, Any]] = deque()

    def sent(self, request_id: Any, request: Any) -> None:
        self.outstanding.append((request_id, request))

    def sent_many(self, pairs: list[tuple[Any, Any]]) -> None:
        """`sent` for each (request_id, request), in the order written."""
        self.outstanding.extend(pairs)

    def restart_framing(self) -> None:
        """A new connection for the same outstanding requests (the caller resends them in
        order): nothing read from the old one carries over."""
        self._decoder = FrameDecoder(self._decoder.max_frame_bytes)

    def feed(self, data: bytes) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Splits `data` into frames now; yields (request, reply) for each whole reply as the
        caller iterates, and raises ReplyMismatch at the first that does not answer the oldest
        outstanding request (after yielding those before it). A caller that stops iterating
        early leaves the rest unread: it is dropping the connection."""
        bodies = self._decoder.feed(data)
        too_large = self._decoder.too_large_length
        return self._matched(bodies, too_large)

    def _matched(self, bodies: list[bytes],
                 too_large: int | None) -> Iterator[tuple[Any, dict[str, Any]]]:
        decode, outstanding = self._decode, self.outstanding  # per reply: kept lean
        for body in bodies:
            try:
                reply = decode(body)
            except (ProtocolError, ValueError, TypeError) as exc:
                raise ReplyMismatch(f"undecodable reply: {exc}") from None
            if type(reply) is not dict:
                raise ReplyMismatch(f"reply is a {type(reply).__name__}, not a map")
            reply_id = reply.get("id")
            if not outstanding:
                raise ReplyMismatch(f"reply {reply_id!r} to no request", reply)
            expected_id, request = outstanding[0]
            if reply_id != expected_id or type(reply_id) is not type(expected_id):
                raise ReplyMismatch(_mismatch_message(reply, expected_id), reply)
            outstanding.popleft()
            yield request, reply
        if too_large is not None:
            raise ReplyMismatch(f"reply of {too_large} bytes exceeds the client's limit")

    def match(self, body: bytes) -> tuple[Any, dict[str, Any]]:
        """(request, reply) for one reply body, the request no longer outstanding."""
        return next(self._matched([body], None))


def _mismatch_message(reply: dict[str, Any], expected_id: Any) -> str:
    message = f"reply id {reply.get('id')!r} does not match request id {expected_id!r}"
    error = reply.get("error")
    if isinstance(error, dict):  # e.g. a `bad_frame` answered with id null
        message += f" (server error {error.get('code')}: {error.get('message')})"
    return message
