"""The asyncio SDK: one authenticated connection to one of the switch's nodes, reopened on
demand, failing over to another node, with safe retries.

A request that is safe to resend is retried with the same ids after a lost connection, a
timeout, `overloaded` or `unavailable` (with capped, jittered exponential backoff), and after
`not_primary` or `shutting_down` (at once to the primary a standby names, else to the next address
after a backoff),
until `retry_deadline_s` after it was first sent: a restart of the switch or a failover that
takes a few seconds goes unnoticed by the caller. A state-changing request (transfers, accounts,
batches) whose outcome is still unknown at the deadline raises `OutcomeUnknown`, never a failure:
it may have committed, and resending the same ids is safe.
"""

import asyncio
import ssl as _ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

from payswitch.protocol import MSGPACK
from payswitch.protocol.addresses import display_address
from payswitch.protocol.ops import OPS, OpSpec

from .connection import MAX_REPLY_BYTES, Connection
from .errors import ConnectionLost, OutcomeUnknown, RequestTimeout, SwitchError, TransportError
from .failover import (
    DEFAULT_BACKOFF_S, DEFAULT_HOST, DEFAULT_MAX_BACKOFF_S, DEFAULT_PORT,
    DEFAULT_RETRY_DEADLINE_S, LEAVE_CODES, NOT_EXECUTED_CODES, RESENT_CODES, Address, Nodes,
    advertised_primary, backoff_s, to_address,
)
from .results import (
    Account, Batch, BatchPart, BatchResultsPage, ItemResult, ParticipantResult, Transfer,
    TransferPage, TransferResult, Window, WindowMatrix,
)

ACCOUNT_TRANSFERS_PAGE = 1000  # transfers per request when iterating an account's history

# The public request methods, shared by the sync wrapper and the pool: one per op that
# declares one (protocol/ops.py), and these.
OP_METHODS = ("request", "post_pending", "void_pending") + tuple(
    spec.sdk for spec in OPS.values() if spec.sdk is not None)


class AsyncClient:
    """Use `await AsyncClient.connect(...)` or `async with await AsyncClient.connect(...)`.

    Many tasks may call methods concurrently: their requests are pipelined on one connection.
    """

    def __init__(self, addresses: Iterable[Address], *, participant: str, token: str,
                 codec: str, timeout_s: float, retry_deadline_s: float, backoff_s: float,
                 max_backoff_s: float, max_reply_bytes: int, ssl: _ssl.SSLContext | None = None):
        self._nodes = Nodes(addresses)
        self._ssl = ssl
        self._hello = {"participant": participant, "token": token}
        self._codec = codec
        self._timeout_s = timeout_s
        self._retry_deadline_s = retry_deadline_s
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._max_reply_bytes = max_reply_bytes
        # The connection to the node in use; after it failed, kept (closed) until the next one
        # opens, so that the next round of connection attempts tries its node last.
        self._conn: Connection | None = None
        self._reconnecting = asyncio.Lock()
        self._closed = False
        self.server_info: dict[str, Any] = {}  # the `hello` result of the current connection

    @classmethod
    async def connect(cls, host: str | None = None, port: int | None = None, *,
                      addresses: Iterable[str | Address] | None = None,
                      participant: str = "admin", token: str, codec: str = MSGPACK,
                      timeout_s: float = 10.0,
                      retry_deadline_s: float = DEFAULT_RETRY_DEADLINE_S,
                      backoff_s: float = DEFAULT_BACKOFF_S,
                      max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
                      max_reply_bytes: int = MAX_REPLY_BYTES,
                      ssl: _ssl.SSLContext | None = None) -> "AsyncClient":
        """Open and authenticate a connection to the first of the switch's `addresses` (strings
        "host:port" or "[ipv6]:port", or (host, port) pairs) that answers; or give `host` and
        `port` (default 127.0.0.1:7878) for one address. `timeout_s` bounds each attempt's wait
        for its reply, and each address's connect and hello. A request that is safe to repeat is
        resent with the same ids after a connection loss, a timeout, `overloaded`, `unavailable`,
        `not_primary` or `shutting_down` (to the primary named, else to the next address) until
        `retry_deadline_s` after its first attempt (0: never resent), waiting `backoff_s` before
        the first retry, doubling up to `max_backoff_s`, each wait jittered.
        `ssl`: a client SSLContext to connect with TLS (None: plain TCP)."""
        if not (retry_deadline_s >= 0 and 0 < backoff_s <= max_backoff_s):
            raise ValueError("need retry_deadline_s >= 0 and 0 < backoff_s <= max_backoff_s")
        if addresses is None:
            addresses = [(DEFAULT_HOST if host is None else host,
                          DEFAULT_PORT if port is None else port)]
        elif host is not None or port is not None:
            raise ValueError("give either addresses or host and port, not both")
        client = cls([to_address(a) for a in addresses], participant=participant, token=token,
                     codec=codec, timeout_s=timeout_s, retry_deadline_s=retry_deadline_s,
                     backoff_s=backoff_s, max_backoff_s=max_backoff_s,
                     max_reply_bytes=max_reply_bytes, ssl=ssl)
        await client._connection()
        return client

    @property
    def address(self) -> str:
        """The node the client talks to, "host:port": the one connected to (the last one while
        reconnecting, the primary a standby named until a connection to it opens)."""
        return display_address(*self._nodes.current)

    @property
    def host(self) -> str:
        return self._nodes.current[0]

    @property
    def port(self) -> int:
        return self._nodes.current[1]

    @property
    def addresses(self) -> list[str]:
        """Every address known, in the order tried: those given, then primaries learnt since."""
        return [display_address(*address) for address in self._nodes.all]

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        async with self._reconnecting:  # a reconnect in progress must not outlive the client
            if self._conn is not None:
                self._conn.close()
                await self._conn.wait_closed()

    # Transport

    async def _connection(self) -> Connection:
        """The open, authenticated connection, opening a new one (and saying hello) if needed."""
        conn = self._conn
        if conn is not None and conn.is_open:
            return conn
        async with self._reconnecting:
            if self._closed:
                raise ConnectionLost("client is closed")
            if self._conn is None or not self._conn.is_open:
                self._conn = await self._open_first_answering()
            return self._conn

    async def _open_first_answering(self) -> Connection:
        """A connection to the first address that answers hello, trying each once: from the
        node in use, or from the one after it when its connection failed. When none answers,
        the error names every address tried."""
        failures: list[TransportError] = []
        for address in self._nodes.round(skip_current=self._conn is not None):
            try:
                conn = await self._open(address)
            except TransportError as exc:
                failures.append(exc)
                continue
            self._nodes.use(address)
            return conn
        if len(failures) == 1:
            raise failures[0]
        raise ConnectionLost("; ".join(str(failure) for failure in failures))

    async def _open(self, address: Address) -> Connection:
        """A connection to `address` that said hello; its errors name the address."""
        where = display_address(*address)
        try:
            async with asyncio.timeout(self._timeout_s):
                conn = await Connection.open(*address, self._codec, self._max_reply_bytes,
                                             ssl=self._ssl)
                try:
                    self.server_info = await conn.request("hello", self._hello)
                except BaseException as exc:
                    conn.close()
                    if isinstance(exc, ConnectionLost):
                        raise type(exc)(f"{where}: hello failed: {exc}") from exc
                    if isinstance(exc, SwitchError) and exc.code in RESENT_CODES:
                        # Not taking sessions now (shutting down, say): the next node may.
                        raise ConnectionLost(f"{where}: hello answered {exc}") from exc
                    raise
        except TimeoutError:
            raise RequestTimeout(f"no connection to {where} within {self._timeout_s}s") from None
        conn.max_request_bytes = self.server_info.get("max_frame_bytes")
        return conn

    def _leave(self, conn: Connection, primary: Address | None) -> None:
        """`conn`'s node takes no requests (not the primary, shutting down): the next attempt
        goes to `primary` when the node named it, else to the next address. Requests still on
        `conn` fail and are resent."""
        if self._conn is not conn:  # another request already left that node
            return
        conn.close()
        if primary is not None:
            self._nodes.use(primary)
            self._conn = None  # the next round starts at the primary, not after it

    async def _call(self, op: str, args: dict[str, Any], *, retry: bool,
                    changes_state: bool = False) -> dict[str, Any]:
        """Run one request; if `retry`, resend it after transport failures and the answers of
        RESENT_CODES until the retry deadline. `changes_state`: give up with `OutcomeUnknown`
        when an attempt may have been executed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._retry_deadline_s
        attempt = 0
        maybe_executed = False
        followed: set[Address] = set()  # primaries this request was redirected to
        error: Exception
        while True:
            delay_s = None
            try:
                return await self._attempt(op, args)
            except _Unsent as unsent:  # no connection: this attempt never reached the switch
                error = unsent.error
            except SwitchError as exc:
                if exc.code not in RESENT_CODES or not retry:
                    raise
                error = exc
                maybe_executed = maybe_executed or exc.code not in NOT_EXECUTED_CODES
                primary = advertised_primary(exc.details.get("primary"))
                if primary is not None and primary not in followed:
                    followed.add(primary)
                    delay_s = 0.0  # straight to the primary; a second time there, back off
            except TransportError as exc:
                error = exc
                maybe_executed = True
            if delay_s is None:
                delay_s = backoff_s(attempt, self._backoff_s, self._max_backoff_s)
                attempt += 1
            if not retry or self._closed or loop.time() + delay_s > deadline:
                if changes_state and maybe_executed:
                    raise OutcomeUnknown(_outcome_unknown_message(op, args, error)) from error
                raise error
            await asyncio.sleep(delay_s)

    async def _attempt(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            conn = await self._connection()
        except TransportError as exc:
            raise _Unsent(exc) from exc
        try:
            async with asyncio.timeout(self._timeout_s):
                return await conn.request(op, args)
        except TimeoutError:
            raise RequestTimeout(f"{op}: no reply from {self.address} within "
                                 f"{self._timeout_s}s") from None
        except SwitchError as exc:
            if exc.code in LEAVE_CODES:
                self._leave(conn, advertised_primary(exc.details.get("primary")))
            raise

    async def request(self, op: str, args: Mapping[str, Any] | None = None, *,
                      retry: bool = False) -> dict[str, Any]:
        """Any op by name; returns the raw `result` map. Not retried unless `retry`."""
        return await self._call(op, dict(args or {}), retry=retry)

    # Session and participants

    async def ping(self) -> None:
        await self._call("ping", {}, retry=True)

    async def create_participants(
            self, participants: Iterable[Mapping[str, Any]]) -> list[ParticipantResult]:
        """Items `{id, name, net_debit_cap?}`. Never resent: a token is returned only once."""
        result = await self._call(
            "create_participants", {"participants": list(participants)}, retry=False)
        return [ParticipantResult.from_wire(r) for r in result["results"]]

    async def set_participant(self, id: str, *,
                              net_debit_cap: Mapping[str, int | None] | None = None,
                              suspended: bool | None = None,
                              settlement_accounts: Mapping[str, str | None] | None = None
                              ) -> dict[str, Any]:
        """Change caps (a None amount lifts that currency's cap), suspend/resume, or set the
        participant's settlement account per currency (None unsets it); returns the participant
        record. Not resent automatically."""
        args: dict[str, Any] = {"id": id}
        if net_debit_cap is not None:
            args["net_debit_cap"] = dict(net_debit_cap)
        if suspended is not None:
            args["suspended"] = suspended
        if settlement_accounts is not None:
            args["settlement_accounts"] = dict(settlement_accounts)
        return await self._call("set_participant", args, retry=False)

    async def rotate_token(self, participant: str) -> str:
        """A new token for `participant` (or "admin"); the old one stops working and its
        sessions end. Never resent: the new token is returned only once."""
        result = await self._call("rotate_token", {"participant": participant}, retry=False)
        return result["token"]

    # Accounts and transfers

    async def create_accounts(self, accounts: Iterable[Mapping[str, Any]]) -> list[ItemResult]:
        """Items `{id, participant, currency, overdraft_limit?}` (None: unlimited). Resent after a
        connection loss, so `account_exists` may be this call's own earlier attempt."""
        result = await self._call("create_accounts", {"accounts": list(accounts)}, retry=True,
                                  changes_state=True)
        return [ItemResult.from_wire(r) for r in result["results"]]

    async def create_transfers(
            self, transfers: Iterable[Mapping[str, Any]]) -> list[TransferResult]:
        """Wire-shaped transfer items; one result per item, in order. Safe to resend: ids are
        idempotency keys and a replay answers `exists` (`TransferResult.ok`)."""
        result = await self._call("create_transfers", {"transfers": list(transfers)}, retry=True,
                                  changes_state=True)
        return [TransferResult.from_wire(r) for r in result["results"]]

    async def transfer(self, id: str, debit_account: str | None = None,
                       credit_account: str | None = None, amount: int | None = None, *,
                       currency: str | None = None, reference: str | None = None,
                       pending: bool = False, timeout_s: int | None = None,
                       post_pending_id: str | None = None,
                       void_pending_id: str | None = None) -> TransferResult:
        """One transfer; raises `SwitchError` with the item's code when it fails.
        `timeout_s` (whole seconds, pending only) is the wire field `timeout`."""
        item = _drop_none({
            "id": id, "debit_account": debit_account, "credit_account": credit_account,
            "amount": amount, "currency": currency, "reference": reference,
            "pending": pending or None, "timeout": timeout_s,
            "post_pending_id": post_pending_id, "void_pending_id": void_pending_id,
        })
        return TransferResult.from_wire(
            await self._call("transfer", item, retry=True, changes_state=True))

    async def post_pending(self, id: str, pending_id: str,
                           amount: int | None = None) -> TransferResult:
        """Post a pending transfer, in full or `amount` of it, as transfer `id`."""
        return await self.transfer(id, amount=amount, post_pending_id=pending_id)

    async def void_pending(self, id: str, pending_id: str) -> TransferResult:
        """Release a pending transfer in full, as transfer `id`."""
        return await self.transfer(id, void_pending_id=pending_id)

    async def lookup_accounts(self, ids: Iterable[str]) -> list[Account]:
        """Visible accounts among `ids`; unknown ones are absent."""
        result = await self._call("lookup_accounts", {"ids": list(ids)}, retry=True)
        return [Account.from_wire(a) for a in result["accounts"]]

    async def lookup_transfers(self, ids: Iterable[str]) -> list[Transfer]:
        result = await self._call("lookup_transfers", {"ids": list(ids)}, retry=True)
        return [Transfer.from_wire(t) for t in result["transfers"]]

    async def get_account_transfers(self, account: str, *, after: int | str | None = None,
                                    limit: int | None = None) -> TransferPage:
        """Transfers touching `account`, oldest first, after the timestamp cursor `after` (an
        integer, or its decimal string such as `next_cursor`)."""
        args = _drop_none({"account": account, "after": after, "limit": limit})
        return TransferPage.from_wire(await self._call("get_account_transfers", args, retry=True))

    def iter_account_transfers(self, account: str, *,
                               page_size: int = ACCOUNT_TRANSFERS_PAGE) -> AsyncIterator[Transfer]:
        """Every transfer touching `account`, oldest first, fetched `page_size` at a time:
        `async for transfer in client.iter_account_transfers("a-1"): ...`"""
        return each_transfer(account_transfer_pages(self.get_account_transfers, account,
                                                    page_size))

    # Clearing and settlement

    async def close_window(self, *, hub_accounts: Mapping[str, str] | None = None) -> Window:
        """Close the open window. Never resent: a repeat would close the next window too.

        With `hub_accounts` ({currency: the hub's settlement account}) the close also posts the
        window's settlement, atomically: each participant's net moves between its settlement
        account and the hub's, as transfers `settle:<window_id>:<participant>:<CUR>`."""
        args = {} if hub_accounts is None else {"settle": {"hub_accounts": dict(hub_accounts)}}
        return Window.from_wire(await self._call("close_window", args, retry=False))

    async def get_window(self, window_id: int) -> Window:
        result = await self._call("get_window", {"window_id": window_id}, retry=True)
        return Window.from_wire(result)

    async def list_windows(self) -> list[Window]:
        result = await self._call("list_windows", {}, retry=True)
        return [Window.from_wire(w) for w in result["windows"]]

    async def get_window_matrix(self, window_id: int) -> WindowMatrix:
        """The window's bilateral matrix: gross amounts per (payer, payee, currency)."""
        result = await self._call("get_window_matrix", {"window_id": window_id}, retry=True)
        return WindowMatrix.from_wire(result)

    async def stats(self) -> dict[str, Any]:
        return await self._call("stats", {}, retry=True)

    async def state_digest(self) -> dict[str, Any]:
        """{seq, digest} of the node this client is on (a standby answers too): nodes at the
        same seq have the same digest."""
        return await self._call("state_digest", {}, retry=True)

    # Batches

    async def upload_batch_part(self, batch_id: str, seq: int, data: bytes) -> BatchPart:
        args = {"batch_id": batch_id, "seq": seq, "data": data}
        return BatchPart.from_wire(await self._call("upload_batch_part", args, retry=False))

    async def submit_batch(self, batch_id: str, format: str, *, control_count: int,
                           control_sum: int, mode: str = "atomic",
                           content: str | bytes | None = None,
                           items: Iterable[Mapping[str, Any]] | None = None) -> Batch:
        """Without `content` or `items` the uploaded parts are the content. Safe to resend: the
        same batch id and content get the earlier outcome."""
        if isinstance(content, (bytes, bytearray)) and self._codec != MSGPACK:
            content = bytes(content).decode("utf-8")  # JSON carries content as its text
        args = _drop_none({
            "batch_id": batch_id, "format": format, "content": content,
            "items": None if items is None else list(items),
            "control_count": control_count, "control_sum": control_sum, "mode": mode,
        })
        return Batch.from_wire(
            await self._call("submit_batch", args, retry=True, changes_state=True))

    async def get_batch(self, batch_id: str) -> Batch:
        return Batch.from_wire(await self._call("get_batch", {"batch_id": batch_id}, retry=True))

    async def get_batch_results(self, batch_id: str, *, offset: int | None = None,
                                limit: int | None = None) -> BatchResultsPage:
        args = _drop_none({"batch_id": batch_id, "offset": offset, "limit": limit})
        return BatchResultsPage.from_wire(await self._call("get_batch_results", args, retry=True))


def _declared_method(spec: OpSpec) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The method of an op that has no hand-written one: its keyword arguments are the op's
    args, it returns the raw result map. A read is resent like every read; a write never is
    (whether it executed would be unknown), a hand-written method decides that."""
    async def method(self: AsyncClient, **args: Any) -> dict[str, Any]:
        return await self._call(spec.name, args, retry=not spec.mutating,
                                changes_state=spec.mutating)
    method.__name__ = spec.sdk
    method.__qualname__ = f"AsyncClient.{spec.sdk}"
    method.__doc__ = f"The op `{spec.name}` (docs/protocol.md); returns {spec.reply}."
    return method


for _spec in OPS.values():
    if _spec.sdk is not None and _spec.sdk not in vars(AsyncClient):
        setattr(AsyncClient, _spec.sdk, _declared_method(_spec))


async def account_transfer_pages(
        get_page: Callable[..., Awaitable[TransferPage]], account: str,
        page_size: int) -> AsyncGenerator[TransferPage, None]:
    """The pages of an account's transfers, following each page's cursor to the end."""
    after = None
    while True:
        page = await get_page(account, after=after, limit=page_size)
        yield page
        if page.next is None:
            return
        after = page.next


async def each_transfer(pages: AsyncIterator[TransferPage]) -> AsyncIterator[Transfer]:
    async for page in pages:
        for transfer in page.transfers:
            yield transfer


class _Unsent(Exception):
    """A connection could not be opened, so the attempt sent nothing."""

    def __init__(self, error: TransportError):
        super().__init__(error)
        self.error = error


def _outcome_unknown_message(op: str, args: dict[str, Any], error: Exception) -> str:
    what = f"{op} {args['id']}" if "id" in args else op
    return (f"{what}: outcome unknown, the switch may have executed it ({error}); resending "
            f"with the same id is safe and answers its outcome")


def _drop_none(args: dict[str, Any]) -> dict[str, Any]:
    """Leave out unset optional fields so the server fills its defaults."""
    return {k: v for k, v in args.items() if v is not None}
