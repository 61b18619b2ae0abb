"""A large create_transfers of plain transfers is decoded by the decode worker into columns of
their fields (switch/verdict.py), executed by the ledger from them and logged as them: each
item's result is the one the general path gives the same batch, and replaying the log rebuilds
the same state."""
import msgpack

from payswitch.protocol import JSON
from payswitch.switch.storage.records import RecordScanner
from payswitch.switch.storage.recovery import recover
from payswitch.switch.storage.segments import list_segments
from support.in_process import exchange, new_session

from session.test_session import FUNDS, frame, open_accounts, replies

# Enough items for the frame to pass max_inline_decode_bytes (16 KiB): decoded off the loop.
FILLER = [{"id": f"fill-{n}", "debit_account": "a-1", "credit_account": "a-2", "amount": n + 1}
          for n in range(400)]
# successes and every kind of failure a plain item can meet, retries and clashes of ids
MIXED = [
    {"id": "t0", "debit_account": "a-1", "credit_account": "a-2", "amount": 100},
    {"id": "t1", "debit_account": "a-2", "credit_account": "a-1", "amount": FUNDS * 10},
    {"id": "t2", "debit_account": "a-1", "credit_account": "nobody", "amount": 5},
    {"id": "t0", "debit_account": "a-1", "credit_account": "a-2", "amount": 100},  # exists
    {"id": "t0", "debit_account": "a-1", "credit_account": "a-2", "amount": 101},
    {"id": "t5", "debit_account": "a-1", "credit_account": "a-1", "amount": 5},
    {"id": "fund", "debit_account": "a-funding", "credit_account": "a-1", "amount": FUNDS},
    {"id": "t7", "debit_account": "a-2", "credit_account": "a-1", "amount": 100},
]
STATUSES = ["created", "insufficient_funds", "account_not_found", "exists",
            "exists_with_different_fields", "same_account", "exists", "created"]


def batch(request_id, codec: str = "msgpack", prefix: str = "") -> bytes:
    transfers = [{**t, "id": prefix + t["id"]} for t in FILLER + MIXED]
    return frame(request_id, "create_transfers", {"transfers": transfers}, codec)


def without_timestamps(results: list[dict]) -> list[dict]:
    return [{key: value for key, value in result.items() if key != "timestamp"}
            for result in results]


def last_record(service) -> dict:
    [(_, path)] = list_segments(service.config.wal_dir)
    *_, (_, payload) = RecordScanner(path.read_bytes())
    seq, now_ns, caller, op, args = msgpack.unpackb(payload)
    return {"caller": caller, "op": op, "args": args}


async def test_a_plain_batch_is_answered_as_the_general_path_answers_it(event_loop_service):
    columnar = event_loop_service(durability="none")
    session = new_session(columnar)
    await open_accounts(columnar, session)
    [answered] = replies(await exchange(columnar, session, batch("b")))
    record = last_record(columnar)
    assert record["op"] == "create_transfers"
    assert set(record["args"]) == {"ids", "debit_accounts", "credit_accounts", "amounts"}

    # JSON bodies take the general path: normalized items, one map each
    general = event_loop_service(durability="none")
    json_session = new_session(general)
    await open_accounts(general, json_session)
    [expected] = replies(await exchange(general, json_session, batch("b", codec=JSON)))
    assert set(last_record(general)["args"]) == {"transfers"}

    assert answered["id"] == expected["id"] == "b"
    results, expected_results = answered["result"]["results"], expected["result"]["results"]
    assert without_timestamps(results) == without_timestamps(expected_results)
    assert [r["status"] for r in results[len(FILLER):]] == STATUSES
    assert all(r["message"] for r in results if r["timestamp"] is None)
    balances = []
    for service, a_session in ((columnar, session), (general, json_session)):
        [lookup] = replies(await exchange(service, a_session, frame(
            "l", "lookup_accounts", {"ids": ["a-funding", "a-1", "a-2"]})))
        balances.append([account["balance"] for account in lookup["result"]["accounts"]])
    assert balances[0] == balances[1]
    assert columnar.state.counts() == general.state.counts()


async def test_replaying_a_log_of_plain_batches_rebuilds_the_same_state(event_loop_service):
    service = event_loop_service(durability="fsync")
    session = new_session(service)
    await open_accounts(service, session)
    for round_number in range(3):
        [answered] = replies(await exchange(service, session,
                                            batch(round_number, prefix=f"r{round_number}-")))
        assert answered["ok"], answered
    assert last_record(service)["op"] == "create_transfers"
    await service.wal.drain()
    config = service.config
    assert recover(config.wal_dir, config.snapshot_dir).state.digest() == service.state.digest()
