"""Python SDK and operator CLI for the payment switch.

    async with await AsyncClient.connect(port=7878, token=token) as client:
        result = await client.transfer("t1", "alice", "bob", 100)

A cluster's nodes go in `addresses=["h1:7878", "h2:7878"]`: requests follow the primary.

`Client` is the blocking equivalent; `AsyncPool` spreads calls over several connections.
"""

from .async_client import AsyncClient
from .errors import (
    ConnectionLost, Forbidden, InsufficientFunds, NotFound, NotPrimary, OutcomeUnknown,
    ProtocolViolation, RequestTimeout, SwitchError, TransportError, Unauthenticated,
)
from .pool import AsyncPool
from .results import (
    Account, Batch, BatchItemResult, BatchPart, BatchResultsPage, Instruction, ItemResult,
    MatrixRow, ParticipantResult, Position, Transfer, TransferPage, TransferResult, Window,
    WindowMatrix,
)
from .sync_client import Client

__all__ = [
    "AsyncClient", "Client", "AsyncPool",
    "SwitchError", "Unauthenticated", "Forbidden", "InsufficientFunds", "NotFound", "NotPrimary",
    "TransportError", "ConnectionLost", "OutcomeUnknown", "ProtocolViolation", "RequestTimeout",
    "Account", "Batch", "BatchItemResult", "BatchPart", "BatchResultsPage", "Instruction",
    "ItemResult", "MatrixRow", "ParticipantResult", "Position", "Transfer", "TransferPage",
    "TransferResult", "Window", "WindowMatrix",
]
