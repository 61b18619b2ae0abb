"""The blocking wrapper and the connection pool keep the async client's guarantees."""

import asyncio
import inspect
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from payswitch.client import AsyncClient, AsyncPool, Client, InsufficientFunds, RequestTimeout
from payswitch.protocol import error_reply, ok_reply


def test_sync_client_has_every_method_with_its_signature():
    for name in ("transfer", "create_transfers", "lookup_accounts", "request", "close_window"):
        assert inspect.signature(getattr(Client, name)) == \
            inspect.signature(getattr(AsyncClient, name))


def test_sync_client_calls_from_many_threads_share_one_connection(thread_peer):
    with Client(port=thread_peer.port, token="t") as client:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda n: client.request("echo", {"n": n}), range(100)))
    assert [r["echo"]["args"]["n"] for r in results] == list(range(100))
    assert thread_peer.connections == 1


def test_sync_client_raises_switch_errors(thread_peer):
    thread_peer.on("transfer", lambda r: error_reply(r["id"], "insufficient_funds", "short"))
    with Client.connect(port=thread_peer.port, token="t") as client:
        with pytest.raises(InsufficientFunds):
            client.transfer("t1", "a", "b", 5)


def test_sync_client_timeout_and_recovery(thread_peer):
    thread_peer.on("hang", lambda r: "silent")
    with Client(port=thread_peer.port, token="t", timeout_s=0.1) as client:
        with pytest.raises(RequestTimeout):
            client.request("hang")
        assert client.request("echo", {"n": 1})["echo"]["args"] == {"n": 1}
    assert thread_peer.connections == 2


def test_sync_client_close_stops_its_thread(thread_peer):
    before = threading.active_count()
    client = Client(port=thread_peer.port, token="t")
    client.close()
    client.close()  # idempotent
    assert threading.active_count() == before


async def test_pool_spreads_calls_over_its_connections(peer):
    release = asyncio.Event()

    async def held(request):
        await release.wait()
        return ok_reply(request["id"], {"n": request["args"]["n"]})
    peer.on("held", held)
    async with AsyncPool(3, port=peer.port, token="t") as pool:
        calls = [asyncio.create_task(pool.request("held", {"n": n})) for n in range(6)]
        await peer.wait_for(lambda: len(peer.ops("held")) == 3)  # one per connection so far
        release.set()
        results = await asyncio.gather(*calls)
    assert [r["n"] for r in results] == list(range(6))
    assert peer.connections == 3


async def test_pool_connects_on_first_use(peer):
    pool = AsyncPool(2, port=peer.port, token="t")
    try:
        await pool.ping()
    finally:
        await pool.close()
    assert len(peer.ops("hello")) == 2
