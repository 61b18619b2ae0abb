"""A few connections behind one client: each call goes to the connection with the fewest calls
in flight, so one slow reply holds up (by FIFO order) only the calls queued behind it."""

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any

from .async_client import (
    ACCOUNT_TRANSFERS_PAGE, OP_METHODS, AsyncClient, account_transfer_pages, each_transfer,
)
from .results import Transfer


class AsyncPool:
    """`async with AsyncPool(4, port=..., token=...) as pool:`; connects on first use otherwise."""

    def __init__(self, size: int = 4, **connect_kwargs: Any):
        if size < 1:
            raise ValueError("pool size must be at least 1")
        self._size = size
        self._connect_kwargs = connect_kwargs
        self._clients: list[AsyncClient] = []
        self._in_flight: list[int] = []
        self._opening = asyncio.Lock()

    async def open(self) -> None:
        async with self._opening:
            if self._clients:
                return
            clients: list[AsyncClient] = []
            try:
                for _ in range(self._size):
                    clients.append(await AsyncClient.connect(**self._connect_kwargs))
            except BaseException:
                await asyncio.gather(*(c.close() for c in clients))
                raise
            self._clients, self._in_flight = clients, [0] * self._size

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._clients))

    async def __aenter__(self) -> "AsyncPool":
        await self.open()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def _run(self, name: str, args: tuple, kwargs: dict) -> Any:
        if not self._clients:
            await self.open()
        index = min(range(self._size), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1
        try:
            return await getattr(self._clients[index], name)(*args, **kwargs)
        finally:
            self._in_flight[index] -= 1

    def iter_account_transfers(self, account: str, *,
                               page_size: int = ACCOUNT_TRANSFERS_PAGE) -> AsyncIterator[Transfer]:
        """As `AsyncClient.iter_account_transfers`, each page from the least busy connection."""
        get_page = self.get_account_transfers  # type: ignore[attr-defined]  # set from OP_METHODS
        return each_transfer(account_transfer_pages(get_page, account, page_size))


def _pooled(name: str):
    @functools.wraps(getattr(AsyncClient, name))
    async def method(self: AsyncPool, *args: Any, **kwargs: Any) -> Any:
        return await self._run(name, args, kwargs)
    return method


for _name in OP_METHODS:
    setattr(AsyncPool, _name, _pooled(_name))
