"""The events of one WAL record: a pure function of what executing it did (AppliedRecord).

The primary as it executes, a restart replaying the log and a standby following it all call this
on the same records, so they derive the same events in the same order. A transfer is read only
in fields it never changes after its commit (never `state`): the derivation runs right after the
record, but must not depend on when.
"""
from payswitch.protocol import events as schema
from payswitch.protocol.codes import CREATED
from payswitch.switch.ledger.records import POST, VOID


def derive(applied) -> list[tuple[str, dict]]:
    """(type, fields) of every event the record committed, in commit order: expiries first (they
    run before the op), then what the op created, then a window's close or a batch's end."""
    commits, op, result = applied.commits, applied.op, applied.result
    events = [] if commits is None else [(schema.PENDING_EXPIRED, _expired(t))
                                         for t in commits.expired]
    if result is None:  # the op failed: only its expiries were committed
        return events
    if op == "create_participants":
        events += [(schema.PARTICIPANT_CREATED, _participant(item))
                   for item, outcome in zip(applied.args["participants"], result["results"])
                   if outcome["status"] == CREATED]
    elif op == "create_accounts":
        events += [(schema.ACCOUNT_CREATED, _account(item))
                   for item, outcome in zip(applied.args["accounts"], result["results"])
                   if outcome["status"] == CREATED]
    if commits is not None:
        events += [_transfer(t) for t in commits.transfers]
    if op == "close_window":
        events.append((schema.WINDOW_CLOSED, _window(result)))
    elif op in ("batch_validated", "batch_apply") and "finished" in result:
        events.append((schema.BATCH_FINISHED, dict(result["finished"])))
    return events


def envelope(applied, index: int, seq: int, event_type: str, fields: dict) -> dict:
    """The event's body: the envelope (protocol.events.ENVELOPE), then its fields."""
    return {"v": schema.VERSION, "seq": seq, "type": event_type,
            "committed_at": applied.now_ns, "wal_seq": applied.seq, "wal_index": index,
            **fields}


def _participant(item: dict) -> dict:
    return {"id": item["id"], "name": item["name"],
            "net_debit_cap": dict(item["net_debit_cap"] or {})}


def _account(item: dict) -> dict:
    return {"id": item["id"], "participant": item["participant"], "currency": item["currency"],
            "overdraft_limit": item["overdraft_limit"]}


def _parties(t) -> dict:
    debit, credit = t.debit, t.credit
    return {"debit_account": debit.id, "debit_participant": debit.owner.id,
            "credit_account": credit.id, "credit_participant": credit.owner.id,
            "currency": debit.currency}


def _transfer(t) -> tuple[str, dict]:
    kind = t.kind
    if kind == POST or kind == VOID:
        pending = t.target
        return (schema.PENDING_POSTED if kind == POST else schema.PENDING_VOIDED,
                {"id": t.id, "pending_id": pending.id, "amount": t.amount,
                 "pending_amount": pending.amount, **_parties(t), "reference": t.reference,
                 "timestamp": t.timestamp})
    return (schema.TRANSFER_CREATED,
            {"id": t.id, "kind": kind, "amount": t.amount, **_parties(t),
             "reference": t.reference, "timeout": t.timeout, "expires_at": t.deadline(),
             "timestamp": t.timestamp})


def _expired(t) -> dict:
    return {"id": t.id, "amount": t.amount, **_parties(t), "reference": t.reference,
            "expires_at": t.deadline(), "timestamp": t.timestamp}


def _window(report: dict) -> dict:
    return {"window_id": report["window_id"], "opened_at": report["opened_at"],
            "closed_at": report["closed_at"], "transfers": report["transfers"],
            "positions": [dict(row) for row in report["positions"]],
            "instructions": [dict(row) for row in report["instructions"]],
            "settlement_transfers": None if report["settlement_transfers"] is None
            else list(report["settlement_transfers"])}
