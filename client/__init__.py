"""Python SDK and operator CLI for the payment switch.

    async with await AsyncClient.connect(port=7878, token=token) as client:
        result = await client.transfer("t1", "alice", "bob", 100)

A cluster's nodes go in `addresses=["h1:7878", "h2:7878"]`: requests follow the primary.

`Client` is the blocking equivalent; `AsyncPool` spreads calls over several connections.

For tools built on the SDK (the load generator): where the switch is and the operator's token
(`discovery`), and the rules by which requests follow the primary (`failover`).
"""

from .async_client import AsyncClient
from .discovery import ConfigError, add_address_arguments, resolve_addresses, resolve_admin_token
from .errors import (
    ConnectionLost, Forbidden, InsufficientFunds, NotFound, NotPrimary, OutcomeUnknown,
    ProtocolViolation, RequestTimeout, SwitchError, TransportError, Unauthenticated,
)
from .failover import (
    DEFAULT_BACKOFF_S, DEFAULT_HOST, DEFAULT_MAX_BACKOFF_S, DEFAULT_RETRY_DEADLINE_S, LEAVE_CODES,
    Address, Nodes, advertised_primary, backoff_s, describe,
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
    "ConfigError", "add_address_arguments", "resolve_addresses", "resolve_admin_token",
    "Address", "Nodes", "advertised_primary", "backoff_s", "describe", "LEAVE_CODES",
    "DEFAULT_HOST", "DEFAULT_RETRY_DEADLINE_S", "DEFAULT_BACKOFF_S", "DEFAULT_MAX_BACKOFF_S",
]
