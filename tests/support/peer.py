"""A scripted raw TCP peer for testing the clients' own defences.

This is not a switch: it knows no ledger and answers only what each test scripts (by default an
echo of the request). It exists to misbehave on cue (wrong reply ids, silence, dropped
connections), which a correct server never does, and to stand in for a standby.
"""

import asyncio
import inspect
from collections.abc import Callable

from payswitch.protocol import (
    FrameDecoder, codes, decode_body, encode_body, encode_frame, error_reply, ok_reply,
)
from payswitch.protocol.ops import STANDBY_OPS

PEER_MAX_FRAME_BYTES = 1 << 20


def default_answer(request: dict) -> dict:
    if request["op"] == "hello":
        result = {"participant": request["args"]["participant"], "server": "test-peer",
                  "max_frame_bytes": PEER_MAX_FRAME_BYTES}
    else:
        result = {"echo": {"op": request["op"], "args": request.get("args")}}
    return ok_reply(request["id"], result)


class Peer:
    """Tests get one from the `peer` and `thread_peer` fixtures (tests/conftest.py)."""

    CLOSE = "close"  # a script returns this to drop the connection without replying
    SILENT = "silent"  # ... or this to read the request and never answer it
    default_answer = staticmethod(default_answer)

    def __init__(self):
        self.scripts: dict[str, Callable] = {}
        self.requests: list[dict] = []  # every request, in arrival order
        self.codecs: list[str] = []
        self.connections = 0
        self.closed_by_client = 0  # connections on which the peer read EOF
        self._tasks: set[asyncio.Task] = set()
        self.port = 0

    def on(self, op: str, script: Callable) -> None:
        """`script(request)` (sync or async) returns a reply map, raw bytes to write as they are,
        CLOSE or SILENT."""
        self.scripts[op] = script

    def act_as_standby(self, primary: str | None) -> None:
        """From now on answer hello, ping and stats as before and everything else with
        `not_primary` naming `primary` ("host:port", None: unknown), as a standby does: a
        stand-in until a replicating switch can play the part."""
        answer_as_peer = self.default_answer

        def answer(request: dict) -> dict:
            if request["op"] in STANDBY_OPS:  # what a standby answers itself
                return answer_as_peer(request)
            return error_reply(request["id"], codes.NOT_PRIMARY, "this node is a standby",
                               primary=primary)
        self.default_answer = answer

    def ops(self, op: str) -> list[dict]:
        return [r for r in self.requests if r["op"] == op]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._tasks.add(asyncio.current_task())
        decoder = FrameDecoder(PEER_MAX_FRAME_BYTES)
        try:
            while data := await reader.read(1 << 16):
                for body in decoder.feed(data):
                    if not await self._answer(body, writer):
                        return
            self.closed_by_client += 1
        except ConnectionError:
            self.closed_by_client += 1
        except asyncio.CancelledError:
            pass  # stopped by the test; asyncio would log a cancelled connection task
        finally:
            self._tasks.discard(asyncio.current_task())
            writer.close()

    async def _answer(self, body: bytes, writer: asyncio.StreamWriter) -> bool:
        request, codec = decode_body(body)
        self.requests.append(request)
        self.codecs.append(codec)
        reply = self.scripts.get(request["op"], self.default_answer)(request)
        if inspect.isawaitable(reply):
            reply = await reply
        if reply == self.CLOSE:
            return False
        if reply == self.SILENT or writer.is_closing():
            return True
        writer.write(reply if isinstance(reply, bytes) else encode_frame(encode_body(reply, codec)))
        return True

    async def wait_for(self, condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not condition():
                await asyncio.sleep(0.005)
