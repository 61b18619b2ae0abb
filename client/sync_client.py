"""A blocking client: the async SDK running on a private event loop in a daemon thread.

Calls from several threads are safe and are pipelined on the one connection.
"""

import asyncio
import functools
import threading
from collections.abc import Coroutine, Iterator
from typing import Any

import uvloop

from .async_client import ACCOUNT_TRANSFERS_PAGE, OP_METHODS, AsyncClient, account_transfer_pages
from .results import Transfer


class Client:
    """Connects on construction; takes the arguments of `AsyncClient.connect`, such as
    `Client(addresses=["h1:7878", "h2:7878"], token=...)`."""

    def __init__(self, host: str | None = None, port: int | None = None, **connect_kwargs: Any):
        self._loop = uvloop.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="switch-client-loop", daemon=True)
        self._thread.start()
        try:
            self._client = self._run(AsyncClient.connect(host, port, **connect_kwargs))
        except BaseException:
            self._stop_loop()
            raise

    @classmethod
    def connect(cls, host: str | None = None, port: int | None = None,
                **connect_kwargs: Any) -> "Client":
        return cls(host, port, **connect_kwargs)

    @property
    def server_info(self) -> dict[str, Any]:
        return self._client.server_info

    @property
    def address(self) -> str:
        """As `AsyncClient.address`: the node in use, "host:port"."""
        return self._client.address

    @property
    def addresses(self) -> list[str]:
        return self._client.addresses

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._client.close())
        finally:
            self._stop_loop()

    def iter_account_transfers(self, account: str, *,
                               page_size: int = ACCOUNT_TRANSFERS_PAGE) -> Iterator[Transfer]:
        """Every transfer touching `account`, oldest first, fetched `page_size` at a time."""
        pages = account_transfer_pages(self._client.get_account_transfers, account, page_size)
        try:
            while True:
                try:
                    page = self._run(anext(pages))
                except StopAsyncIteration:
                    return
                yield from page.transfers
        finally:  # the caller may stop early; the generator belongs to the loop's thread
            if not self._loop.is_closed():
                self._run(pages.aclose())

    def _run(self, coro: Coroutine) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            # E.g. KeyboardInterrupt while waiting: cancelling the request closes its connection,
            # so its reply can never reach another caller.
            future.cancel()
            raise

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def _blocking(name: str):
    @functools.wraps(getattr(AsyncClient, name))
    def method(self: Client, *args: Any, **kwargs: Any) -> Any:
        return self._run(getattr(self._client, name)(*args, **kwargs))
    return method


for _name in OP_METHODS:
    setattr(Client, _name, _blocking(_name))
