"""The async SDK against a scripted peer: typed results, error mapping, safe retries."""

import asyncio
import socket
import time

import pytest

from payswitch.client import (
    Account, AsyncClient, ConnectionLost, InsufficientFunds, NotFound, OutcomeUnknown,
    SwitchError, TransferResult, TransportError, Unauthenticated, Window,
)
from payswitch.protocol import error_reply, ok_reply


async def connect(peer, **kwargs) -> AsyncClient:
    kwargs.setdefault("backoff_s", 0.001)
    return await AsyncClient.connect(port=peer.port, token="t", **kwargs)


async def test_hello_carries_participant_and_token(peer):
    async with await AsyncClient.connect(port=peer.port, participant="bank-a", token="s3cret") as c:
        assert c.server_info["max_frame_bytes"] == 1 << 20
    assert peer.requests[0] == {"id": 1, "op": "hello",
                                "args": {"participant": "bank-a", "token": "s3cret"}}


async def test_rejected_hello_raises_unauthenticated(peer):
    peer.on("hello", lambda r: error_reply(r["id"], "unauthenticated", "wrong token"))
    with pytest.raises(Unauthenticated, match="wrong token"):
        await connect(peer)


async def test_connect_to_a_closed_port_raises_connection_lost():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(ConnectionLost, match=f"127.0.0.1:{port}"):
            await AsyncClient.connect(port=port, token="t")


async def test_transfer_sends_the_wire_item_and_returns_its_result(peer):
    peer.on("transfer", lambda r: ok_reply(r["id"], {"status": "created", "timestamp": 42}))
    async with await connect(peer) as client:
        result = await client.transfer("t1", "a", "b", 100, currency="USD", pending=True,
                                       timeout_s=30)
    assert result == TransferResult("created", 42) and result.ok
    assert peer.ops("transfer")[0]["args"] == {
        "id": "t1", "debit_account": "a", "credit_account": "b", "amount": 100,
        "currency": "USD", "pending": True, "timeout": 30}


async def test_post_and_void_name_the_pending_transfer(peer):
    peer.on("transfer", lambda r: ok_reply(r["id"], {"status": "created", "timestamp": 1}))
    async with await connect(peer) as client:
        await client.post_pending("p1", "t1", amount=40)
        await client.void_pending("v1", "t2")
    assert [r["args"] for r in peer.ops("transfer")] == [
        {"id": "p1", "amount": 40, "post_pending_id": "t1"},
        {"id": "v1", "void_pending_id": "t2"}]


async def test_failed_transfer_raises_with_the_item_code(peer):
    peer.on("transfer", lambda r: error_reply(r["id"], "insufficient_funds", "short by 5"))
    async with await connect(peer) as client:
        with pytest.raises(InsufficientFunds) as caught:
            await client.transfer("t1", "a", "b", 100)
    assert caught.value.code == "insufficient_funds" and isinstance(caught.value, SwitchError)


async def test_not_found_codes_share_a_class(peer):
    peer.on("get_window", lambda r: error_reply(r["id"], "window_not_found", "no window 9"))
    async with await connect(peer) as client:
        with pytest.raises(NotFound):
            await client.get_window(9)


async def test_batch_results_come_back_in_order_and_typed(peer):
    statuses = ["created", "exists", "insufficient_funds"]
    peer.on("create_transfers", lambda r: ok_reply(r["id"], {"results": [
        {"status": s, "timestamp": None if s == "insufficient_funds" else 7} for s in statuses]}))
    async with await connect(peer) as client:
        results = await client.create_transfers([{"id": str(i)} for i in range(3)])
    assert [r.status for r in results] == statuses
    assert [r.ok for r in results] == [True, True, False]


async def test_results_ignore_fields_they_do_not_know(peer):
    account = {"id": "a", "participant": "p", "currency": "USD", "overdraft_limit": None,
               "debits_posted": 1, "credits_posted": 5, "debits_pending": 2,
               "credits_pending": 0, "balance": 4, "available": 2, "added_later": True}
    peer.on("lookup_accounts", lambda r: ok_reply(r["id"], {"accounts": [account]}))
    async with await connect(peer) as client:
        [found] = await client.lookup_accounts(["a", "unknown"])
    assert found == Account("a", "p", "USD", None, 1, 5, 2, 0, 4, 2)


async def test_window_report_is_parsed(peer):
    report = {"window_id": 1, "state": "closed", "opened_at": 1, "closed_at": 2, "transfers": 1,
              "positions": [{"participant": "x", "currency": "USD", "debits": 5, "credits": 0,
                             "net": -5}],
              "instructions": [{"participant": "x", "currency": "USD", "pay": 5}]}
    peer.on("close_window", lambda r: ok_reply(r["id"], report))
    async with await connect(peer) as client:
        window = await client.close_window()
    assert isinstance(window, Window) and window.positions[0].net == -5
    assert window.instructions[0].pay == 5 and window.instructions[0].receive is None


@pytest.mark.parametrize("failure", ["close", "slow"])
async def test_transfer_is_resent_with_the_same_id_after_a_lost_reply(peer, failure):
    async def answer(request):
        if len(peer.ops("transfer")) == 1:
            if failure == "close":
                return "close"
            await asyncio.sleep(0.5)  # past the client's timeout
        # Like the switch, the replay of a committed id answers `exists`.
        return ok_reply(request["id"], {"status": "exists", "timestamp": 9})
    peer.on("transfer", answer)
    async with await connect(peer, timeout_s=0.2) as client:
        result = await client.transfer("t1", "a", "b", 100)
    assert result.ok and result.status == "exists"
    first, second = peer.ops("transfer")
    assert first["args"] == second["args"]
    assert len(peer.ops("hello")) == 2  # the new connection authenticated first


async def test_transfer_whose_outcome_stays_unknown_is_not_reported_failed(peer):
    """Every attempt is lost after it reached the switch: at the deadline the caller learns the
    outcome is unknown (it may have committed), a distinct error saying the id is safe to resend."""
    peer.on("transfer", lambda r: "close")
    async with await connect(peer, retry_deadline_s=0.3, max_backoff_s=0.02) as client:
        with pytest.raises(OutcomeUnknown) as caught:
            await client.transfer("t1", "a", "b", 100)
    assert not isinstance(caught.value, (ConnectionLost, SwitchError))
    assert isinstance(caught.value, TransportError)
    assert "transfer t1: outcome unknown" in str(caught.value) and "same id" in str(caught.value)
    attempts = peer.ops("transfer")
    assert len(attempts) >= 2 and all(a["args"] == attempts[0]["args"] for a in attempts)


async def test_create_transfers_outcome_unknown_after_the_deadline(peer):
    peer.on("create_transfers", lambda r: "close")
    async with await connect(peer, retry_deadline_s=0.2, max_backoff_s=0.02) as client:
        with pytest.raises(OutcomeUnknown):
            await client.create_transfers([{"id": "t1"}])
    assert len(peer.ops("create_transfers")) >= 2


async def test_reads_give_up_with_the_transport_error_at_the_deadline(peer):
    peer.on("lookup_transfers", lambda r: "close")
    async with await connect(peer, retry_deadline_s=0.2, max_backoff_s=0.02) as client:
        with pytest.raises(ConnectionLost):
            await client.lookup_transfers(["t1"])
    assert len(peer.ops("lookup_transfers")) >= 2


async def test_backoff_doubles_up_to_its_cap_within_the_deadline(peer):
    """Waits between attempts are jittered in [half, all] of min(cap, first * 2^n): never
    shorter, so the attempts within the deadline are bounded."""
    arrivals = []

    def lost(request):
        arrivals.append(time.monotonic())
        return "close"
    peer.on("lookup_accounts", lost)
    async with await connect(peer, backoff_s=0.01, max_backoff_s=0.04,
                             retry_deadline_s=0.6) as client:
        with pytest.raises(ConnectionLost):
            await client.lookup_accounts(["a"])
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    floors = [min(0.04, 0.01 * 2 ** n) / 2 for n in range(len(gaps))]
    assert len(gaps) >= 2 and all(gap >= floor for gap, floor in zip(gaps, floors))
    assert len(arrivals) <= 1 + 3 + (0.6 / 0.02)  # 3 growing waits, then >= 0.02 s each


def test_retry_settings_are_checked():
    with pytest.raises(ValueError, match="backoff_s"):
        asyncio.run(AsyncClient.connect(token="t", backoff_s=2.0, max_backoff_s=1.0))


async def test_create_participants_is_never_resent(peer):
    peer.on("create_participants", lambda r: "close")
    async with await connect(peer) as client:
        with pytest.raises(ConnectionLost):
            await client.create_participants([{"id": "bank-a", "name": "A"}])
    assert len(peer.ops("create_participants")) == 1


async def test_close_window_is_never_resent(peer):
    peer.on("close_window", lambda r: "close")
    async with await connect(peer) as client:
        with pytest.raises(ConnectionLost):
            await client.close_window()
    assert len(peer.ops("close_window")) == 1


async def test_overloaded_reads_are_retried(peer):
    attempts = []

    def overloaded_once(request):
        attempts.append(request)
        if len(attempts) == 1:
            return error_reply(request["id"], "overloaded", "busy")
        return ok_reply(request["id"], {"transfers": []})
    peer.on("lookup_transfers", overloaded_once)
    async with await connect(peer) as client:
        assert await client.lookup_transfers(["t1"]) == []
    assert len(attempts) == 2 and peer.connections == 1


async def test_oversized_request_is_refused_before_sending(peer):
    peer.on("hello", lambda r: ok_reply(r["id"], {"participant": "admin", "server": "p",
                                                  "max_frame_bytes": 200}))
    async with await connect(peer) as client:
        with pytest.raises(SwitchError) as caught:
            await client.create_transfers([{"id": "t", "reference": "x" * 300}])
        assert caught.value.code == "frame_too_large"
        await client.ping()  # the connection is still good
    assert peer.connections == 1 and not peer.ops("create_transfers")


async def test_json_codec_is_used_for_every_frame(peer):
    async with await connect(peer, codec="json") as client:
        await client.upload_batch_part("b1", 0, b"\x00\xff")
    assert peer.codecs == ["json", "json"]
    assert peer.ops("upload_batch_part")[0]["args"]["data"] == "AP8="  # base64 in JSON


async def test_close_fails_requests_in_flight_and_later_calls(peer):
    peer.on("hang", lambda r: "silent")
    client = await connect(peer)
    pending = asyncio.create_task(client.request("hang"))
    await peer.wait_for(lambda: peer.ops("hang"))
    await client.close()
    with pytest.raises(ConnectionLost):
        await pending
    with pytest.raises(ConnectionLost, match="client is closed"):
        await client.ping()


async def test_thousands_of_quick_retries_keep_their_backoff_finite(peer):
    """A switch that is gone refuses each reconnect at once: with tiny waits, past 1024 attempts
    the doubling must not overflow a float; the read ends with the connection failure."""
    async with await connect(peer, backoff_s=1e-7, max_backoff_s=1e-6,
                             retry_deadline_s=1.5) as client:
        await client.ping()
        await peer.stop()  # nothing listens any more
        with pytest.raises(ConnectionLost):
            await client.lookup_accounts(["a"])
