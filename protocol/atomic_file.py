"""Small files replaced whole: a reader sees the old content or the new, never a mix, even after
a crash. Not wire protocol, but it lives here, in the one package the switch, the client and the
load generator may all import, so that every atomic write in the repository is this one."""
import contextlib
import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a create, rename or unlink in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Writes `data` to a temporary file beside `path` (created with `mode`, less the umask),
    fsyncs it, renames it over `path` and fsyncs the directory, so that after a crash `path`
    holds the old content or the new. On failure the old file stands and the temporary goes."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        # A leftover temporary file would keep its own mode under O_TRUNC: start afresh.
        temporary.unlink(missing_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        publish_durably(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise


def publish_durably(temporary: Path, path: Path) -> None:
    """Renames `temporary` (written and fsynced already, perhaps by another process) over `path`
    in the same directory and fsyncs the directory: the last step of every atomic write."""
    os.replace(temporary, path)
    fsync_dir(path.parent)
