"""The run's participants and funded accounts: created fresh, or an earlier run's reused."""

from dataclasses import dataclass

from payswitch.client import ParticipantResult
from payswitch.protocol import is_valid_id
from payswitch.protocol.values import MAX_ITEMS

CURRENCY = "USD"


class SetupError(Exception):
    pass


@dataclass(frozen=True)
class Layout:
    """Ids under a prefix: participants `P-p<i>`, each with traffic accounts `P-p<i>-a<j>` and a
    funding account `P-p<i>-fund` (unlimited overdraft) that funded them."""
    prefix: str
    participants: tuple[str, ...]
    accounts: tuple[tuple[str, ...], ...]  # traffic accounts, per participant
    funding: tuple[str, ...]  # per participant

    @classmethod
    def named(cls, prefix: str, participants: int, accounts: int) -> "Layout":
        names = tuple(f"{prefix}-p{p}" for p in range(participants))
        longest = _funding_transfer_id(f"{names[-1]}-a{accounts - 1}")
        if not is_valid_id(longest):
            raise SetupError(f"ids such as {longest!r} are not valid: 1-64 characters from "
                             "A-Z a-z 0-9 . _ : -; use a shorter prefix or fewer accounts")
        return cls(prefix, names,
                   tuple(tuple(f"{name}-a{a}" for a in range(accounts)) for name in names),
                   tuple(f"{name}-fund" for name in names))

    def all_accounts(self) -> list[str]:
        return [a for owned in self.accounts for a in owned] + list(self.funding)


async def create(client, layout: Layout, initial_balance: int) -> None:
    """Participants, accounts, and one funding transfer per traffic account."""
    participants = [{"id": p, "name": f"loadtest {p}"} for p in layout.participants]
    await _expect_created(_resending_create_participants(client), participants, "participants")
    accounts = [{"id": f, "participant": p, "currency": CURRENCY, "overdraft_limit": None}
                for p, f in zip(layout.participants, layout.funding)]
    accounts += [{"id": a, "participant": p, "currency": CURRENCY}
                 for p, owned in zip(layout.participants, layout.accounts) for a in owned]
    await _expect_created(client.create_accounts, accounts, "accounts")
    funding = [{"id": _funding_transfer_id(a), "debit_account": f, "credit_account": a,
                "amount": initial_balance}
               for f, owned in zip(layout.funding, layout.accounts) for a in owned]
    await _expect_created(client.create_transfers, funding, "funding transfers")


def _resending_create_participants(client):
    """`create_participants` resent like the other creates, after a lost connection or a
    standby's not_primary (the SDK never resends it, as a token is returned only once): the run
    never uses the participants' tokens, and an identical participant answers `exists`."""
    async def create(participants: list[dict]) -> list[ParticipantResult]:
        result = await client.request("create_participants", {"participants": participants},
                                      retry=True)
        return [ParticipantResult.from_wire(r) for r in result["results"]]
    return create


def _funding_transfer_id(account: str) -> str:
    return f"{account}-funding"


async def _expect_created(create, items: list[dict], what: str) -> None:
    for start in range(0, len(items), MAX_ITEMS):
        chunk = items[start:start + MAX_ITEMS]
        failed = [(item["id"], result.status)
                  for item, result in zip(chunk, await create(chunk)) if not result.ok]
        if failed:
            shown = ", ".join(f"{i}: {status}" for i, status in failed[:3])
            raise SetupError(f"{len(failed)} {what} not created ({shown})")


async def confirm(client, layout: Layout) -> None:
    """For --reuse: every account of the layout must exist already."""
    ids = layout.all_accounts()
    found: set[str] = set()
    for start in range(0, len(ids), MAX_ITEMS):
        found.update(a.id for a in await client.lookup_accounts(ids[start:start + MAX_ITEMS]))
    missing = [i for i in ids if i not in found]
    if missing:
        raise SetupError(f"{len(missing)} of {len(ids)} accounts under prefix {layout.prefix!r} "
                         f"do not exist (e.g. {missing[0]}); reuse needs the same --participants "
                         "and --accounts as the run that created them")
