"""The request pipeline in process, bytes in and bytes out (switch/session.py), over the real
Service: ledger, WAL on disk, checks in the contract's order. No socket is involved."""
import itertools

from payswitch.protocol import FrameDecoder, decode_body, encode_body, encode_frame
from support.in_process import exchange, feed, new_session, released

FUNDS = 1_000_000


def frame(request_id, op: str, args: dict, codec: str = "msgpack") -> bytes:
    return encode_frame(encode_body({"id": request_id, "op": op, "args": args}, codec))


def replies(data: bytes) -> list[dict]:
    return [decode_body(body)[0] for body in FrameDecoder(1 << 30).feed(data)]


async def open_accounts(service, session) -> None:
    setup = b"".join([
        frame(1, "create_participants", {"participants": [{"id": "bank-a", "name": "A"}]}),
        frame(2, "create_accounts", {"accounts": [
            {"id": "a-funding", "participant": "bank-a", "currency": "USD",
             "overdraft_limit": None},
            {"id": "a-1", "participant": "bank-a", "currency": "USD"},
            {"id": "a-2", "participant": "bank-a", "currency": "USD"}]}),
        frame(3, "transfer", {"id": "fund", "debit_account": "a-funding",
                              "credit_account": "a-1", "amount": FUNDS}),
    ])
    answered = replies(await exchange(service, session, setup))
    assert [reply["ok"] for reply in answered] == [True, True, True], answered


async def test_pipelined_requests_are_answered_in_order_in_one_output(event_loop_service):
    service = event_loop_service(durability="none")
    session = new_session(service)
    await open_accounts(service, session)
    pipelined = b"".join(frame(f"r{n}", "transfer", {
        "id": f"t{n}", "debit_account": "a-1", "credit_account": "a-2", "amount": 10 + n})
        for n in range(5))
    answered = replies(await exchange(service, session, pipelined + frame("q", "lookup_accounts", {
        "ids": ["a-1", "a-2"]})))
    assert [reply["id"] for reply in answered] == ["r0", "r1", "r2", "r3", "r4", "q"]
    assert all(reply["ok"] for reply in answered), answered
    balances = {a["id"]: a["balance"] for a in answered[-1]["result"]["accounts"]}
    moved = sum(10 + n for n in range(5))
    assert balances == {"a-1": FUNDS - moved, "a-2": moved}
    [stats] = replies(await exchange(service, session, frame("s", "stats", {})))
    assert stats["result"]["requests_total"] == 3 + 6 + 1  # set-up, the pipeline, this one


async def test_a_frame_fed_a_byte_at_a_time_is_answered_once_complete(event_loop_service):
    service = event_loop_service(durability="none")
    session = new_session(service)
    data = frame(7, "ping", {}, codec="json")
    for index in range(len(data) - 1):
        assert await exchange(service, session, data[index:index + 1]) == b""
        assert session.partial_since_s is not None  # the frame timeout runs
    [reply] = replies(await exchange(service, session, data[-1:]))
    assert reply == {"id": 7, "ok": True, "result": {}}
    assert session.partial_since_s is None


async def test_replies_are_held_until_the_log_is_durable_up_to_their_request(
        event_loop_service):
    service = event_loop_service(durability="fsync")
    session = new_session(service)
    await open_accounts(service, session)

    executed_at = service.wal.appended_seq + 1
    output = feed(service, session, frame("w", "transfer", {
        "id": "t-held", "debit_account": "a-1", "credit_account": "a-2", "amount": 5})
        + frame("r", "lookup_accounts", {"ids": ["a-2"]}) + frame("p", "ping", {}))
    assert output == b"" and session.holding and service.wal.appended_seq == executed_at
    # the read and the ping wait behind the write, whose record is not durable yet
    session.release(executed_at - 1, service.loop.time())
    assert session.take_output() == b""
    await service.wal.drain()
    assert service.durable_seq >= executed_at
    answered = replies(released(service, session))
    assert [reply["id"] for reply in answered] == ["w", "r", "p"]
    assert answered[1]["result"]["accounts"][0]["balance"] == 5
    assert not session.holding and service.queued_replies == 0


async def test_a_bad_frame_is_answered_and_the_next_one_still_served(event_loop_service):
    service = event_loop_service(durability="none")
    session = new_session(service)
    garbage = encode_frame(b"\xc1\xc1")  # 0xc1 is never valid MessagePack
    answered = replies(await exchange(service, session, garbage + frame(9, "ping", {})))
    assert answered[0]["ok"] is False and answered[0]["error"]["code"] == "bad_frame"
    assert answered[1] == {"id": 9, "ok": True, "result": {}}


async def test_an_oversized_length_answers_what_came_before_then_closes(event_loop_service):
    service = event_loop_service(durability="none", max_frame_bytes=1024)
    session = new_session(service)
    output = await exchange(service, session, frame(1, "ping", {}) + (5000).to_bytes(4, "big"))
    first, last = replies(output)
    assert first == {"id": 1, "ok": True, "result": {}}
    assert (last["id"], last["error"]["code"]) == (None, "frame_too_large")
    assert "5000" in last["error"]["message"] and "max_frame_bytes" in last["error"]["message"]
    assert session.close_wanted
    assert await exchange(service, session, frame(2, "ping", {})) == b""  # nothing more read


async def test_past_the_in_flight_limit_requests_are_refused_and_reading_pauses(
        event_loop_service):
    service = event_loop_service(durability="fsync", max_inflight_per_connection=4)
    session = new_session(service)
    requests = b"".join(frame(n, "list_windows", {}) for n in range(6))
    assert feed(service, session, requests) == b""  # four held, then two refused behind
    assert session.paused  # the glue stops reading this client
    await service.wal.drain()
    answered = replies(released(service, session))
    assert [reply["id"] for reply in answered] == [0, 1, 2, 3, 4, 5]
    assert [reply["ok"] for reply in answered] == [True] * 4 + [False] * 2
    assert {reply["error"]["code"] for reply in answered[4:]} == {"overloaded"}
    assert not session.paused


async def test_frames_read_again_before_the_turn_pause_reading_until_it(event_loop_service):
    """As the glue does when a connection waiting in line for its first turn reads again
    (switch/connection.py): reading pauses, and the turn that handles both reads resumes it."""
    service = event_loop_service(durability="none")
    session = new_session(service)
    assert session.receive(frame(1, "ping", {}), service.loop.time())
    assert session.receive(frame(2, "ping", {}), service.loop.time())
    session.read_again_in_line()
    assert session.paused  # the glue stops reading this client
    assert not session.handle(float("inf"), lambda: 0.0)
    assert [reply["id"] for reply in replies(session.take_output())] == [1, 2]
    assert not session.paused


async def test_a_turn_stops_at_its_deadline_and_the_next_goes_on(event_loop_service):
    service = event_loop_service(durability="none")
    session = new_session(service)
    ticks = itertools.count()  # a clock that moves one unit per reading
    session.receive(b"".join(frame(n, "ping", {}) for n in range(10)), service.loop.time())
    assert session.handle(3.5, lambda: next(ticks))  # work left after the deadline
    first = replies(session.take_output())
    assert 1 <= len(first) < 10 and session.paused  # the rest wait, reading paused
    while session.handle(float("inf"), lambda: 0.0):
        pass
    rest = replies(session.take_output())
    assert [reply["id"] for reply in first + rest] == list(range(10))
    assert not session.paused


async def test_before_hello_only_ping_and_hello_are_served(event_loop_service):
    service = event_loop_service(durability="none")
    session = new_session(service, participant=None)
    answered = replies(await exchange(service, session, frame(1, "list_windows", {})
                                + frame(2, "hello", {"participant": "admin",
                                                     "token": "in-process-admin-token"})
                                + frame(3, "list_windows", {})))
    assert answered[0]["error"]["code"] == "unauthenticated"
    assert answered[1]["ok"] and answered[1]["result"]["participant"] == "admin"
    assert answered[2]["ok"]

