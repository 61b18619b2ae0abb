"""The derivation of events from WAL records (switch/events/derive.py), without NATS: each op's
events and fields, expiry inside any record, rolled back chains, settlement, batches, and the
same events from a replay as from the first run."""
from events.events_support import Log, replayed
from ledger.ledger_support import SECOND, account, participant, tr
from payswitch.protocol import events as schema
from payswitch.protocol import JSON, encode_body
from payswitch.switch.events.derive import derive, envelope


def world() -> Log:
    log = Log()
    log.apply("open_window", {})
    log.apply("create_participants", {"participants": [
        participant("bank-a"), participant("bank-b", caps={"USD": 10_000}), participant("hub")]})
    log.apply("create_accounts", {"accounts": [
        account("a-funding", "bank-a", limit=None), account("a-1", "bank-a"),
        account("a-2", "bank-a"), account("b-1", "bank-b"), account("a-settle", "bank-a"),
        account("b-settle", "bank-b", limit=None), account("hub-usd", "hub", limit=None)]})
    log.apply("create_transfers", {"transfers": [tr("fund", "a-funding", "a-1", 100_000)]})
    return log


def types(events) -> list[str]:
    return [event_type for event_type, _ in events]


def test_participants_and_accounts_created_only_for_created_items():
    log = Log()
    events = log.events("create_participants", {"participants": [
        participant("bank-a", name="Bank A", caps={"USD": 500}), participant("bank-b")]})
    assert events == [
        (schema.PARTICIPANT_CREATED, {"id": "bank-a", "name": "Bank A",
                                      "net_debit_cap": {"USD": 500}}),
        (schema.PARTICIPANT_CREATED, {"id": "bank-b", "name": "BANK-B", "net_debit_cap": {}})]
    again = log.events("create_participants", {"participants": [
        participant("bank-a", name="Bank A", caps={"USD": 500}), participant("bank-c")]})
    assert again == [(schema.PARTICIPANT_CREATED,
                      {"id": "bank-c", "name": "BANK-C", "net_debit_cap": {}})]
    accounts = log.events("create_accounts", {"accounts": [
        account("a-1", "bank-a"), account("x", "nobody"), account("a-2", "bank-a", "EUR", None)]})
    assert accounts == [
        (schema.ACCOUNT_CREATED, {"id": "a-1", "participant": "bank-a", "currency": "USD",
                                  "overdraft_limit": 0}),
        (schema.ACCOUNT_CREATED, {"id": "a-2", "participant": "bank-a", "currency": "EUR",
                                  "overdraft_limit": None})]


def test_no_event_carries_a_token_hash():
    log = world()
    for payload_record in replayed(log.payloads):
        for _, fields in derive(payload_record):
            assert "token_hash" not in encode_body(fields, JSON).decode()
            assert "hash-" not in encode_body(fields, JSON).decode()


def test_one_phase_transfer_fields():
    log = world()
    [(event_type, fields)] = log.events("transfer", tr("t-1", "a-1", "b-1", 250,
                                                       reference="invoice 7"))
    assert event_type == schema.TRANSFER_CREATED
    assert fields == {"id": "t-1", "kind": "regular", "amount": 250,
                      "debit_account": "a-1", "debit_participant": "bank-a",
                      "credit_account": "b-1", "credit_participant": "bank-b",
                      "currency": "USD", "reference": "invoice 7", "timeout": 0,
                      "expires_at": None, "timestamp": log.now}


def test_pending_posted_voided_and_expired():
    log = world()
    created = log.now + 1_000_000
    [(event_type, pending)] = log.events(
        "transfer", tr("p-1", "a-1", "b-1", 300, pending=True, timeout=5), now=created)
    assert event_type == schema.TRANSFER_CREATED
    assert (pending["kind"], pending["timeout"], pending["expires_at"]) == \
        ("pending", 5, created + 5 * SECOND)
    log.events("transfer", tr("p-2", "a-1", "b-1", 40, pending=True))
    log.events("transfer", tr("p-3", "a-1", "b-1", 50, pending=True))
    [(posted_type, posted)] = log.events("transfer", tr("post-2", post_pending_id="p-2",
                                                        amount=30))
    assert posted_type == schema.PENDING_POSTED
    assert (posted["id"], posted["pending_id"], posted["amount"], posted["pending_amount"],
            posted["debit_participant"], posted["credit_participant"], posted["currency"]) == \
        ("post-2", "p-2", 30, 40, "bank-a", "bank-b", "USD")
    [(voided_type, voided)] = log.events("transfer", tr("void-3", void_pending_id="p-3"))
    assert voided_type == schema.PENDING_VOIDED
    assert (voided["pending_id"], voided["amount"]) == ("p-3", 50)
    [(expired_type, expired)] = log.events("expire_pending", {}, now=created + 6 * SECOND)
    assert expired_type == schema.PENDING_EXPIRED
    assert expired == {"id": "p-1", "amount": 300, "debit_account": "a-1",
                       "debit_participant": "bank-a", "credit_account": "b-1",
                       "credit_participant": "bank-b", "currency": "USD", "reference": None,
                       "expires_at": created + 5 * SECOND, "timestamp": created}


def test_expiry_inside_another_op_comes_first_also_when_the_op_fails():
    """A record written before expiry had its own step expires inside the op's execute: its
    events are the expiries, then what the op created (or nothing, when the op failed)."""
    log = world()
    log.events("transfer", tr("p-1", "a-1", "b-1", 10, pending=True, timeout=1))
    log.events("transfer", tr("p-2", "a-1", "b-1", 20, pending=True, timeout=1))
    later = log.now + 2 * SECOND
    events = log.events("transfer", tr("t-1", "a-1", "b-1", 5), now=later)
    assert types(events) == [schema.PENDING_EXPIRED, schema.PENDING_EXPIRED,
                             schema.TRANSFER_CREATED]
    assert [fields["id"] for _, fields in events] == ["p-1", "p-2", "t-1"]
    log.events("transfer", tr("p-3", "a-1", "b-1", 30, pending=True, timeout=1))
    failed = log.apply("transfer", tr("t-2", "a-2", "b-1", 10**9), now=log.now + 2 * SECOND)
    assert failed.result is None  # insufficient funds, but the expiry is logged with it
    assert [(event_type, fields["id"]) for event_type, fields in derive(failed)] == \
        [(schema.PENDING_EXPIRED, "p-3")]


def test_a_rolled_back_linked_chain_has_no_events():
    log = world()
    events = log.events("create_transfers", {"transfers": [
        tr("c-1", "a-1", "b-1", 10, linked=True), tr("c-2", "a-1", "b-1", 10**9),  # fails
        tr("ok-1", "a-1", "b-1", 7),
        tr("d-1", "a-1", "b-1", 1, pending=True, linked=True),
        tr("d-2", post_pending_id="d-1")]})
    assert [(event_type, fields["id"]) for event_type, fields in events] == [
        (schema.TRANSFER_CREATED, "ok-1"), (schema.TRANSFER_CREATED, "d-1"),
        (schema.PENDING_POSTED, "d-2")]
    resent = log.events("create_transfers", {"transfers": [tr("ok-1", "a-1", "b-1", 7),
                                                           tr("ok-2", "a-1", "b-1", 8)]})
    assert [fields["id"] for _, fields in resent] == ["ok-2"]  # `exists` is no new event


def test_close_window_with_settlement_postings_then_the_close():
    log = world()
    log.apply("set_participant", {"id": "bank-a", "net_debit_cap": None, "suspended": None,
                                  "settlement_accounts": {"USD": "a-settle"}})
    log.apply("set_participant", {"id": "bank-b", "net_debit_cap": None, "suspended": None,
                                  "settlement_accounts": {"USD": "b-settle"}})
    log.apply("transfer", tr("t-1", "a-funding", "a-settle", 1_000))
    log.apply("transfer", tr("t-2", "a-1", "b-1", 400))
    close = log.apply("close_window", {"settle": {"hub_accounts": {"USD": "hub-usd"}}})
    events = derive(close)
    assert [(event_type, fields.get("kind")) for event_type, fields in events] == [
        (schema.TRANSFER_CREATED, "settlement"), (schema.TRANSFER_CREATED, "settlement"),
        (schema.WINDOW_CLOSED, None)]
    window = events[-1][1]
    report = close.result
    assert window == {key: report[key] for key in (
        "window_id", "opened_at", "closed_at", "transfers", "positions", "instructions",
        "settlement_transfers")}
    assert window["positions"] == [
        {"participant": "bank-a", "currency": "USD", "debits": 400, "credits": 0, "net": -400},
        {"participant": "bank-b", "currency": "USD", "debits": 0, "credits": 400, "net": 400}]
    assert [fields["id"] for _, fields in events[:2]] == window["settlement_transfers"]


def test_a_batch_ends_with_its_counts_after_its_last_chunk():
    log = world()
    log.apply("submit_batch", {"batch_id": "B-1", "format": "json", "content": None,
                               "items": [], "control_count": 2, "control_sum": 300,
                               "mode": "partial"}, caller="bank-a")
    assert log.events("batch_validated", {"batch_id": "B-1", "problems": [], "total": 3,
                                          "digest": None}) == []
    first = log.events("batch_apply", {"batch_id": "B-1", "start": 0, "items": [
        tr("b-1", "a-1", "b-1", 100), tr("b-2", "a-1", "b-1", 10**9)]})
    assert types(first) == [schema.TRANSFER_CREATED]
    last = log.events("batch_apply", {"batch_id": "B-1", "start": 2, "items": [
        tr("b-3", "a-1", "b-1", 200)]})
    assert types(last) == [schema.TRANSFER_CREATED, schema.BATCH_FINISHED]
    assert last[-1][1] == {"batch_id": "B-1", "owner": "bank-a", "format": "json",
                           "mode": "partial", "state": "completed", "total": 3, "created": 2,
                           "failed": 1, "problems": 0}
    log.apply("submit_batch", {"batch_id": "B-2", "format": "csv", "content": b"x",
                               "items": None, "control_count": 1, "control_sum": 1,
                               "mode": "atomic"}, caller="bank-a")
    rejected = log.events("batch_validated", {"batch_id": "B-2", "total": 0, "digest": None,
                                              "problems": [["line 1", "bad"]]})
    assert [(fields["state"], fields["problems"]) for _, fields in rejected] == [("rejected", 1)]


def test_records_that_commit_nothing_reportable_have_no_events():
    log = world()
    assert log.events("rotate_token", {"participant": "bank-a", "token_hash": "x"}) == []
    assert log.events("set_participant", {"id": "bank-a", "net_debit_cap": {"USD": 5},
                                          "suspended": None, "settlement_accounts": None}) == []
    assert log.events("upload_batch_part", {"batch_id": "B-9", "seq": 0, "data": b"x"},
                      caller="bank-a") == []


def test_a_replay_derives_the_same_events_as_the_first_run():
    log = world()
    first_run = [derive(log.apply("transfer", tr("p-1", "a-1", "b-1", 10, pending=True,
                                                 timeout=1)))]
    first_run.append(derive(log.apply("transfer", tr("t-1", "a-1", "b-1", 3),
                                      now=log.now + 2 * SECOND)))
    first_run.append(derive(log.apply("close_window", {})))
    again = [derive(record) for record in replayed(log.payloads)][-3:]
    assert [[encode_body(fields, JSON) for _, fields in events] for events in again] == \
        [[encode_body(fields, JSON) for _, fields in events] for events in first_run]


def test_the_envelope_comes_first():
    log = world()
    record = log.apply("transfer", tr("t-1", "a-1", "b-1", 1))
    [(event_type, fields)] = derive(record)
    body = envelope(record, 0, 42, event_type, fields)
    assert list(body)[:len(schema.ENVELOPE)] == list(schema.ENVELOPE)
    assert (body["v"], body["seq"], body["type"], body["committed_at"], body["wal_seq"],
            body["wal_index"]) == (1, 42, "transfer.created", record.now_ns, record.seq, 0)
