"""Tokens: generated here, stored only as salted hashes, compared in constant time.

Tokens are 192 random bits, so a salted SHA-256 is enough (a slow password hash protects
guessable secrets, which these are not) and keeps `hello` cheap.
"""
import hashlib
import hmac
import os
import secrets
from pathlib import Path

ADMIN = "admin"
TOKEN_BYTES = 24


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


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
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
        file.flush()
        os.fsync(file.fileno())
    return token
