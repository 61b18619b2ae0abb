"""The deterministic ledger state machine of the payment switch (see docs/architecture.md)."""

from .codes import LedgerError
from .ledger import Ledger

__all__ = ["Ledger", "LedgerError"]
