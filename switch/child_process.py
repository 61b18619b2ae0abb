"""What the switch's helper processes (batch parse, snapshot builder) do first."""
import ctypes
import os
import signal
import sys

from payswitch.protocol.currencies import accept_currencies, accepted_extra_currencies

ANY_CURRENCY = "*"

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """A switch killed with -9 leaves no helper behind to take CPU and memory from its restart."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # it died before prctl took effect
        sys.exit(1)


def currencies_argument(any_code: bool = False) -> str:
    """The extra currencies this process accepts, as a helper's command-line argument."""
    return ANY_CURRENCY if any_code else ",".join(sorted(accepted_extra_currencies()))


def accept_currencies_argument(text: str) -> None:
    """A helper accepts the currencies its switch passed (see currencies_argument)."""
    if text == ANY_CURRENCY:
        accept_currencies((), any_code=True)
    else:
        accept_currencies(code for code in text.split(",") if code)
