"""The message of a failed item (a transfer, an account, a participant): which field, which
value, which rule.

Built only for failures, from the item and the ledger state at the moment it failed (before a
linked chain rolls back), so it is as deterministic as the status. It never describes what the
caller may not see: another participant's transfer or account, or whose an account is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from payswitch.protocol.values import MAX_MONEY

from .codes import (
    ACCOUNT_EXISTS, ACCOUNT_NOT_FOUND, ADMIN, BAD_REQUEST, CURRENCY_MISMATCH,
    EXCEEDS_PENDING_AMOUNT, EXISTS_WITH_DIFFERENT_FIELDS, FORBIDDEN, INSUFFICIENT_FUNDS,
    INVALID_AMOUNT, NET_DEBIT_CAP_EXCEEDED, PARTICIPANT_EXISTS, PARTICIPANT_NOT_FOUND,
    PARTICIPANT_SUSPENDED, PENDING_ALREADY_POSTED, PENDING_ALREADY_VOIDED, PENDING_EXPIRED,
    PENDING_NOT_FOUND, SAME_ACCOUNT,
)
from .records import PENDING_KIND, POST, VOID, Item, Transfer, visible

if TYPE_CHECKING:
    from .ledger import Ledger
    from .transfers import Book

# (field, stored value, sent value) of a comparison the messages list
Compared = tuple[str, object, object]

CHAIN_OPEN = "the last item has linked: true, so its linked chain is never closed"
SINGLE_LINKED = "linked: true needs a next item in the same create_transfers; a transfer alone " \
                "cannot be linked"


def explain(book: Book, caller: str, item: Item, status: str) -> str:
    """The message for `item`, which `book.create` refuses with `status`."""
    tid = item["id"]
    old = book.by_id.get(tid)
    if status == EXISTS_WITH_DIFFERENT_FIELDS:
        if old is None or not visible(caller, old):
            return f"transfer id {tid} is already taken; choose another id"
        return f"transfer {tid} already exists with other fields: " + _listed(
            differences(old, item))
    if status == FORBIDDEN:
        debit = item["debit_account"]
        if debit is None:
            return f"transfer id {tid} is already taken; choose another id"
        return f"debit account {debit} is not one of {caller}'s accounts: a participant may " \
               f"debit only its own accounts"
    if status == INVALID_AMOUNT:
        sent = item.get("amount_sent")  # absent only in log records older than it
        named = "amount" if sent is None else f"amount {sent}"
        return f"{named} is not an integer in 1..{MAX_MONEY} (minor units)"
    pending_id = item["post_pending_id"] or item["void_pending_id"]
    if pending_id is not None:
        return _settle_message(book, item, pending_id, status)
    return _new_message(book, caller, item, status)


def _new_message(book: Book, caller: str, item: Item, status: str) -> str:
    debit_id, credit_id = item["debit_account"], item["credit_account"]
    dr, cr = book.accounts.get(debit_id), book.accounts.get(credit_id)
    if status == ACCOUNT_NOT_FOUND or dr is None or cr is None:
        missing = [f"{side} account {aid}" for side, aid, account in
                   (("debit", debit_id, dr), ("credit", credit_id, cr)) if account is None]
        return " and ".join(missing) + (" do not exist" if len(missing) > 1 else " does not exist")
    if status == SAME_ACCOUNT:
        return f"debit_account and credit_account are both {debit_id}"
    if status == CURRENCY_MISMATCH:
        if dr.currency != cr.currency:
            return f"debit account {debit_id} is in {dr.currency}, credit account " \
                   f"{credit_id} in {cr.currency}"
        return f"currency {item['currency']} was sent, but accounts {debit_id} and " \
               f"{credit_id} are in {dr.currency}"
    if status == PARTICIPANT_SUSPENDED:
        side, account = ("debit", dr) if dr.owner.suspended else ("credit", cr)
        owner = account.owner.id
        who = f"participant {owner}" if caller in (ADMIN, owner) else "its participant"
        return f"{side} account {account.id}: {who} is suspended"
    amount = item["amount"]
    if status == INSUFFICIENT_FUNDS:
        available = dr.credits_posted - dr.debits_posted - dr.debits_pending
        limit = dr.overdraft_limit
        allowed = "no overdraft" if not limit else f"an overdraft limit of {limit}"
        return f"debit account {debit_id} has {available} available and {allowed}: amount " \
               f"{amount} would leave {available - amount}"
    if status == NET_DEBIT_CAP_EXCEEDED:
        pos = dr.position
        cap = dr.owner.caps.get(dr.currency)
        return f"{dr.owner.id}'s net debit position in {dr.currency} would be " \
               f"{pos.debits - pos.credits + pos.reserved + amount} (with amount {amount}), " \
               f"above its net debit cap of {cap}"
    return status.replace("_", " ")


def _settle_message(book: Book, item: Item, pending_id: str, status: str) -> str:
    p = book.by_id.get(pending_id)
    if status == PENDING_NOT_FOUND or p is None:
        return f"no pending transfer {pending_id}"
    if status == PENDING_ALREADY_POSTED:
        return f"{pending_id} is already posted"
    if status == PENDING_ALREADY_VOIDED:
        return f"{pending_id} is already voided"
    if status == PENDING_EXPIRED:
        return f"{pending_id} has expired (its timeout of {p.timeout} s passed)"
    if status == EXCEEDS_PENDING_AMOUNT:
        return f"amount {item['amount']} exceeds the {p.amount} pending in {pending_id}"
    if status == BAD_REQUEST:
        sent = [f"{name} {_show(item[name])}" for name, stored in (
            ("debit_account", p.debit.id), ("credit_account", p.credit.id),
            ("currency", p.debit.currency)) if item[name] not in (None, stored)]
        if sent:
            verb = "differs" if len(sent) == 1 else "differ"
            return f"{', '.join(sent)} {verb} from pending transfer {pending_id}'s " \
                   f"({p.debit.id} to {p.credit.id} in {p.debit.currency}); omit them or " \
                   f"send those"
        return f"a void releases the whole {p.amount} pending in {pending_id}; amount " \
               f"{item['amount']} was sent (omit it)"
    return status.replace("_", " ")


def explain_account(ledger: Ledger, caller: str, item: Item, status: str) -> str:
    """The message for a `create_accounts` item refused with `status`."""
    aid, pid = item["id"], item["participant"]
    if status == FORBIDDEN:
        return f"participant {pid} is not {caller}: a participant may create accounts only for " \
               f"itself"
    if status == PARTICIPANT_NOT_FOUND:
        return f"participant {pid} does not exist"
    old = ledger.accounts.get(aid)
    if status == ACCOUNT_EXISTS and old is not None and caller in (ADMIN, old.owner.id):
        compared: tuple[Compared, ...] = (("participant", old.owner.id, pid),
                    ("currency", old.currency, item["currency"]),
                    ("overdraft_limit", old.overdraft_limit, item["overdraft_limit"]))
        return f"account {aid} already exists with other fields: " + _listed(compared)
    if status == ACCOUNT_EXISTS:
        return f"account id {aid} is already taken; choose another id"
    return status.replace("_", " ")


def explain_participant(ledger: Ledger, item: Item, status: str) -> str:
    """The message for a `create_participants` item refused with `status` (admin only)."""
    pid = item["id"]
    old = ledger.participants.get(pid)
    if status == PARTICIPANT_EXISTS and old is None:
        return f"participant id {pid} is the operator's"
    if status == PARTICIPANT_EXISTS and old is not None:
        compared: tuple[Compared, ...] = (("name", old.name, item["name"]),
                    ("net_debit_cap", old.caps, dict(item.get("net_debit_cap") or {})))
        return f"participant {pid} already exists with other fields: " + _listed(compared)
    return status.replace("_", " ")


def _listed(compared: Iterable[Compared]) -> str:
    return "; ".join(f"{name} stored {_show(stored)}, sent {_show(sent)}"
                     for name, stored, sent in compared if stored != sent)


def chain_failed(index: int, item: Item, status: str) -> str:
    """The message of the other items of a linked chain whose item `index` failed."""
    return f"linked chain not applied: transfers[{index}] ({item['id']}) failed with {status}"


def differences(t: Transfer, item: Item) -> list[Compared]:
    """(field, stored, sent) for each compared field that differs: the words of
    transfers.same_fields, which stays the fast yes/no of the `exists` path."""
    target_id = t.target.id if t.target is not None else None
    amount = item["amount"]
    if amount is None and t.target is not None:
        amount = t.target.amount
    if "amount_sent" in item:  # an invalid amount, named as it was sent
        amount = _AsSent(item["amount_sent"])
    compared: tuple[Compared, ...] = (
        ("debit_account", t.debit.id, item["debit_account"]),
        ("credit_account", t.credit.id, item["credit_account"]),
        ("amount", t.amount, amount),
        ("currency", t.debit.currency, item["currency"]),
        ("reference", t.reference, item["reference"]),
        ("pending", t.kind == PENDING_KIND, item["pending"]),
        ("timeout", t.timeout, item["timeout"]),
        ("post_pending_id", target_id if t.kind == POST else None, item["post_pending_id"]),
        ("void_pending_id", target_id if t.kind == VOID else None, item["void_pending_id"]),
    )
    derived = ("debit_account", "credit_account", "currency")  # omitted: derived, equal
    return [(name, stored, sent) for name, stored, sent in compared
            if stored != sent and not (name in derived and sent is None)]


class _AsSent(str):
    """A value already written as the message shows it."""


def _show(value: object) -> str:
    if type(value) is _AsSent:
        return value
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is str:
        return f'"{value}"' if len(value) <= 60 else f'"{value[:57]}..."'
    if type(value) is dict:
        return "{" + ", ".join(f"{key}: {_show(v)}" for key, v in sorted(value.items())) + "}"
    return str(value)
