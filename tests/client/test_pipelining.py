"""Replies are matched to requests strictly in order, and a connection whose order can no longer
be trusted (wrong id, timeout, cancellation) is closed instead of being reused."""

import asyncio

import pytest

from payswitch.client import AsyncClient, ConnectionLost, ProtocolViolation, RequestTimeout
from payswitch.protocol import encode_body, encode_frame, error_reply, ok_reply


async def connect(peer, **kwargs) -> AsyncClient:
    return await AsyncClient.connect(port=peer.port, token="t", **kwargs)


def frame(reply: dict) -> bytes:
    return encode_frame(encode_body(reply, "msgpack"))


async def test_pipelined_requests_each_get_their_own_reply(peer):
    async with await connect(peer) as client:
        results = await asyncio.gather(*(client.request("echo", {"n": n}) for n in range(300)))
    assert [r["echo"]["args"]["n"] for r in results] == list(range(300))
    assert peer.connections == 1
    assert [r["id"] for r in peer.requests] == list(range(1, 302))  # hello is 1


async def test_reply_with_the_wrong_id_closes_the_connection(peer):
    peer.on("bad", lambda request: ok_reply(request["id"] + 1, {}))
    async with await connect(peer) as client:
        with pytest.raises(ProtocolViolation, match="does not match request id 2"):
            await client.request("bad")
        await peer.wait_for(lambda: peer.closed_by_client == 1)
        # The next call opens a fresh, authenticated connection.
        assert (await client.request("echo", {"n": 7}))["echo"]["args"] == {"n": 7}
    assert peer.connections == 2
    assert len(peer.ops("hello")) == 2


async def test_wrong_id_fails_every_request_behind_it(peer):
    peer.on("bad", lambda request: ok_reply(request["id"] + 1, {}))
    async with await connect(peer) as client:
        outcomes = await asyncio.gather(
            client.request("bad"), *(client.request("echo") for _ in range(5)),
            return_exceptions=True)
    assert isinstance(outcomes[0], ProtocolViolation)
    assert all(isinstance(o, ConnectionLost) for o in outcomes[1:])


async def test_error_reply_with_null_id_is_a_violation_that_names_the_server_error(peer):
    peer.on("bad", lambda request: error_reply(None, "bad_frame", "garbled"))
    async with await connect(peer) as client:
        with pytest.raises(ProtocolViolation, match="bad_frame: garbled"):
            await client.request("bad")


async def test_reply_with_a_bool_id_is_not_taken_for_id_1(peer):
    # True == 1 in Python, but it is not the integer id the client sent.
    peer.on("hello", lambda request: {**peer.default_answer(request), "id": True})
    with pytest.raises(ProtocolViolation):
        await connect(peer)


async def test_a_reply_to_no_request_closes_the_connection(peer):
    peer.on("dup", lambda request: frame(ok_reply(request["id"], {})) * 2)
    async with await connect(peer) as client:
        await client.request("dup")  # the first copy answers it
        await peer.wait_for(lambda: peer.closed_by_client == 1)


async def test_timeout_closes_the_connection_and_the_late_reply_reaches_nobody(peer):
    async def slow(request):
        await asyncio.sleep(0.3)
        return ok_reply(request["id"], {"mine": "slow"})
    peer.on("slow", slow)
    async with await connect(peer, timeout_s=0.1) as client:
        slow_request = asyncio.create_task(client.request("slow"))
        await asyncio.sleep(0.05)
        behind = asyncio.create_task(client.request("echo", {"n": 1}))
        with pytest.raises(RequestTimeout):
            await slow_request
        with pytest.raises(ConnectionLost):  # it was queued behind the timed-out request
            await behind
        await peer.wait_for(lambda: peer.closed_by_client == 1)
        await asyncio.sleep(0.3)  # the slow reply is written (to a closed socket) meanwhile
        assert (await client.request("echo", {"n": 2}))["echo"]["args"] == {"n": 2}
    assert peer.connections == 2


async def test_cancelled_request_closes_the_connection(peer):
    peer.on("hang", lambda request: peer.SILENT)
    async with await connect(peer) as client:
        task = asyncio.create_task(client.request("hang"))
        await peer.wait_for(lambda: peer.ops("hang"))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await peer.wait_for(lambda: peer.closed_by_client == 1)
        assert (await client.request("echo", {"n": 3}))["echo"]["args"] == {"n": 3}
    assert len(peer.ops("hello")) == 2


async def test_reply_larger_than_the_client_limit_closes_the_connection(peer):
    peer.on("big", lambda request: ok_reply(request["id"], {"blob": b"x" * 5000}))
    async with await connect(peer, max_reply_bytes=1000) as client:
        with pytest.raises(ProtocolViolation, match="exceeds the client's limit"):
            await client.request("big")


async def test_undecodable_reply_closes_the_connection(peer):
    # JSON by its first byte, but not JSON.
    peer.on("garbled", lambda request: b"\x00\x00\x00\x02{x")
    async with await connect(peer) as client:
        with pytest.raises(ProtocolViolation, match="undecodable"):
            await client.request("garbled")


async def test_frames_written_together_leave_in_one_write(peer, monkeypatch):
    async with await connect(peer) as client:
        writes = []
        transport = client._conn._transport
        original = transport.write
        monkeypatch.setattr(transport, "write", lambda data: (writes.append(data), original(data)))
        await asyncio.gather(*(client.request("echo") for _ in range(50)))
    assert len(writes) == 1
