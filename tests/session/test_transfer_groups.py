"""Plain transfers read together are executed as one group and logged as one record
(Session._transfer_group, and across sessions Turns.run_group):
their replies are those the one-by-one path gives, and replaying the log rebuilds the same
state."""
import time
from collections import deque

from payswitch.protocol import JSON
from payswitch.switch.connection import Connection
from payswitch.switch.turns import Turns
from payswitch.switch.session import MAX_TRANSFER_GROUP, PAUSED_FOR_DECODE
from payswitch.switch.storage.recovery import recover
from support.in_process import exchange, feed, new_session, released

from session.test_session import FUNDS, frame, open_accounts, replies


def plain(request_id, transfer_id: str, debit: str, credit: str, amount: int,
          codec: str = "msgpack") -> bytes:
    return frame(request_id, "transfer", {"id": transfer_id, "debit_account": debit,
                                          "credit_account": credit, "amount": amount}, codec)


# (request id, transfer id, debit, credit, amount): successes and every kind of failure a
# plain transfer can meet, a retry and a clash of ids inside the same read.
MIXED = [
    ("r0", "t0", "a-1", "a-2", 100),
    ("r1", "t1", "a-2", "a-1", FUNDS * 10),  # insufficient_funds
    ("r2", "t2", "a-1", "nobody", 5),  # account_not_found
    ("r3", "t0", "a-1", "a-2", 100),  # the same transfer again: exists
    ("r4", "t0", "a-1", "a-2", 101),  # exists_with_different_fields
    ("r5", "t5", "a-1", "a-1", 5),  # same_account
    ("r6", "t6", "a-2", "a-1", 100),  # spends what t0 brought, in the same group
]


async def opened(event_loop_service, **config):
    """A service and an admin session on it, with open_accounts' accounts."""
    service = event_loop_service(**config)
    session = new_session(service)
    await open_accounts(service, session)
    return service, session


def arrivals_reading(service, reads: list[bytes]) -> deque:
    """Connections whose sessions each read one of `reads`, as the turns find them in a poll."""
    arrivals = deque()
    for data in reads:
        connection = Connection(service)
        connection.session = new_session(service)
        connection.session.receive(data, service.loop.time())
        arrivals.append(connection)
    return arrivals


def without_timestamps(answered: list[dict]) -> list[dict]:
    for reply in answered:
        if reply.get("ok"):
            reply["result"].pop("timestamp")
    return answered


async def test_a_read_of_plain_transfers_is_one_record_answered_as_one_by_one(
        event_loop_service):
    grouped, session = await opened(event_loop_service, durability="none")
    before = grouped.wal.appended_seq
    answered = replies(await exchange(grouped, session,
                                      b"".join(plain(*fields) for fields in MIXED)))
    assert grouped.wal.appended_seq == before + 1  # one record for the whole read

    # The general path, one request at a time: JSON frames are never grouped.
    one_by_one, json_session = await opened(event_loop_service, durability="none")
    expected = []
    for fields in MIXED:
        expected += replies(await exchange(one_by_one, json_session, plain(*fields, codec=JSON)))

    assert [reply["id"] for reply in answered] == [fields[0] for fields in MIXED]
    assert without_timestamps(answered) == without_timestamps(expected)
    assert [reply.get("error", {}).get("code") for reply in answered] == [
        None, "insufficient_funds", "account_not_found", None, "exists_with_different_fields",
        "same_account", None]
    assert answered[3]["result"]["status"] == "exists"


async def test_the_plain_transfers_of_several_sessions_run_as_one_group(event_loop_service):
    """Each session's read of plain transfers taken, then run as one record: each session
    gets exactly its own replies, in its order, as the one-by-one path gives them."""
    grouped, admin = await opened(event_loop_service, durability="fsync")
    reads = [MIXED[0:2], MIXED[2:4], MIXED[4:]]
    arrivals = arrivals_reading(grouped, [b"".join(plain(*each) for each in fields)
                                          for fields in reads])
    sessions = [connection.session for connection in arrivals]
    before = grouped.wal.appended_seq
    assert Turns.run_group(arrivals)[0] == 3
    assert grouped.wal.appended_seq == before + 1
    assert [session.waiting_replies for session in sessions] == [2, 2, 3]
    assert all(released(grouped, session) == b"" for session in sessions)  # held for the log
    await grouped.wal.drain()
    answered = [replies(released(grouped, session)) for session in sessions]
    assert grouped.held_replies.count == 0

    one_by_one, json_session = await opened(event_loop_service, durability="none")
    expected = []
    for fields in MIXED:
        expected += replies(await exchange(one_by_one, json_session, plain(*fields, codec=JSON)))
    assert [[reply["id"] for reply in each] for each in answered] == [
        [fields[0] for fields in read] for read in reads]
    assert without_timestamps([reply for each in answered for reply in each]) == \
        without_timestamps(expected)
    config = grouped.config
    assert recover(config.wal_dir, config.snapshot_dir).state.digest() == grouped.state.digest()


async def test_a_group_of_transfers_all_created_answers_each_session_its_own(event_loop_service):
    """Replies of a group with no failure are made in one layout (encode_created_frames): each
    session still gets its own, in its order, with the timestamp each transfer was stored at."""
    grouped, admin = await opened(event_loop_service, durability="fsync")
    reads = [[(f"s{s}-r{n}", f"s{s}-t{n}", "a-1", "a-2", 10 + n) for n in range(count)]
             for s, count in enumerate((1, 3, 2))]
    arrivals = arrivals_reading(grouped, [b"".join(plain(*each) for each in fields)
                                          for fields in reads])
    sessions = [connection.session for connection in arrivals]
    assert Turns.run_group(arrivals)[0] == 3
    await grouped.wal.drain()
    answered = [replies(released(grouped, session)) for session in sessions]

    stored = grouped.state.ledger.book.by_id
    assert answered == [[{"id": request_id, "ok": True, "result": {
        "status": "created", "timestamp": stored[transfer_id].timestamp}}
        for request_id, transfer_id, *_ in read] for read in reads]
    stamps = [reply["result"]["timestamp"] for each in answered for reply in each]
    assert stamps == sorted(set(stamps))  # one each, in the group's order


async def test_a_session_gives_no_transfer_to_a_group_while_it_may_not_take_them(
        event_loop_service):
    """Not before hello, nor while its turn would wait (a frame in the decode worker), nor
    when the frame at the head is not a plain transfer, nor past the in-flight limit."""
    service, admin = await opened(event_loop_service, durability="none",
                                  max_inflight_per_connection=3)
    anonymous = new_session(service, participant=None)
    anonymous.receive(plain("x", "tx", "a-1", "a-2", 1), service.loop.time())
    assert anonymous.take_plain_transfers(MAX_TRANSFER_GROUP) is None
    other_first = new_session(service)
    other_first.receive(frame("p", "ping", {}) + plain("y", "ty", "a-1", "a-2", 1),
                        service.loop.time())
    assert other_first.take_plain_transfers(MAX_TRANSFER_GROUP) is None
    limited = new_session(service)
    limited.receive(b"".join(plain(n, f"t{n}", "a-1", "a-2", 1) for n in range(5)),
                    service.loop.time())
    assert limited.take_plain_transfers(MAX_TRANSFER_GROUP).request_ids == [0, 1, 2]
    assert limited.take_plain_transfers(1).request_ids == [3]
    assert len(limited.backlog) == 1
    waiting = new_session(service)
    waiting.receive(plain("z", "tz", "a-1", "a-2", 1), service.loop.time())
    waiting.paused |= PAUSED_FOR_DECODE
    assert waiting.take_plain_transfers(MAX_TRANSFER_GROUP) is None


async def test_groups_split_around_other_frames_and_keep_the_order(event_loop_service):
    service, session = await opened(event_loop_service, durability="none")
    before = service.wal.appended_seq
    data = b"".join([
        plain("p0", "u0", "a-1", "a-2", 1), plain("p1", "u1", "a-1", "a-2", 2),
        frame("w", "transfer", {"id": "u2", "debit_account": "a-1", "credit_account": "a-2",
                                "amount": 3, "reference": "not plain"}),
        frame("l", "lookup_accounts", {"ids": ["a-2"]}),
        plain("p3", "u3", "a-1", "a-2", 4, codec=JSON),
        plain("p4", "u4", "a-1", "a-2", 5), plain("p5", "u5", "a-1", "a-2", 6),
    ])
    answered = replies(await exchange(service, session, data))
    assert [reply["id"] for reply in answered] == ["p0", "p1", "w", "l", "p3", "p4", "p5"]
    assert all(reply["ok"] for reply in answered), answered
    assert answered[3]["result"]["accounts"][0]["balance"] == 1 + 2 + 3
    # a group, the transfer with a reference, the JSON one, a group: the read has no record
    assert service.wal.appended_seq == before + 4
    [stats] = replies(await exchange(service, session, frame("s", "stats", {})))
    assert stats["result"]["requests_total"] == 3 + 7 + 1  # set-up, the read, this one


async def test_replaying_a_log_of_groups_rebuilds_the_same_state(event_loop_service):
    service, session = await opened(event_loop_service, durability="fsync")
    for round_number in range(3):
        data = b"".join(plain(f"r{round_number}-{n}", f"t{round_number}-{n}", "a-1", "a-2", n + 1)
                        for n in range(40)) + b"".join(plain(*fields) for fields in MIXED)
        await exchange(service, session, data)
    await service.wal.drain()
    config = service.config
    assert recover(config.wal_dir, config.snapshot_dir).state.digest() == service.state.digest()


async def test_a_group_stops_at_the_in_flight_limit_and_the_rest_are_refused(
        event_loop_service):
    service, session = await opened(event_loop_service, durability="fsync",
                                    max_inflight_per_connection=4)
    data = b"".join(plain(n, f"t{n}", "a-1", "a-2", 1) for n in range(6))
    assert feed(service, session, data) == b""  # four held, then two refused behind
    assert session.paused
    await service.wal.drain()
    answered = replies(released(service, session))
    assert [reply["id"] for reply in answered] == [0, 1, 2, 3, 4, 5]
    assert [reply["ok"] for reply in answered] == [True] * 4 + [False] * 2
    assert {reply["error"]["code"] for reply in answered[4:]} == {"overloaded"}
    assert service.shed["requests_overloaded"] == 2


async def test_a_group_counts_each_request_by_its_code(event_loop_service):
    service, session = await opened(event_loop_service, durability="none")
    await exchange(service, session, b"".join(plain(*fields) for fields in MIXED))
    answered = service.request_metrics.answered()
    assert answered[("transfer", "ok")] == 1 + 3  # the set-up's funding, then three
    assert answered[("transfer", "insufficient_funds")] == 1
    assert answered[("transfer", "same_account")] == 1
    [histogram] = [h for op, h in service.request_metrics.seconds().items() if op == "transfer"]
    assert histogram.percentiles()["count"] == 1 + len(MIXED)


async def test_a_held_group_whose_record_is_never_durable_answers_each_request_the_error(
        event_loop_service):
    service, session = await opened(event_loop_service, durability="fsync")
    durable_seq = service.durable_seq
    data = b"".join(plain(n, f"t{n}", "a-1", "a-2", 1) for n in range(5))
    assert feed(service, session, data) == b"" and session.waiting_replies == 5
    session.fail_waiting("internal", "not durable, writes are stopped: a test", durable_seq)
    answered = replies(session.take_output())
    assert [reply["id"] for reply in answered] == [0, 1, 2, 3, 4]
    assert {(reply["error"]["code"], reply["error"]["message"]) for reply in answered} == {
        ("internal", "not durable, writes are stopped: a test")}
    assert session.waiting_replies == 0 and service.queued_replies == 0
    await service.wal.drain()


async def test_a_participants_group_may_debit_only_its_own_accounts(event_loop_service):
    service = event_loop_service(durability="none")
    admin = new_session(service)
    await open_accounts(service, admin)
    created = replies(await exchange(service, admin, b"".join([
        frame(4, "create_participants", {"participants": [{"id": "bank-b", "name": "B"}]}),
        frame(5, "create_accounts", {"accounts": [
            {"id": "b-1", "participant": "bank-b", "currency": "USD"}]}),
        plain(6, "fund-b", "a-1", "b-1", 1000)])))
    assert all(reply["ok"] for reply in created), created
    bank_a = new_session(service, "bank-a")
    answered = replies(await exchange(service, bank_a, b"".join([
        plain("own", "t-own", "a-1", "a-2", 10), plain("theirs", "t-theirs", "b-1", "a-2", 10),
        plain("to-them", "t-to-them", "a-1", "b-1", 10)])))
    assert [reply["ok"] for reply in answered] == [True, False, True], answered
    assert answered[1]["error"]["code"] == "forbidden"


async def test_when_the_first_would_be_refused_each_is_refused_one_by_one(event_loop_service):
    service, session = await opened(event_loop_service, durability="none")
    before = service.wal.appended_seq
    service.shutting_down = True  # as a SIGTERM leaves it: no request is taken any more
    answered = replies(await exchange(service, session, b"".join(
        plain(n, f"t{n}", "a-1", "a-2", 1) for n in range(3))))
    assert [(reply["id"], reply["error"]["code"]) for reply in answered] == [
        (0, "shutting_down"), (1, "shutting_down"), (2, "shutting_down")]
    assert service.wal.appended_seq == before


async def test_a_refused_group_counts_each_refusal_once(event_loop_service):
    service = event_loop_service(durability="none", max_log_bytes_since_snapshot=1)
    session = new_session(service)  # window 1's record already fills the log's bound
    answered = replies(await exchange(service, session, b"".join(
        plain(n, f"t{n}", "a-1", "a-2", 1) for n in range(3))))
    assert [reply["error"]["code"] for reply in answered] == ["overloaded"] * 3
    assert "writes are paused" in answered[0]["error"]["message"]
    assert service.snapshotter.writes_refused_total == 3
    assert service.shed["requests_overloaded"] == 3


async def test_a_group_across_connections_stays_within_the_switchs_room_for_held_replies(
        event_loop_service):
    """Turns.run_group over two connections with two plain transfers each, when the switch may
    hold three more replies: the first gives two, the second one, whatever its own room."""
    service, _ = await opened(event_loop_service, durability="fsync", max_queued_replies=3)
    arrivals = arrivals_reading(service, [plain(f"{n}-0", f"t{n}-0", "a-1", "a-2", 1)
                                          + plain(f"{n}-1", f"t{n}-1", "a-1", "a-2", 1)
                                          for n in range(2)])
    grouped, _ = Turns.run_group(arrivals)
    assert grouped == 2
    assert [c.session.waiting_replies for c in arrivals] == [2, 1]
    assert service.held_replies.count == 3
    await service.wal.drain()
    assert [[reply["id"] for reply in replies(released(service, c.session))]
            for c in arrivals] == [["0-0", "0-1"], ["1-0"]]


async def test_a_group_across_connections_takes_each_ones_plain_head_when_not_all_are_plain(
        event_loop_service):
    """Frames of several connections that are not all plain transfers are checked each
    connection's apart: the group takes the plain ones at the head of each, and stops at the
    first connection whose first frame is not one (a ping, whose MessagePack map begins as a
    plain transfer's does); what is left is answered in the connections' own turns, in order."""
    service, _ = await opened(event_loop_service, durability="none")
    not_plain = frame("w", "transfer", {"id": "tw", "debit_account": "a-1",
                                        "credit_account": "a-2", "amount": 3,
                                        "reference": "not plain"})
    arrivals = arrivals_reading(service, [
        plain("0-0", "t0-0", "a-1", "a-2", 1) + plain("0-1", "t0-1", "a-1", "a-2", 1),
        plain("1-0", "t1-0", "a-1", "a-2", 1) + not_plain + plain("1-2", "t1-2", "a-1", "a-2", 1),
        frame("p", "ping", {}) + plain("2-1", "t2-1", "a-1", "a-2", 1),
        plain("3-0", "t3-0", "a-1", "a-2", 1)])
    before = service.wal.appended_seq
    grouped, _ = Turns.run_group(arrivals)
    assert grouped == 2
    assert service.wal.appended_seq == before + 1
    assert [len(c.session.backlog) for c in arrivals] == [0, 2, 2, 1]
    answered = []
    for connection in arrivals:
        session = connection.session
        session.handle(float("inf"), time.perf_counter)
        await service.wal.drain()
        answered.append([(reply["id"], reply["ok"])
                         for reply in replies(released(service, session))])
    assert answered == [[("0-0", True), ("0-1", True)],
                        [("1-0", True), ("w", True), ("1-2", True)],
                        [("p", True), ("2-1", True)], [("3-0", True)]]
