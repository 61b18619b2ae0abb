"""Tokens: generated here, stored only as salted hashes, compared in constant time.

Tokens are 192 random bits, so a salted SHA-256 is enough (a slow password hash protects
guessable secrets, which these are not) and keeps `hello` cheap.
"""
import hashlib
import hmac
import secrets
from pathlib import Path

from payswitch.protocol.atomic_file import write_atomically
from payswitch.protocol.ops import ADMIN
TOKEN_BYTES = 24
ADMIN_TOKEN_ENV = "SWITCH_ADMIN_TOKEN"


def new_token() -> str:
    # Hex, not urlsafe base64: a token starting with "-" reads as an option on command lines.
    return secrets.token_hex(TOKEN_BYTES)


def hash_token(token: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.sha256(salt + token.encode()).hexdigest()
    return f"{salt.hex()}${digest}"


def token_matches(token: str, token_hash: str | None) -> bool:
    if not token_hash or "$" not in token_hash:
        hash_token(token, b"\0" * 16)  # same work whether or not the participant exists
        return False
    salt_hex, _ = token_hash.split("$", 1)
    return hmac.compare_digest(hash_token(token, bytes.fromhex(salt_hex)), token_hash)


def load_or_create_admin_token(path: Path, from_env: str | None) -> str:
    """The operator's token: SWITCH_ADMIN_TOKEN if given, else the data directory's file,
    created (mode 0600) on first start."""
    if from_env:
        return from_env
    if path.exists():
        return path.read_text().strip()
    token = new_token()
    write_token_file(path, token)
    return token


def write_token_file(path: Path, token: str) -> None:
    """Replaces the token file atomically and durably, readable by its owner only."""
    write_atomically(path, (token + "\n").encode(), mode=0o600)


class HelloThrottle:
    """Slows failed `hello`s per peer address, without blocking anyone: it only says until when
    the failed reply must be held back.

    The n-th consecutive failure from one address is held `base_s * 2**(n-1)` (at most `max_s`)
    after the previous failed reply of that address was due, so opening more connections does not
    buy more guesses: the address gets at most one failed reply per delay. A success resets the
    count (not the queue). Addresses are forgotten once their last failed reply is long past, and
    at most `max_peers` are remembered (the longest quiet go first), so the table stays bounded.
    """

    def __init__(self, base_s: float, max_s: float, max_peers: int = 65_536,
                 forget_after_s: float = 600.0):
        self.base_s, self.max_s = base_s, max_s
        self.max_peers, self.forget_after_s = max_peers, forget_after_s
        # address -> [failures, due_s, last_failure_s], in order of last failure
        self._peers: dict[str | None, list] = {}

    def failed(self, peer: str | None, now_s: float) -> tuple[int, float]:
        """Records a failure; returns (consecutive failures, loop time to answer it at)."""
        entry = self._peers.pop(peer, None) or [0, now_s, now_s]
        entry[0] += 1
        delay_s = 0.0 if self.base_s <= 0 else \
            min(self.max_s, self.base_s * 2 ** min(entry[0] - 1, 64))
        entry[1] = max(now_s, entry[1]) + delay_s
        entry[2] = now_s
        self._peers[peer] = entry  # re-inserted: most recent last
        if len(self._peers) > self.max_peers:
            del self._peers[next(iter(self._peers))]
        return entry[0], entry[1]

    def succeeded(self, peer: str | None) -> None:
        entry = self._peers.get(peer)
        if entry is not None:
            entry[0] = 0

    def forget_quiet(self, now_s: float) -> None:
        """Drops addresses whose last failure is older than forget_after_s and whose last failed
        reply is due; cheap: it stops at the first recent failure."""
        quiet = []
        for peer, (_, due_s, last_failure_s) in self._peers.items():
            if now_s - last_failure_s <= self.forget_after_s:
                break
            if due_s < now_s:
                quiet.append(peer)
        for peer in quiet:
            del self._peers[peer]

    def __len__(self) -> int:
        return len(self._peers)
